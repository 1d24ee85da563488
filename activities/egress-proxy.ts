// The only way out of a sandbox to the internet: an HTTP proxy (CONNECT for https, absolute URLs for
// http) that the worker runs per command on a Unix socket, relayed into the sandbox like the loopback
// ports. It lets through the hosts the catalog allows (and the registries installs need) and answers 403,
// with the reason, to everything else, so a repository that phones home fails plainly instead of hanging.
import dns from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import { splice } from './sandbox-forwarder';

/**
 * `registry.npmjs.org`, `*.example.com` (any subdomain), optionally with `:port` (default: 443 and 80).
 * Loopback names are refused unless an entry names them literally: the service's own loopback services
 * are reached through their relays only, never through a public name that resolves to 127.0.0.1.
 */
export type HostPattern = string;

export interface EgressDecision {
  allowed: boolean;
  reason: string;
}

export function egressDecision(allowHosts: readonly HostPattern[], host: string, port: number): EgressDecision {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  for (const entry of allowHosts) {
    const [pattern, portText] = splitPort(entry.toLowerCase());
    const portMatches = portText === undefined ? port === 443 || port === 80 : Number(portText) === port;
    const nameMatches = pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern;
    if (portMatches && nameMatches) return { allowed: true, reason: `allowed by "${entry}"` };
  }
  return { allowed: false, reason: `${name}:${port} is not in the catalog's allowHosts (${allowHosts.length > 0 ? allowHosts.join(', ') : 'none'})` };
}

function splitPort(entry: string): [string, string | undefined] {
  const match = /^(.*):(\d{1,5})$/.exec(entry);
  return match ? [match[1]!, match[2]] : [entry, undefined];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether a URL's host is this machine by name (such addresses are relayed, never proxied). */
export function isLoopbackUrl(url: URL): boolean {
  return LOOPBACK_NAMES.has(url.hostname.replace(/^\[|\]$/g, '').toLowerCase());
}

/** `host:port` of a URL, as allowHosts writes it (the scheme's port when none is given). */
export function hostPatternOf(url: URL): HostPattern {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}

/** The address to connect to, or why not: allowed names that resolve to loopback are refused. */
async function resolveAllowed(allowHosts: readonly HostPattern[], host: string, port: number): Promise<{ address: string } | { refused: string }> {
  const decision = egressDecision(allowHosts, host, port);
  if (!decision.allowed) return { refused: decision.reason };
  const name = host.replace(/^\[|\]$/g, '');
  let address: string;
  try {
    address = net.isIP(name) ? name : (await dns.lookup(name)).address;
  } catch (error) {
    return { refused: `${name} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const loopback = address.startsWith('127.') || address === '::1' || address === '0.0.0.0' || address === '::';
  if (loopback && !LOOPBACK_NAMES.has(name.toLowerCase())) return { refused: `${name} resolves to ${address}, a local address` };
  return { address };
}

/** An allow-listing proxy; listen on a Unix socket and relay it into the sandbox. */
export function createEgressProxy(allowHosts: readonly HostPattern[]): http.Server {
  const server = http.createServer((request, response) => {
    let target: URL;
    try {
      target = new URL(request.url ?? '');
      if (target.protocol !== 'http:') throw new Error('not an absolute http URL');
    } catch {
      response.writeHead(400, { 'content-type': 'text/plain' }).end('sandbox egress: only absolute http:// URLs and CONNECT are proxied\n');
      return;
    }
    const port = Number(target.port || 80);
    void resolveAllowed(allowHosts, target.hostname, port).then((resolved) => {
      if ('refused' in resolved) {
        response.writeHead(403, { 'content-type': 'text/plain' }).end(`sandbox egress refused: ${resolved.refused}\n`);
        return;
      }
      const upstream = http.request({ host: resolved.address, port, method: request.method, path: `${target.pathname}${target.search}`, headers: { ...request.headers, host: target.host } }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', (error) => response.headersSent ? response.destroy() : response.writeHead(502, { 'content-type': 'text/plain' }).end(`sandbox egress: ${error.message}\n`));
      request.pipe(upstream);
    });
  });
  server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const [host, portText] = splitPort(request.url ?? '');
    const port = Number(portText ?? 443);
    void resolveAllowed(allowHosts, host, port).then((resolved) => {
      if ('refused' in resolved) {
        client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nsandbox egress refused: ${resolved.refused}\n`);
        return;
      }
      const failBeforeConnecting = (error: Error) => client.end(`HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nsandbox egress: ${error.message}\n`);
      const upstream = net.connect({ host: resolved.address, port }, () => {
        upstream.off('error', failBeforeConnecting);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        splice(client, upstream);
      });
      upstream.once('error', failBeforeConnecting);
    });
  });
  return server;
}

/** The environment that points a command's HTTP clients (npm, curl, git, pip…) at the proxy; loopback goes direct. */
export function proxyEnvironment(proxyUrl: string): Record<string, string> {
  const noProxy = '127.0.0.1,localhost,::1';
  return {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    npm_config_proxy: proxyUrl,
    npm_config_https_proxy: proxyUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    npm_config_noproxy: noProxy,
  };
}
