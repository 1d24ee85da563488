// The built-in web chat: a page where people start change requests and act on their cards, for the
// embedded defaults (`npm start`) and demos. It has no login: whoever opens the page picks who they are
// from the catalog's people. It is a local demo tool; do not expose it on a network (it listens on
// 127.0.0.1 unless told otherwise). Slack and Lark are the adapters for real teams.
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { listenOn } from '../../activities/listen';
import { RefusedError, UnknownRunError, UnreachableError, type ChangeRequestGateway } from '../../client/gateway';
import type { Catalog } from '../../domain/catalog-schema';
import type { ConversationRouter } from '../core/router';
import { AttachmentBodySchema, ButtonBodySchema, NewThreadBodySchema, ReplyBodySchema, WebChatApi } from './api';
import { HttpError, readJsonBody, sendJson, serveStatic } from './http';
import { PollsPerClient } from './run-watch';
import { MAX_UPLOAD_BYTES, Uploads } from './uploads';

export interface WebChatOptions {
  gateway: ChangeRequestGateway;
  router: ConversationRouter;
  loadCatalog: () => Promise<Catalog>;
  /** The workers' data folder: web runs' messages are read from `<outboxDir>/outbox/<runId>.jsonl` (activities/notify.ts). */
  outboxDir: string;
  /** Requirements the demo model knows, offered as one-click suggestions. */
  demoRequirements: string[];
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** The address people open when it is not this machine's (behind a proxy): its host is accepted too. */
  publicUrl?: string;
  /** Open long polls one client address may have at once (default 8; a browser opens at most 6 per host). */
  maxPollsPerClient?: number;
}

export interface WebChat {
  /** e.g. http://127.0.0.1:8742 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

const PUBLIC_DIR = path.join(__dirname, 'public');
/** Open long polls per client address; a browser itself opens at most 6 connections per host. */
const DEFAULT_POLLS_PER_CLIENT = 8;
const RUN_PATH = /^\/api\/runs\/([^/]+)(?:\/(messages|buttons|feedback|attachments|diff))?$/;

export async function startWebChat(options: WebChatOptions): Promise<WebChat> {
  let ownUrl = '';
  const uploads = new Uploads(path.join(options.outboxDir, 'uploads'));
  const api = new WebChatApi({ ...options, uploads, ownUrl: () => ownUrl });
  const polls = new PollsPerClient(options.maxPollsPerClient ?? DEFAULT_POLLS_PER_CLIENT);
  // Ends the long polls still waiting when the server closes, so close does not wait 20 s for them.
  const closing = new AbortController();
  // Every open long poll listens on it; the per-client cap, not this warning, bounds how many there are.
  setMaxListeners(0, closing.signal);
  // Requests still being answered; close waits for them so none calls the gateway after its owner shut it down.
  const inFlight = new Set<Promise<void>>();
  // Filled in once the port is known: the Host names this server answers to.
  const hosts = new Set<string>();
  const server = http.createServer((request, response) => {
    const answered = Promise.resolve()
      .then(() => refuseForeignRequests(request, hosts))
      .then(() => handle(api, uploads, polls, request, response, closing.signal))
      .catch((error: unknown) => answerError(response, error));
    inFlight.add(answered);
    void answered.finally(() => inFlight.delete(answered));
  });
  const { port, hostInUrl } = await listenOn(server, options.port ?? 0, options.host ?? '127.0.0.1');
  for (const name of [hostInUrl, 'localhost', '127.0.0.1', '[::1]']) hosts.add(`${name}:${port}`);
  if (options.publicUrl) hosts.add(new URL(options.publicUrl).host);
  ownUrl = options.publicUrl?.replace(/\/$/, '') ?? `http://${hostInUrl}:${port}`;
  return {
    url: `http://${hostInUrl}:${port}`,
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      // Browsers keep connections open; without this, close waits for them to time out.
      server.closeAllConnections();
      await Promise.allSettled([...inFlight]);
      await closed;
    },
  };
}

/**
 * A page on another site, or one that reached this server through a rebound DNS name, cannot act as
 * anyone: the Host must be one of this server's names, and a browser's Origin must be this server.
 * (Clients without an Origin, such as curl or the CLI, are not browsers and carry no one's cookies.)
 */
