// Reading a linked page for the requirement, in code: only hosts the catalog allows, with size and time
// limits, redirects followed only within the allow-list, and private, loopback and link-local addresses
// refused unless the allow-list names that host literally (an SSRF guard). The address is checked when the
// connection is made, on the address actually connected to, so a name that re-resolves (DNS rebinding)
// cannot slip past. Only text comes back: HTML, Markdown, plain text, JSON and YAML.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { egressDecision, type HostPattern } from '../egress-proxy';

export type PageKind = 'html' | 'markdown' | 'text' | 'json' | 'yaml';

export interface FetchLimits {
  /** A longer body is cut here, with a note. */
  maxBytes: number;
  /** For the whole fetch, redirects included. */
  timeoutMs: number;
  maxRedirects: number;
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = { maxBytes: 2 * 1024 * 1024, timeoutMs: 15_000, maxRedirects: 5 };

export interface FetchedPage {
  /** As linked. */
  url: string;
  /** After redirects. */
  finalUrl: string;
  kind: PageKind;
  body: string;
  /** Set when the body was cut at the size limit. */
  truncatedAt?: number;
  /** A title known without reading the text (a file's name). */
  title?: string;
}

/** Why a link could not be read, in words for the card ("could not read <url>: <reason>"). */
export class UnreadableLinkError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`could not read ${url}: ${reason}`);
    this.name = 'UnreadableLinkError';
  }
}

const KINDS: [RegExp, PageKind][] = [
  [/^text\/html$|^application\/xhtml\+xml$/, 'html'],
  [/^text\/(x-)?markdown$/, 'markdown'],
  [/^text\/plain$/, 'text'],
  [/^application\/([a-z0-9.-]+\+)?json$/, 'json'],
  [/^(application|text)\/(x-)?yaml$/, 'yaml'],
];

// Addresses a link may not reach unless its host is allow-listed by that very name or address.
/** The kind of text a content type declares; null for anything this service does not read. */
export function pageKindOfType(contentType: string): PageKind | null {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return KINDS.find(([pattern]) => pattern.test(type))?.[1] ?? null;
}

const PRIVATE = new net.BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  PRIVATE.addSubnet(network, prefix, 'ipv4');
}
PRIVATE.addAddress('::', 'ipv6');
PRIVATE.addAddress('::1', 'ipv6');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');

function isPrivate(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return PRIVATE.check(mapped, 'ipv4');
  return PRIVATE.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

/** Whether an allow-list entry names this host and port literally (not by a wildcard). */
function namedLiterally(allowHosts: readonly HostPattern[], host: string, port: number): boolean {
  return egressDecision(allowHosts.filter((entry) => !entry.startsWith('*.')), host, port).allowed;
}

export async function fetchPage(url: string, allowHosts: readonly HostPattern[], limits: FetchLimits = DEFAULT_FETCH_LIMITS, signal?: AbortSignal): Promise<FetchedPage> {
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
  let current = parseLink(url);
  for (let hop = 0; ; hop++) {
    const answer = await request(current, allowHosts, limits, abort).catch((error: unknown) => {
      if (error instanceof UnreadableLinkError) throw error;
      if (deadline.aborted) throw new UnreadableLinkError(url, `no answer within ${Math.round(limits.timeoutMs / 1000)} s`);
      throw new UnreadableLinkError(url, describeNetworkError(error));
    });
    if (answer.kind === 'redirect') {
      if (hop >= limits.maxRedirects) throw new UnreadableLinkError(url, `more than ${limits.maxRedirects} redirects`);
      const next = parseLink(new URL(answer.location, current).toString(), false);
      const decision = egressDecision(allowHosts, next.hostname, portOf(next));
      if (!decision.allowed) throw new UnreadableLinkError(url, `it redirects to ${next.host}, which is not allowed (${decision.reason})`);
      current = next;
      continue;
    }
    return { url, finalUrl: current.toString(), kind: answer.pageKind, body: answer.body, ...(answer.truncatedAt !== undefined ? { truncatedAt: answer.truncatedAt } : {}) };
  }

  function parseLink(text: string, checkAllowed = true): URL {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new UnreadableLinkError(text, 'not a URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UnreadableLinkError(text, `only http and https links are read (not ${parsed.protocol})`);
    if (parsed.username || parsed.password) throw new UnreadableLinkError(text, 'links with credentials in them are not read');
    const decision = egressDecision(allowHosts, parsed.hostname, portOf(parsed));
    if (checkAllowed && !decision.allowed) throw new UnreadableLinkError(text, `the host is not allowed (${decision.reason.replace("catalog's allowHosts", "catalog's context.allowHosts")})`);
    return parsed;
  }
}

function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

type Answer = { kind: 'redirect'; location: string } | { kind: 'page'; pageKind: PageKind; body: string; truncatedAt?: number };

function request(url: URL, allowHosts: readonly HostPattern[], limits: FetchLimits, signal: AbortSignal): Promise<Answer> {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  // Checked on the address the socket connects to: a private one only for a host the allow-list names itself.
  const lookup: net.LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: false }, (error, address, family) => {
      if (error) return callback(error, address, family);
      if (isPrivate(address) && !namedLiterally(allowHosts, host, portOf(url))) {
        return callback(Object.assign(new Error(`${hostname} is ${address}, a private or local address`), { code: 'EPRIVATE' }), address, family);
      }
      callback(null, address, family);
    });
  };
  const literalIp = net.isIP(host) ? host : null;
  if (literalIp && isPrivate(literalIp) && !namedLiterally(allowHosts, host, portOf(url))) {
    return Promise.reject(new UnreadableLinkError(url.toString(), `${host} is a private or local address`));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    const outgoing = client.get(url, { lookup, signal, headers: { accept: 'text/html, text/markdown, text/plain, application/json, application/yaml;q=0.9, */*;q=0.1', 'user-agent': 'change-request-service (context intake)' } }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        return resolve({ kind: 'redirect', location: response.headers.location });
      }
      if (status !== 200) {
        response.resume();
        return reject(new UnreadableLinkError(url.toString(), `the server answered ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`));
      }
      const type = (response.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const pageKind = pageKindOfType(type);
      if (!pageKind) {
        response.resume();
        return reject(new UnreadableLinkError(url.toString(), `it is ${type || 'of no stated type'}, not a page or document this service reads (HTML, Markdown, text, JSON or YAML)`));
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      let cut = false;
      response.on('data', (chunk: Buffer) => {
        if (cut) return;
        const room = limits.maxBytes - bytes;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          bytes += room;
          cut = true;
          response.destroy();
          finish();
          return;
        }
        chunks.push(chunk);
        bytes += chunk.length;
      });
      response.on('end', finish);
      response.on('error', (error) => {
        if (!cut) reject(error);
      });
      let finished = false;
      function finish(): void {
        if (finished) return;
        finished = true;
        const buffer = Buffer.concat(chunks);
        if (buffer.includes(0)) return reject(new UnreadableLinkError(url.toString(), 'it is a binary file'));
        // A cut may split a multi-byte character; the decoder's replacement for it is dropped.
        const body = buffer.toString('utf8').replace(/\uFFFD$/, '');
        resolve({ kind: 'page', pageKind: pageKind!, body, ...(cut ? { truncatedAt: limits.maxBytes } : {}) });
      }
    });
    outgoing.on('error', reject);
  });
}

function describeNetworkError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'EPRIVATE') return message;
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host does not resolve';
  if (code === 'ECONNRESET') return 'the connection was reset';
  return code ? `${message} (${code})` : message;
}
