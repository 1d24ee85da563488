// The demo's local pages: a product requirements document and the page holding its acceptance criteria,
// as a team's wiki would serve them. Demo requirements link here, so context intake reads real pages over
// HTTP (on the allow-list by default). Static files only, from demo/pages; nothing else is served.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { listenOn } from '../activities/listen';

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.md': 'text/markdown; charset=utf-8', '.yaml': 'application/yaml', '.json': 'application/json' };

export interface DemoPages {
  url: string;
  close(): Promise<void>;
}

export async function startDemoPages(options: { dir: string; port?: number; host?: string }): Promise<DemoPages> {
  const root = path.resolve(options.dir);
  const server = http.createServer((req, res) => {
    void serve(root, req, res);
  });
  const host = options.host ?? '127.0.0.1';
  const { port, hostInUrl } = await listenOn(server, options.port ?? 0, host);
  return {
    url: `http://${hostInUrl}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function serve(root: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://pages').pathname);
  const file = path.resolve(root, `.${pathname.endsWith('/') ? `${pathname}index.html` : pathname}`);
  const type = TYPES[path.extname(file)];
  const inside = file.startsWith(root + path.sep);
  const stat = inside && type && (req.method === 'GET' || req.method === 'HEAD') ? await fs.lstat(file).catch(() => null) : null;
  if (!stat?.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': type!, 'content-length': stat.size });
  if (req.method === 'HEAD') return void res.end();
  res.end(await fs.readFile(file));
}