function refuseForeignRequests(request: http.IncomingMessage, hosts: ReadonlySet<string>): void {
  const host = request.headers.host ?? '';
  if (!hosts.has(host)) throw new HttpError(403, `this web chat does not answer to the host "${host.slice(0, 100)}"`);
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null' && !isOwnOrigin(origin, hosts)) throw new HttpError(403, `requests from ${origin.slice(0, 100)} are refused: only this web chat's own pages may use it`);
  if (origin === 'null' && request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(403, 'requests from an opaque origin are refused');
}

function isOwnOrigin(origin: string, hosts: ReadonlySet<string>): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && hosts.has(url.host);
  } catch {
    return false;
  }
}

async function handle(api: WebChatApi, uploads: Uploads, polls: PollsPerClient, request: http.IncomingMessage, response: http.ServerResponse, closing: AbortSignal): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://web-chat.invalid');
  const method = request.method ?? 'GET';
  const { pathname } = url;

  if (!pathname.startsWith('/api/')) {
    if ((method === 'GET' || method === 'HEAD') && (await serveStatic(PUBLIC_DIR, pathname, response))) return;
    if ((method === 'GET' || method === 'HEAD') && (await uploads.serve(pathname, response))) return;
    throw new HttpError(404, 'not found');
  }

  switch (`${method} ${pathname}`) {
    case 'GET /api/people':
      return sendJson(response, 200, await api.people());
    case 'GET /api/demos':
      return sendJson(response, 200, api.demos());
    case 'GET /api/threads':
      return sendJson(response, 200, await api.threads());
    case 'POST /api/threads':
      return sendJson(response, 200, await api.startThread(await readJsonBody(request, NewThreadBodySchema)));
  }

  const match = RUN_PATH.exec(pathname);
  if (!match) throw new HttpError(404, `no API at ${pathname}`);
  // Not decoded: run ids need no escaping, so an escaped one is simply not a run (404, never a decoding error).
  const runId = match[1]!;
  const action = match[2];
  if (!action) {
    if (method !== 'GET') throw methodNotAllowed(response, 'GET');
    // A page that goes away (closed, switched threads) stops its long poll here too.
    const gone = new AbortController();
    response.on('close', () => gone.abort());
    const query = Object.fromEntries(url.searchParams);
    if (query.after === undefined) return sendJson(response, 200, await api.run(runId, query, AbortSignal.any([gone.signal, closing])));
    const client = request.socket.remoteAddress ?? 'unknown';
    const release = polls.take(client);
    if (!release) throw new HttpError(429, `too many open views from ${client}: at most ${polls.limit} at once; close a tab and it reconnects`);
    try {
      return sendJson(response, 200, await api.run(runId, query, AbortSignal.any([gone.signal, closing])));
    } finally {
      release();
    }
  }
  if (action === 'diff') {
    if (method !== 'GET') throw methodNotAllowed(response, 'GET');
    const gone = new AbortController();
    response.on('close', () => gone.abort());
    return sendJson(response, 200, await api.diff(runId, Object.fromEntries(url.searchParams), AbortSignal.any([gone.signal, closing])));
  }
  if (method !== 'POST') throw methodNotAllowed(response, 'POST');
  switch (action) {
    case 'messages':
      return sendJson(response, 200, await api.reply(runId, await readJsonBody(request, ReplyBodySchema)));
    case 'buttons':
      return sendJson(response, 200, await api.press(runId, await readJsonBody(request, ButtonBodySchema)));
    case 'feedback':
      return sendJson(response, 200, await api.feedback(runId, await readJsonBody(request, ReplyBodySchema)));
    case 'attachments':
      return sendJson(response, 200, await api.attach(runId, await readJsonBody(request, AttachmentBodySchema, MAX_UPLOAD_BYTES * 2)));
  }
}

function methodNotAllowed(response: http.ServerResponse, allowed: string): HttpError {
  response.setHeader('allow', allowed);
  return new HttpError(405, `use ${allowed} here`);
}

/** Bad input is the person's to fix (4xx, with the reason); only our own faults are 5xx. */
function answerError(response: http.ServerResponse, error: unknown): void {
  if (response.headersSent || response.destroyed) {
    response.destroy();
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof HttpError) {
    // A body that was too large is not read to its end; closing the connection drops the rest.
    if (error.status === 413) response.setHeader('connection', 'close');
    return sendJson(response, error.status, { error: message });
  }
  if (error instanceof UnknownRunError) return sendJson(response, 404, { error: message });
  if (error instanceof RefusedError) return sendJson(response, 409, { error: message });
  if (error instanceof UnreachableError) return sendJson(response, 503, { error: message });
  console.error('web chat:', error);
  sendJson(response, 500, { error: `the web chat failed: ${message}` });
}
