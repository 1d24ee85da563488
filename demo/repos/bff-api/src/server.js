// HTTP wiring for the handlers. Start with `node src/server.js` (PORT defaults to 3001; HOST to every interface).
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { getProduct, listProducts } from './handlers.js';

function route(method, pathname) {
  if (method !== 'GET') return { status: 405, body: { error: 'Only GET is supported' } };
  if (pathname === '/healthz') return { status: 200, body: { ok: true } };
  if (pathname === '/api/products') return listProducts();
  const match = /^\/api\/products\/([^/]+)$/.exec(pathname);
  if (match) return getProduct(decodeURIComponent(match[1]));
  return { status: 404, body: { error: `No route for ${pathname}` } };
}

export function createApiServer() {
  return createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const { status, body } = route(req.method ?? 'GET', pathname);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  });
}

// Only listen when run directly, so importing this module never opens a port.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3001);
  const host = process.env.HOST || undefined;
  createApiServer().listen(port, host, () => console.log(`bff-api listening on http://${host ?? 'localhost'}:${port}`));
}
