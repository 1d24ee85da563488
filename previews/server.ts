// The preview server (layout of its store in previews/store.ts): reviewers open a run's previews and
// screenshots through it.
//   /<runId>/                     the change-set page: every preview of the run (previews/change-set-page.ts)
//   /<runId>/<repoId>/…           a service preview, proxied to its process (previews/proxy.ts), any method;
//                                 otherwise the static preview's files (GET and HEAD)
//   /<runId>/_screenshots/…       screenshots
//   /<runId>/_logs/<repoId>.log   the log of a service preview
//   /.host/…                      the control API that starts and stops service previews (previews/control-api.ts)
// and, on a preview's own origin http://<repo>--<run>.localhost:<port>/…, that preview at the root (store.ts).
// Files are served as they are, never a listing, nothing outside the store, and nothing a browser should
// cache (a redeploy replaces a preview under the same address). The server owns the service previews'
// processes: close() stops them, and a new server on the same store starts again what was running.
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { listenOn } from '../activities/listen';
import { escapeHtml, renderChangeSetPage } from './change-set-page';
import { CONTROL_PREFIX, handleControlRequest, type ControlApiOptions } from './control-api';
import { proxyToService } from './proxy';
import { ServiceSupervisor, type ServiceView } from './services';
import { PreviewOrigins } from './origins';
import { isStoreId, LOGS_SEGMENT, originLabelOfHost, readPreviewMetas } from './store';

export interface PreviewServer {
  /** Where the server listens, e.g. http://127.0.0.1:8741 (no trailing slash). */
  url: string;
  /** The service previews this server runs. */
  services: ServiceSupervisor;
  /** Resolves once the services that were running when the store was last served have been started again. */
  restored: Promise<void>;
  close(): Promise<void>;
}

export interface PreviewServerOptions {
  dir: string;
  port?: number;
  host?: string;
  /** Bearer token of the control API (service previews); unset turns the API off. */
  token?: string;
  /** Between SIGTERM and SIGKILL when a service preview is stopped (default 5 s). */
  serviceGraceMs?: number;
  /** Where to tell what happens to service previews outside a request (restarts, crashes). */
  log?: (line: string) => void;
}

/** What a request handler needs of the server. */
interface Served {
  root: string;
  services: ServiceSupervisor;
  control: ControlApiOptions;
  agent: http.Agent;
  origins: PreviewOrigins;
}

const LOG_SERVED_BYTES = 1024 * 1024;
const PROXY_LOG_TAIL_CHARS = 2_000;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
};

export async function startPreviewServer({ dir, port = 0, host = '127.0.0.1', token, serviceGraceMs, log }: PreviewServerOptions): Promise<PreviewServer> {
  if (token !== undefined && token.length < 16) throw new Error('the preview server token must be at least 16 characters');
  await fs.mkdir(dir, { recursive: true });
  // Compared against resolved paths, so a link inside the store cannot lead out of it.
  const root = await fs.realpath(dir);
  const services = new ServiceSupervisor(root, { graceMs: serviceGraceMs, log });
  let url = '';
  // Kept-alive connections to the services: a proxied request does not pay for a new connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const served: Served = { root, services, agent, control: { root, services, token, serverUrl: () => url }, origins: new PreviewOrigins(root) };
  const server = http.createServer((request, response) => {
    serve(served, request, response).catch((error: unknown) => {
      if (!response.headersSent) reply(response, 500, `preview server error: ${error instanceof Error ? error.message : String(error)}`);
      else response.destroy();
    });
  });
  const listening = await listenOn(server, port, host);
  url = `http://${listening.hostInUrl}:${listening.port}`;
  const restored = services.restore();
  return {
    url,
    services,
    restored,
    close: async () => {
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      // Browsers and fetch keep connections open; without this, close waits for them to time out.
      server.closeAllConnections();
      await services.close();
      agent.destroy();
      await closed;
    },
  };
}

