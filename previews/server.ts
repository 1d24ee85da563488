// A small static file server for the preview store (layout in previews/store.ts): reviewers open a
// run's previews and screenshots through it. It serves files only, never a listing, nothing outside the
// store, and nothing a browser should cache (a redeploy replaces a preview under the same address).
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { isStoreId } from './store';

export interface PreviewServer {
  /** Where the server listens, e.g. http://127.0.0.1:8741 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

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

export async function startPreviewServer({ dir, port = 0, host = '127.0.0.1' }: { dir: string; port?: number; host?: string }): Promise<PreviewServer> {
  await fs.mkdir(dir, { recursive: true });
  // Compared against resolved paths, so a link inside the store cannot lead out of it.
  const root = await fs.realpath(dir);
  const server = http.createServer((request, response) => {
    serve(root, request, response).catch((error: unknown) => {
      if (!response.headersSent) reply(response, 500, `preview server error: ${error instanceof Error ? error.message : String(error)}`);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostInUrl}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Browsers and fetch keep connections open; without this, close waits for them to time out.
        server.closeAllConnections();
      }),
  };
}

async function serve(root: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return reply(response, 405, 'the preview server only answers GET and HEAD');
  }
  const target = parseTarget(request.url ?? '');
  if ('refused' in target) return reply(response, 400, target.refused);
  if (target.segments.length < 2) return reply(response, 404, 'not found');

  const requested = path.join(root, ...target.segments);
  const resolved = await fs.realpath(requested).catch(() => null);
  if (resolved === null) return reply(response, 404, 'not found');
  if (!resolved.startsWith(root + path.sep)) return reply(response, 403, 'outside the preview store');

  let file = resolved;
  let stats = await fs.stat(file);
  if (stats.isDirectory()) {
    // Relative links in the page (style.css, ./app.js) resolve against the address: it must end in "/".
    if (!target.trailingSlash) {
      response.setHeader('Location', `${target.pathname}/${target.search}`);
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

type Target = { segments: string[]; trailingSlash: boolean; pathname: string; search: string } | { refused: string };

/**
 * Splits the raw request path into decoded segments: <runId>/<repoId or _screenshots>/<path inside>.
 * Anything that could climb out (".." in any spelling, encoded slashes, empty segments) is refused.
 */
function parseTarget(rawUrl: string): Target {
  if (!rawUrl.startsWith('/')) return { refused: 'the request path must start with "/"' };
  const queryAt = rawUrl.search(/[?#]/);
  const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const search = queryAt === -1 ? '' : rawUrl.slice(queryAt);
  const trailingSlash = pathname.endsWith('/');
  const raw = pathname.slice(1, trailingSlash ? -1 : undefined);
  if (raw === '') return { segments: [], trailingSlash, pathname, search };
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
  return { segments, trailingSlash, pathname, search };
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
