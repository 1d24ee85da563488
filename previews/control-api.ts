// The preview server's control API, under /.host/ (no run id can start with a dot, so it never shadows a
// preview). The deploy activity uses it to hand a prepared checkout to the server, which runs it as a
// service preview (previews/services.ts). Every request needs `Authorization: Bearer <token>`; without a
// token configured the API does not exist (404).
//
//   PUT    /.host/services/<runId>/<repoId>   { dir, start: { run, timeoutSeconds }, health, env }
//          dir: the checkout, relative to the store or absolute, a folder directly inside
//          <store>/.services/<runId>/<repoId>/ (anything else: 400). Answers once the service is healthy or
//          has failed: 200 { status: 'ready' | 'failed', url, output }.
//   DELETE /.host/services/<runId>/<repoId>   stops it and deletes its folder: 200 { stopped }; idempotent.
//   GET    /.host/services                    200 { services: ServiceView[] }
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { z } from 'zod';
import type { ServiceSupervisor } from './services';
import { isServiceDeployId, isStoreId, serviceFolder } from './store';

export const CONTROL_PREFIX = '/.host/';

const MAX_BODY_BYTES = 64 * 1024;

const ServiceRequestSchema = z.object({
  dir: z.string().min(1).max(4096),
  start: z.object({ run: z.string().min(1).max(20_000), timeoutSeconds: z.number().int().min(1).max(3600) }),
  health: z.string().regex(/^\/[^\s]*$/, 'a path starting with "/", such as /healthz').default('/'),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as API_URL'), z.string().max(20_000)).default({}),
});
export type ServiceRequest = z.input<typeof ServiceRequestSchema>;

export interface ControlApiOptions {
  /** The resolved preview store. */
  root: string;
  services: ServiceSupervisor;
  /** Unset: the control API is off. */
  token: string | undefined;
  /** Where the server listens, for the `url` of a started service. */
  serverUrl: () => string;
}

export async function handleControlRequest(request: http.IncomingMessage, response: http.ServerResponse, pathname: string, options: ControlApiOptions): Promise<void> {
  if (options.token === undefined) return json(response, 404, { error: 'not found' });
  if (!authorized(request.headers.authorization, options.token)) {
    response.setHeader('WWW-Authenticate', 'Bearer realm="preview server"');
    return json(response, 401, { error: 'the control API needs Authorization: Bearer <the preview server token>' });
  }
  const parts = pathname.slice(CONTROL_PREFIX.length).split('/');
  if (parts[0] !== 'services') return json(response, 404, { error: 'not found' });
  if (parts.length === 1) {
    if (request.method !== 'GET') return methodNotAllowed(response, 'GET');
    return json(response, 200, { services: options.services.list() });
  }
  const [, runId, repo, ...rest] = parts;
  if (rest.length > 0 || runId === undefined || repo === undefined || !isStoreId(runId) || !isStoreId(repo)) {
    return json(response, 404, { error: 'use /.host/services/<runId>/<repoId>' });
  }
  if (request.method === 'DELETE') return json(response, 200, { stopped: await options.services.stop(runId, repo) });
  if (request.method !== 'PUT') return methodNotAllowed(response, 'PUT, DELETE');

  const body = await readJson(request);
  if ('refused' in body) return json(response, body.status, { error: body.refused });
  const parsed = ServiceRequestSchema.safeParse(body.value);
  if (!parsed.success) return json(response, 400, { error: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') });
  const deployId = await deployIdOf(options.root, runId, repo, parsed.data.dir);
  if (deployId === null) {
    return json(response, 400, { error: `dir must be a folder directly inside ${path.join('.services', runId, repo)}/ in the preview store (the deploy moves its checkout there)` });
  }
  const { start, health, env } = parsed.data;
  const outcome = await options.services.start(runId, repo, { deployId, start, health, env });
  // Not the service's failure: the caller should try again once a server runs (and restarts what ran).
  if (options.services.isClosing) return json(response, 503, { error: 'the preview server is shutting down' });
  return json(response, 200, { ...outcome, url: `${options.serverUrl()}/${runId}/${repo}/` });
}

/** Compares digests, so neither the token's content nor its length shows in the time an answer takes. */
function authorized(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (!match) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** The deploy folder `dir` names, resolved (links followed), when it sits where the deploy puts checkouts. */
async function deployIdOf(root: string, runId: string, repo: string, dir: string): Promise<string | null> {
  const resolved = await fs.realpath(path.resolve(root, dir)).catch(() => null);
  const parent = await fs.realpath(serviceFolder(root, runId, repo)).catch(() => null);
  if (resolved === null || parent === null || path.dirname(resolved) !== parent) return null;
  const deployId = path.basename(resolved);
  if (!isServiceDeployId(deployId) || !(await fs.stat(resolved)).isDirectory()) return null;
  return deployId;
}

async function readJson(request: http.IncomingMessage): Promise<{ value: unknown } | { refused: string; status: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return { refused: `the body is larger than ${MAX_BODY_BYTES} bytes`, status: 413 };
    chunks.push(chunk as Buffer);
  }
  try {
    return { value: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { refused: 'the body must be JSON', status: 400 };
  }
}

function methodNotAllowed(response: http.ServerResponse, allow: string): void {
  response.setHeader('Allow', allow);
  json(response, 405, { error: `use ${allow}` });
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  response.end(`${JSON.stringify(body)}\n`);
}
