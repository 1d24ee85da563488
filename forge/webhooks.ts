// The forge tells who asked (the service's webhook receiver) when a pull request changes, as GitHub does:
// a `pull_request`, `pull_request_review` or `pull_request_review_comment` delivery, signed with the
// hook's secret (X-Hub-Signature-256). Deliveries are fire-and-forget, as GitHub's are: a receiver that
// is down misses one and the run's own polling covers it.
import { createHmac, randomUUID } from 'node:crypto';
import type { PullRecord } from './pulls-store';
import type { Repo } from './repos';

export interface WebhookTarget {
  url: string;
  secret: string;
}

export type PullEvent = 'pull_request' | 'pull_request_review' | 'pull_request_review_comment';

/** Sends once `saved` settles (the change is on disk), so a receiver that looks at once sees it. */
export function deliverPullEvent(targets: readonly WebhookTarget[], saved: Promise<unknown>, event: PullEvent, action: string, repo: Repo, pull: PullRecord, headSha: string): void {
  if (targets.length === 0) return;
  const body = JSON.stringify({
    action,
    number: pull.number,
    pull_request: { number: pull.number, state: pull.state, merged: pull.merged, head: { ref: pull.head, sha: headSha }, base: { ref: pull.base } },
    repository: { full_name: repo.fullName, name: repo.name, owner: { login: repo.owner } },
  });
  void saved.then(() => targets.forEach((target) => send(target, event, body)));
}

function send(target: WebhookTarget, event: PullEvent, body: string): void {
  const headers = {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': randomUUID(),
    'x-hub-signature-256': `sha256=${createHmac('sha256', target.secret).update(body).digest('hex')}`,
  };
  fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) }).catch((error: unknown) => {
    console.error(`forge: the webhook to ${target.url} was not delivered: ${error instanceof Error ? error.message : String(error)}`);
  });
}
