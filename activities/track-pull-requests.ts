// Looking at the run's open pull requests: merged or closed, the head's CI status, the review decision and
// how many review comments there are. Read-only, so safe to retry. A pull request that cannot be read is
// reported with the reason and looked at again later; rate limits and outages are thrown for Temporal to
// retry with its backoff.
import type { Octokit } from '@octokit/rest';
import type { ReviewFeedback, TrackedPullRequest, TrackRequest } from '../domain/activity-contracts';
import type { ActivityDeps } from './deps';
import { explainForgeError, forgeCoordinates, type ForgeCoordinates } from './pull-requests';
import { ApplicationFailure } from '@temporalio/activity';

export async function readPullRequests(deps: ActivityDeps, request: TrackRequest): Promise<TrackedPullRequest[]> {
  return Promise.all(
    request.pullRequests.map(async ({ repo, number }) => {
      const where = forgeCoordinates(repo.url);
      try {
        return await readOne(deps.forge.octokit(where.apiUrl), where, repo.id, number);
      } catch (error) {
        const advice = explainForgeError(error, repo.id);
        if (advice.retryable) throw ApplicationFailure.create({ message: deps.redact(advice.message), type: advice.rateLimited ? 'ForgeRateLimited' : 'ForgeUnavailable', nextRetryDelay: advice.retryAfterMs });
        return { repo: repo.id, number, state: 'open', headSha: null, ci: null, review: null, reviewComments: 0, error: deps.redact(advice.message) } satisfies TrackedPullRequest;
      }
    }),
  );
}

async function readOne(octokit: Octokit, where: ForgeCoordinates, repo: string, number: number): Promise<TrackedPullRequest> {
  const at = { owner: where.owner, repo: where.repo };
  const { data: pull } = await octokit.rest.pulls.get({ ...at, pull_number: number });
  const state = pull.merged || pull.merged_at ? 'merged' : pull.state === 'closed' ? 'closed' : 'open';
  const [ci, reviews, lineComments] = await Promise.all([
    ciStatus(octokit, where, pull.head.sha),
    optional(async () => (await octokit.rest.pulls.listReviews({ ...at, pull_number: number, per_page: 100 })).data),
    optional(async () => (await octokit.rest.pulls.listReviewComments({ ...at, pull_number: number, per_page: 100 })).data.length),
  ]);
  // What reviewers wrote: line comments and the reviews that say something.
  const reviewComments = (lineComments ?? 0) + (reviews ?? []).filter((r) => r.body?.trim()).length;
  return { repo, number, state, headSha: pull.head.sha, ci, review: reviews ? reviewDecision(reviews) : null, reviewComments, error: null };
}

/** Every review comment and review body of the pull requests, oldest first, for a feedback round. */
export async function readReviewFeedback(deps: ActivityDeps, request: TrackRequest): Promise<ReviewFeedback[]> {
  return Promise.all(
    request.pullRequests.map(async ({ repo, number }) => {
      const where = forgeCoordinates(repo.url);
      const octokit = deps.forge.octokit(where.apiUrl);
      const at = { owner: where.owner, repo: where.repo, pull_number: number, per_page: 100 };
      try {
        const [comments, reviews] = await Promise.all([octokit.rest.pulls.listReviewComments(at), octokit.rest.pulls.listReviews(at)]);
        // Comments are data from people, not instructions to the service; the edit round reads them as feedback.
        return {
          repo: repo.id,
          number,
          comments: [
            ...reviews.data.filter((r) => r.body?.trim()).map((r) => ({ id: `review-${r.id}`, by: r.user?.login ?? 'someone', text: deps.redact(r.body), path: null, line: null })),
            ...comments.data.map((c) => ({ id: `comment-${c.id}`, by: c.user?.login ?? 'someone', text: deps.redact(c.body), path: c.path, line: c.line ?? null })),
          ],
        };
      } catch (error) {
        const advice = explainForgeError(error, repo.id);
        throw ApplicationFailure.create({ message: deps.redact(advice.message), type: advice.retryable ? 'ForgeUnavailable' : 'ForgeRefused', nonRetryable: !advice.retryable, nextRetryDelay: advice.retryable ? advice.retryAfterMs : undefined });
      }
    }),
  );
}

/** The head's CI: commit statuses and check runs together, as GitHub's merge box sums them up. */
async function ciStatus(octokit: Octokit, where: ForgeCoordinates, sha: string): Promise<TrackedPullRequest['ci']> {
  const at = { owner: where.owner, repo: where.repo, ref: sha };
  const [combined, checks] = await Promise.all([
    optional(async () => (await octokit.rest.repos.getCombinedStatusForRef(at)).data),
    optional(async () => (await octokit.rest.checks.listForRef({ ...at, per_page: 100 })).data.check_runs),
  ]);
  const states: ('success' | 'failure' | 'pending')[] = [];
  if (combined && combined.total_count > 0) states.push(combined.state === 'success' ? 'success' : combined.state === 'pending' ? 'pending' : 'failure');
  for (const run of checks ?? []) {
    if (run.status !== 'completed') states.push('pending');
    else states.push(['success', 'neutral', 'skipped'].includes(run.conclusion ?? '') ? 'success' : 'failure');
  }
  if (states.length === 0) return null;
  return states.includes('failure') ? 'failure' : states.includes('pending') ? 'pending' : 'success';
}

/** Each reviewer's latest approving or blocking review counts; one "changes requested" blocks. */
function reviewDecision(reviews: { user: { login: string } | null; state: string }[]): TrackedPullRequest['review'] {
  const latest = new Map<string, string>();
  for (const review of reviews) if (review.state === 'APPROVED' || review.state === 'CHANGES_REQUESTED' || review.state === 'DISMISSED') latest.set(review.user?.login ?? '?', review.state);
  const decisions = [...latest.values()];
  if (decisions.includes('CHANGES_REQUESTED')) return 'changes_requested';
  return decisions.includes('APPROVED') ? 'approved' : null;
}

/** A part a host may not offer (the local forge has no CI or reviews; a token may lack the checks scope). */
async function optional<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (error) {
    const { status, response } = error as { status?: number; response?: { headers?: Record<string, string | undefined> } };
    const headers = response?.headers ?? {};
    const rateLimited = headers['x-ratelimit-remaining'] === '0' || headers['retry-after'] !== undefined;
    if (status === 404 || (status === 403 && !rateLimited)) return null;
    throw error;
  }
}