async function serve(served: Served, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  let rawUrl = request.url ?? '';
  // A preview's own origin: its paths are the preview's, as if under /<run>/<repo>/ on the server's address.
  const label = originLabelOfHost(request.headers.host);
  let mount = '';
  if (label !== null) {
    const at = await served.origins.resolve(label);
    if (!at) return reply(response, 404, `no preview lives at ${label}.localhost (it may have been removed)`);
    if (!rawUrl.startsWith('/')) return reply(response, 400, 'the request path must start with "/"');
    mount = `/${encodeURIComponent(at.runId)}/${encodeURIComponent(at.repo)}`;
    rawUrl = `${mount}${rawUrl}`;
    request.url = rawUrl;
  } else if (rawUrl.startsWith(CONTROL_PREFIX)) {
    return handleControlRequest(request, response, rawUrl.replace(/[?#].*$/, ''), served.control);
  }
  const target = parseTarget(rawUrl, mount);
  if ('refused' in target) return reply(response, 400, target.refused);
  const [runId, second] = target.segments;
  if (runId === undefined) return serveIndex(served, request, response);
  if (second === undefined) return serveChangeSet(served, request, response, runId, target);
  if (second === LOGS_SEGMENT) return serveServiceLog(served, request, response, runId, target.segments);

  const service = served.services.find(runId, second);
  if (service) return serveService(served, request, response, service, target);

  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return reply(response, 405, 'the preview server only answers GET and HEAD');
  }
  const root = served.root;
  const requested = path.join(root, ...target.segments);
  const resolved = await fs.realpath(requested).catch(() => null);
  if (resolved === null) return reply(response, 404, 'not found');
  if (!resolved.startsWith(root + path.sep)) return reply(response, 403, 'outside the preview store');

  let file = resolved;
  let stats = await fs.stat(file);
  if (stats.isDirectory()) {
    // Relative links in the page (style.css, ./app.js) resolve against the address: it must end in "/".
    if (!target.trailingSlash) {
      response.setHeader('Location', `${target.pathname.slice(target.mount.length)}/${target.search}`);
      return reply(response, 301, 'moved');
    }
    file = path.join(resolved, 'index.html');
    const index = await fs.stat(file).catch(() => null);
    if (!index?.isFile()) return reply(response, 404, 'not found (this folder has no index.html)');
    stats = index;
  }
  if (!stats.isFile()) return reply(response, 404, 'not found');
  sendFile(request, response, file, stats);
}

/** The server's own address (what `npm start` prints): the runs that have previews, each to its change-set page. */
async function serveIndex(served: Served, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return reply(response, 405, 'the preview server only answers GET and HEAD');
  }
  const runs: { runId: string; previews: number }[] = [];
  for (const name of await fs.readdir(served.root).catch(() => [] as string[])) {
    if (!isStoreId(name)) continue;
    const metas = await readPreviewMetas(served.root, name);
    if (metas.length) runs.push({ runId: name, previews: metas.length });
  }
  const items = runs.map((r) => `<li><a href="/${encodeURIComponent(r.runId)}/">${escapeHtml(r.runId)}</a> · ${r.previews} preview${r.previews === 1 ? '' : 's'}</li>`).join('\n');
  const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Previews</title><style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:48rem;padding:0 1rem}</style></head>\n<body><h1>Previews</h1><p>Each change request's previews are one change set, at <code>/&lt;run id&gt;/</code>. Runs with live previews:</p>\n${items ? `<ul>${items}</ul>` : '<p>none right now: previews appear when a run reaches review.</p>'}\n</body></html>\n`;
  const body = Buffer.from(html, 'utf8');
  response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** The change-set page; `/<runId>` without the slash is sent to it when the run has previews. */
async function serveChangeSet(served: Served, request: http.IncomingMessage, response: http.ServerResponse, runId: string, target: ParsedTarget): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return reply(response, 405, 'the change-set page only answers GET and HEAD');
  }
  const metas = await readPreviewMetas(served.root, runId);
  if (metas.length === 0) return reply(response, 404, 'not found (no previews of this run)');
  if (!target.trailingSlash) {
    response.setHeader('Location', `${target.pathname}/${target.search}`);
    return reply(response, 301, 'moved');
  }
  const html = renderChangeSetPage(runId, metas, (repo) => served.services.find(runId, repo));
  const body = Buffer.from(html, 'utf8');
  response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  response.end(request.method === 'HEAD' ? undefined : body);
}

