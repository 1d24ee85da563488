// Webhooks from GitHub (or the local forge, which sends the same): a pull request, its reviews or its CI
// changed. A run's branch names the run (`change-request/<run id>`), so the receiver only tells that run to
// look at its pull requests now (workflows/tracking.ts); what the run then sees it reads from the host
// itself, never from the webhook. Every delivery must carry GitHub's signature of its body with the shared
// secret (X-Hub-Signature-256); anything else is refused and changes nothing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { listenOn } from '../activities/listen';
import { pullRequestsChangedSignal } from '../workflows/definitions';

export interface PullRequestWebhooksOptions {
  client: Client;
  /** The webhook's secret as configured on GitHub (GITHUB_WEBHOOK_SECRET). */
  secret: string;
  port?: number;
  host?: string;
}

export interface PullRequestWebhooks {
  /** Where GitHub delivers: `<url>/github/webhooks`. */
  url: string;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = '/github/webhooks';
const MAX_BODY_BYTES = 1024 * 1024;
const RUN_BRANCH = /^change-request\/([A-Za-z0-9][A-Za-z0-9._-]{0,199})$/;

export async function startPullRequestWebhooks(options: PullRequestWebhooksOptions): Promise<PullRequestWebhooks> {
  if (options.secret.length < 16) throw new Error('the webhook secret must be at least 16 characters');
  const server = http.createServer((request, response) => {
    receive(options, request).then(
      ({ status, body }) => answer(response, status, body),
      (error: unknown) => answer(response, 500, { error: error instanceof Error ? error.message : String(error) }),
    );
  });
  const { port, hostInUrl } = await listenOn(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url: `http://${hostInUrl}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function receive(options: PullRequestWebhooksOptions, request: http.IncomingMessage): Promise<{ status: number; body: unknown }> {
  const atPath = (request.url ?? '').split('?')[0] === WEBHOOK_PATH;
  // A person who opens the printed address learns what it is; only signed POSTs do anything.
  if (atPath && request.method === 'GET') return { status: 200, body: { receiver: 'pull request webhooks', deliver: `POST ${WEBHOOK_PATH}, signed with X-Hub-Signature-256`, events: ['pull_request', 'pull_request_review', 'pull_request_review_comment', 'check_suite', 'check_run', 'status'] } };
  if (request.method !== 'POST' || !atPath) return { status: 404, body: { error: `deliver webhooks with POST to ${WEBHOOK_PATH}` } };
  const raw = await readBody(request);
  if (raw === null) return { status: 413, body: { error: `a delivery is at most ${MAX_BODY_BYTES} bytes` } };
  if (!signedWith(options.secret, raw, request.headers['x-hub-signature-256'])) return { status: 401, body: { error: 'the signature (X-Hub-Signature-256) does not match the body and the secret' } };
  const event = String(request.headers['x-github-event'] ?? '');
  if (event === 'ping') return { status: 200, body: { pong: true } };
  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch {
    return { status: 400, body: { error: 'the body is not JSON' } };
  }
  const runs = [...new Set(branchesOf(event, payload).flatMap((branch) => RUN_BRANCH.exec(branch)?.[1] ?? []))];
  const told: string[] = [];
  for (const runId of runs) {
    try {
      await options.client.workflow.getHandle(runId).signal(pullRequestsChangedSignal);
      told.push(runId);
    } catch (error) {
      // A run that ended, or a branch that only looks like a run's: nothing to tell.
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
  return { status: 202, body: { event, runs: told } };
}

/** The branches a delivery is about, for the events tracking follows. */
function branchesOf(event: string, payload: unknown): string[] {
  const p = payload as {
    pull_request?: { head?: { ref?: unknown } };
    check_suite?: { head_branch?: unknown };
    check_run?: { check_suite?: { head_branch?: unknown } };
    branches?: { name?: unknown }[];
  };
  const found: unknown[] = [];
  if (['pull_request', 'pull_request_review', 'pull_request_review_comment', 'pull_request_review_thread'].includes(event)) found.push(p.pull_request?.head?.ref);
  if (event === 'check_suite') found.push(p.check_suite?.head_branch);
  if (event === 'check_run') found.push(p.check_run?.check_suite?.head_branch);
  if (event === 'status') found.push(...(Array.isArray(p.branches) ? p.branches.map((b) => b?.name) : []));
  return found.filter((b): b is string => typeof b === 'string');
}

/** GitHub's `sha256=<hex>` HMAC of the exact body, compared in constant time. */
export function signedWith(secret: string, body: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function signature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

async function readBody(request: http.IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function answer(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
