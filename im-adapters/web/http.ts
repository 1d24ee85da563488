// The plumbing of the web chat's HTTP server: reading a bounded JSON body, answering in JSON, serving the
// page's few static files. No routing and no knowledge of runs: server.ts and api.ts hold those.
import { promises as fs } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { z } from 'zod';

/** An answer with a status other than 200 and a reason the page shows as it is. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A requirement is at most 20,000 characters (domain/contracts.ts); this leaves room for JSON escaping. */
export const MAX_BODY_BYTES = 128 * 1024;

/**
 * Reads and parses a JSON body, then validates it. Only `application/json` is accepted: a browser cannot
 * send that cross-origin without a preflight this server never approves, so another site open in the same
 * browser cannot press buttons here.
 */
export async function readJsonBody<T>(request: http.IncomingMessage, schema: z.ZodType<T>, maxBytes = MAX_BODY_BYTES): Promise<T> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'send the body as application/json');
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HttpError(413, `the body is larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, `the body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
  return validate(schema, raw, 'body');
}

/** Validates any input (body, query, path) and turns a failure into a 400 that says what is wrong. */
export function validate<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const reasons = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new HttpError(400, `bad ${what}: ${reasons.join('; ')}`);
}

export function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // Answers describe a run at one moment; a cached one would show a stale card.
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(text);
}

const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
  // diff2html's own stylesheet for the diffs in the review panel, from the installed package.
  '/vendor/diff2html.min.css': { file: require.resolve('diff2html/bundles/css/diff2html.min.css'), type: 'text/css; charset=utf-8' },
};

// Scripts and styles from this server only; images from anywhere over http(s), because preview
// screenshots live on the preview server (another port, or another host in production).
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' http: https: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Serves one of the page's files by its fixed name (never a path taken from the request); false if none. */
export async function serveStatic(publicDir: string, pathname: string, response: http.ServerResponse): Promise<boolean> {
  const entry = STATIC_FILES[pathname];
  if (!entry) return false;
  const content = await fs.readFile(path.resolve(publicDir, entry.file));
  response.writeHead(200, {
    'content-type': entry.type,
    'content-length': content.length,
    'cache-control': 'no-cache',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  response.end(content);
  return true;
}