async function serveService(served: Served, request: http.IncomingMessage, response: http.ServerResponse, service: ServiceView, target: ParsedTarget): Promise<void> {
  const { runId, repo } = service;
  const prefix = `/${runId}/${repo}`;
  if (target.segments.length === 2 && !target.trailingSlash) {
    // As for static previews: relative addresses resolve against a path that ends in "/".
    response.setHeader('Location', `${target.pathname}/${target.search}`);
    return reply(response, 308, 'moved');
  }
  const logLink = `/${runId}/${LOGS_SEGMENT}/${repo}.log`;
  if (service.status === 'starting') {
    response.setHeader('Retry-After', '2');
    return reply(response, 503, `the preview of ${repo} (run ${runId}) is starting; try again in a moment. Its log: ${logLink}`);
  }
  if (service.status !== 'ready' || service.port === null) {
    const tail = await served.services.logTail(runId, repo, PROXY_LOG_TAIL_CHARS);
    return reply(response, 502, `the preview of ${repo} (run ${runId}) is not running: ${service.reason ?? service.status}\n\nIts log: ${logLink}\nThe end of it:\n${tail}`);
  }
  // The raw path past the prefix, as the client spelled it (the prefix's segments are plain ids).
  const rawPath = (request.url ?? '').slice(rawPrefixLength(request.url ?? ''));
  proxyToService(request, response, { port: service.port, prefix, path: rawPath || '/' }, served.agent, (error) => {
    reply(response, 502, `the preview of ${repo} (run ${runId}) did not answer: ${(error as NodeJS.ErrnoException).code ?? error.message}\n\nIts log: ${logLink}`);
  });
}

/** Length of "/<run>/<repo>" in the raw request path. */
function rawPrefixLength(rawUrl: string): number {
  const second = rawUrl.indexOf('/', 1);
  const third = rawUrl.slice(second + 1).search(/[/?#]/);
  return third === -1 ? rawUrl.length : second + 1 + third;
}

async function serveServiceLog(served: Served, request: http.IncomingMessage, response: http.ServerResponse, runId: string, segments: string[]): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return reply(response, 405, 'logs only answer GET and HEAD');
  }
  const name = segments[2];
  if (segments.length !== 3 || name === undefined || !name.endsWith('.log')) return reply(response, 404, 'not found');
  const file = served.services.logFile(runId, name.slice(0, -'.log'.length));
  const handle = file === null ? null : await fs.open(file, 'r').catch(() => null);
  if (handle === null) return reply(response, 404, 'not found (no service preview of this repository in this run)');
  try {
    // A service that has run for days has a long log: the end is what explains its state.
    const { size } = await handle.stat();
    const length = Math.min(size, LOG_SERVED_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    response.end(request.method === 'HEAD' ? undefined : buffer);
  } finally {
    await handle.close();
  }
}

/** `mount`: the `/<run>/<repo>` a preview's own origin put before the path (empty on the server's address). */
type ParsedTarget = { segments: string[]; trailingSlash: boolean; pathname: string; search: string; mount: string };
type Target = ParsedTarget | { refused: string };

/**
 * Splits the raw request path into decoded segments: <runId>/<repoId or _screenshots>/<path inside>.
 * Anything that could climb out (".." in any spelling, encoded slashes, empty segments) is refused.
 */
function parseTarget(rawUrl: string, mount = ''): Target {
  if (!rawUrl.startsWith('/')) return { refused: 'the request path must start with "/"' };
  const queryAt = rawUrl.search(/[?#]/);
  const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const search = queryAt === -1 ? '' : rawUrl.slice(queryAt);
  const trailingSlash = pathname.endsWith('/');
  const raw = pathname.slice(1, trailingSlash ? -1 : undefined);
  if (raw === '') return { segments: [], trailingSlash, pathname, search, mount };
  const segments: string[] = [];
  for (const part of raw.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(part);
    } catch {
      return { refused: `"${part}" is not a valid percent-encoded path segment` };
    }
    if (segment === '' || segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) {
      return { refused: 'the request path may not contain empty, "." or ".." segments or encoded slashes' };
    }
    segments.push(segment);
  }
  const [runId, second] = segments;
  if (!isStoreId(runId!) || (second !== undefined && !isStoreId(second))) {
    return { refused: 'a run or repository id uses letters, digits, ".", "_" or "-" and does not start with "."' };
  }
  return { segments, trailingSlash, pathname, search, mount };
}

function sendFile(request: http.IncomingMessage, response: http.ServerResponse, file: string, stats: Stats): void {
  response.writeHead(200, {
    'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': stats.size,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => response.destroy());
  stream.pipe(response);
}

function reply(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  response.end(`${text}\n`);
}
