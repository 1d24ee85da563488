// Pull requests through Octokit: on GitHub, on GitHub Enterprise, and on the local forge (which speaks the
// same REST shapes under /api/v3). Safe to retry: an open PR for the work branch is updated, never
// duplicated, and labels are only ever added (adding one twice changes nothing).
import type { Octokit } from '@octokit/rest';
import { ApplicationFailure } from '@temporalio/activity';
import type { PullRequestRef } from '../domain/contracts';
import { renderSummaryMarkdown } from '../domain/summary';
import type { ActivityDeps } from './deps';
import { ForgeAccessError } from './forge-access';
import type { LinkRequest, PullRequestOutcome, PullRequestRequest } from '../domain/activity-contracts';

export interface ForgeCoordinates {
  apiUrl: string;
  owner: string;
  repo: string;
}

/** github.com → api.github.com; any other host is treated like GitHub Enterprise (`/api/v3`). */
export function forgeCoordinates(cloneUrl: string): ForgeCoordinates {
  const url = new URL(cloneUrl);
  const parts = url.pathname.replace(/\.git$/, '').split('/').filter(Boolean);
  if (parts.length < 2) throw new Error(`cannot tell owner and repository from ${url.origin}${url.pathname}`);
  const [owner, repo] = parts.slice(-2) as [string, string];
  const prefix = parts.slice(0, -2).join('/');
  const apiUrl = url.hostname === 'github.com' ? 'https://api.github.com' : `${url.protocol}//${url.host}${prefix ? `/${prefix}` : ''}/api/v3`;
  return { apiUrl, owner, repo };
}

/**
 * Opens the pull request for the work branch (or updates the one already open), then adds the configured
 * labels. What GitHub refuses is reported per repository with what to do; rate limits and outages are
 * thrown, so Temporal retries the step later.
 */
export async function openPullRequest(deps: ActivityDeps, request: PullRequestRequest): Promise<PullRequestOutcome> {
  const repo = request.repo.id;
  const where = forgeCoordinates(request.repo.url);
  const { draft, labels } = deps.forge.pullRequests;
  let octokit: Octokit;
  let pr: PullRequestRef;
  try {
    octokit = deps.forge.octokit(where.apiUrl);
    // Nothing secret leaves in a PR, whatever its summary or output quoted.
    pr = await openOrUpdate(octokit, where, { ...request, title: deps.redact(request.title), body: deps.redact(request.body) }, draft);
  } catch (error) {
    return { repo, pr: null, error: `${repo}: ${reportOrThrow(deps, error, repo)}` };
  }
  if (labels.length === 0) return { repo, pr, error: null };
  try {
    await octokit.rest.issues.addLabels({ owner: where.owner, repo: where.repo, issue_number: pr.number, labels });
    return { repo, pr, error: null };
  } catch (error) {
    // The pull request stands; only the labels are missing, and a person can add them.
    const problem = reportOrThrow(deps, error, repo);
    return { repo, pr, error: `${repo}: pull request #${pr.number} is open, but its labels (${labels.join(', ')}) could not be added: ${problem}` };
  }
}

async function openOrUpdate(octokit: Octokit, where: ForgeCoordinates, request: PullRequestRequest, draft: boolean): Promise<PullRequestRef> {
  const base = request.repo.defaultBranch;
  const existing = await findOpenPullRequest(octokit, where, request.branch, base);
  if (existing) return updatePullRequest(octokit, where, existing.number, request);
  try {
    const { data } = await octokit.rest.pulls.create({
      owner: where.owner,
      repo: where.repo,
      head: request.branch,
      base,
      title: request.title,
      body: request.body,
      // Omitted unless wanted: a repository whose plan has no drafts refuses `draft: true` with a 422.
      ...(draft ? { draft: true } : {}),
    });
    return refOf(data, false);
  } catch (error) {
    // Someone (or an earlier attempt of this step) opened it between the look-up and the create.
    if (!saysAlreadyExists(error)) throw error;
    const raced = await findOpenPullRequest(octokit, where, request.branch, base);
    if (!raced) throw error;
    return updatePullRequest(octokit, where, raced.number, request);
  }
}

async function updatePullRequest(octokit: Octokit, where: ForgeCoordinates, number: number, request: PullRequestRequest): Promise<PullRequestRef> {
  const { data } = await octokit.rest.pulls.update({ owner: where.owner, repo: where.repo, pull_number: number, title: request.title, body: request.body });
  return refOf(data, true);
}

async function findOpenPullRequest(octokit: Octokit, where: ForgeCoordinates, branch: string, base: string) {
  const { data } = await octokit.rest.pulls.list({ owner: where.owner, repo: where.repo, head: `${where.owner}:${branch}`, base, state: 'open', per_page: 10 });
  return data[0];
}

function refOf(data: { number: number; html_url: string; state: string; merged_at?: string | null }, reused: boolean): PullRequestRef {
  const state = data.merged_at ? 'merged' : data.state === 'closed' ? 'closed' : 'open';
  return { number: data.number, url: data.html_url, state, reused };
}

/**
 * Rewrites every PR body with the combined summary and links to its siblings (all PRs exist by now).
 * Every PR is tried even when one fails; the failures are thrown together at the end.
 */
export async function linkPullRequests(deps: ActivityDeps, request: LinkRequest): Promise<void> {
  const siblings = request.pullRequests.map((p) => ({ repo: p.repo.id, url: p.url, number: p.number }));
  const failures: { pr: string; advice: ForgeErrorAdvice }[] = [];
  // One after another, as GitHub asks of requests that write (concurrent writes draw secondary limits).
  for (const pr of request.pullRequests) {
    const where = forgeCoordinates(pr.repo.url);
    try {
      await deps.forge.octokit(where.apiUrl).rest.pulls.update({
        owner: where.owner,
        repo: where.repo,
        pull_number: pr.number,
        body: deps.redact(renderSummaryMarkdown(request.summary, { siblings, forRepo: pr.repo.id })),
      });
    } catch (error) {
      failures.push({ pr: `${pr.repo.id} #${pr.number}`, advice: explain(error) });
    }
  }
  if (failures.length === 0) return;
  const message = deps.redact(
    `${failures.length} of ${request.pullRequests.length} pull requests could not be linked to their siblings: ${failures.map((f) => `${f.pr}: ${f.advice.message}`).join('; ')}`,
  );
  const retryable = failures.flatMap((f) => (f.advice.retryable ? [f.advice] : []));
  if (retryable.length === 0) throw ApplicationFailure.nonRetryable(message, 'ForgeRefused');
  // A later attempt rewrites every body again, the ones that worked included: same text, same result.
  const waitMs = Math.max(0, ...retryable.map((a) => a.retryAfterMs ?? 0));
  throw retryLater(message, waitMs || undefined, retryable.some((a) => a.rateLimited));
}

/** What a refusal means (without the repository's name); a rate limit or an outage is thrown instead, for Temporal to retry later. */
function reportOrThrow(deps: ActivityDeps, error: unknown, repo: string): string {
  const advice = explain(error);
  if (advice.retryable) throw retryLater(deps.redact(`${repo}: ${advice.message}`), advice.retryAfterMs, advice.rateLimited);
  return deps.redact(advice.message);
}

function retryLater(message: string, retryAfterMs: number | undefined, rateLimited: boolean): ApplicationFailure {
  return ApplicationFailure.create({ message, type: rateLimited ? 'ForgeRateLimited' : 'ForgeUnavailable', nextRetryDelay: retryAfterMs });
}

// ---- what GitHub's refusals mean and what to do about them ----

/** A refusal to report, or a failure to retry: `retryAfterMs` is how long GitHub asked to wait, when it said. */
export type ForgeErrorAdvice =
  | { retryable: false; message: string }
  | { retryable: true; message: string; rateLimited: boolean; retryAfterMs: number | undefined };

/** GitHub's advice when a rate limit names no time to wait: at least a minute. */
const SECONDARY_LIMIT_WAIT_MS = 60_000;
/** A reset further away than GitHub's hourly window is a clock problem; do not wait on it for longer. */
const LONGEST_WAIT_MS = 60 * 60_000;

interface ForgeReply {
  status: number | undefined;
  said: string;
  headers: Record<string, string | undefined>;
  url: string;
}

/** Turns a forge error into what a person should do, and whether trying again later may help. */
export function explainForgeError(error: unknown, repo: string): ForgeErrorAdvice {
  const advice = explain(error);
  return { ...advice, message: `${repo}: ${advice.message}` };
}

/** As explainForgeError, without naming the repository. */
function explain(error: unknown): ForgeErrorAdvice {
  if (error instanceof ForgeAccessError) return refused(error.message);
  const reply = replyOf(error);
  const { status, said } = reply;
  if (status === undefined) return { retryable: true, rateLimited: false, retryAfterMs: undefined, message: `talking to GitHub failed (${said}); the step will be retried.` };
  const quoted = `(${status}${said ? `: ${said}` : ''})`;
  const rateLimit = rateLimitOf(reply, Date.now());
  if (rateLimit) return { retryable: true, rateLimited: true, retryAfterMs: rateLimit.waitMs, message: `GitHub's ${rateLimit.kind} rate limit was reached ${quoted}; ${rateLimit.when}.` };
  if (status >= 500) return { retryable: true, rateLimited: false, retryAfterMs: undefined, message: `GitHub could not be reached or failed ${quoted}; the step will be retried.` };
  if (/\/app\/installations\/[^/]+\/access_tokens/.test(reply.url)) {
    return refused(`the GitHub App could not get an installation access token ${quoted}. Check GITHUB_APP_ID and its private key, that GITHUB_APP_INSTALLATION_ID is the App's installation on this repository's owner, and that the installation is not suspended.`);
  }
  if (/archived/i.test(said)) return refused(`the repository is archived, so it is read-only ${quoted}. Unarchive it on GitHub, or take it out of the catalog.`);
  switch (status) {
    case 401:
      return refused(`GitHub rejected the service's credentials ${quoted}. Renew the token in FORGE_TOKEN or GITHUB_TOKEN, or check the GitHub App's ID and private key.`);
    case 403:
      if (/not accessible by integration/i.test(said)) return refused(`the GitHub App may not do this here ${quoted}. Give the App "Pull requests: Read and write" (and "Contents: Read and write" to push), have an organization owner accept the changed permissions, and make sure the installation includes this repository.`);
      if (/not accessible by personal access token/i.test(said)) return refused(`the fine-grained token may not do this here ${quoted}. Give it "Pull requests: Read and write" on this repository, or use a token that has it.`);
      return refused(`no permission to open pull requests here ${quoted}. Give the service's token or GitHub App write access to this repository's pull requests (GitHub's message says what is missing).`);
    case 404:
      return refused(`the repository was not found, or the service's credentials cannot see it ${quoted}. Check its URL in the catalog, and that the token or the GitHub App installation has access to it.`);
    case 422:
      return refused(`GitHub refused the pull request ${quoted}. ${whatToDoAbout422(said)}`);
    default:
      return refused(`GitHub refused the request ${quoted}.`);
  }
}

function whatToDoAbout422(said: string): string {
  if (/no commits between/i.test(said)) return 'The work branch has no commits its base lacks, so there is nothing to review (it may be merged already).';
  if (/draft pull requests are not supported/i.test(said)) return "This repository's plan has no draft pull requests: set PR_DRAFT=false.";
  if (/rule violation|ruleset|protected branch|GH013/i.test(said)) return "A branch protection rule or ruleset blocks it: ask a repository admin to add the service's account or App to the rule's bypass list, or to change the rule.";
  if (/already exists/i.test(said)) return 'A pull request from this branch is open but was not found to update; close it on GitHub, and the next attempt opens a fresh one.';
  if (/\bbase\b/i.test(said)) return "The base branch is not on GitHub: check the repository's defaultBranch in the catalog.";
  if (/\bhead\b/i.test(said)) return 'The work branch is not on GitHub (its push may have failed).';
  return "GitHub's reason is quoted in brackets.";
}

function refused(message: string): ForgeErrorAdvice {
  return { retryable: false, message };
}

function replyOf(error: unknown): ForgeReply {
  const e = error as { status?: unknown; message?: unknown; request?: { url?: unknown }; response?: { data?: unknown; headers?: Record<string, string | undefined> } };
  const data = e.response?.data;
  const said =
    typeof data === 'object' && data !== null
      ? describeBody(data as GitHubErrorBody)
      : typeof data === 'string' && data.trim()
        ? data.trim().slice(0, 300)
        : typeof e.message === 'string'
          ? e.message
          : String(error);
  return {
    status: typeof e.status === 'number' ? e.status : undefined,
    said,
    headers: e.response?.headers ?? {},
    url: typeof e.request?.url === 'string' ? e.request.url : '',
  };
}

interface GitHubErrorBody {
  message?: string;
  errors?: ({ message?: string; field?: string; code?: string } | string)[];
}

/** GitHub's `message`, plus the `errors` it lists (a message each, or a field and a code such as "base invalid"). */
function describeBody(body: GitHubErrorBody): string {
  const details = (body.errors ?? []).map((e) => (typeof e === 'string' ? e : (e.message ?? [e.field, e.code].filter(Boolean).join(' '))));
  return [body.message, ...details].filter(Boolean).join('; ');
}

function saysAlreadyExists(error: unknown): boolean {
  const reply = replyOf(error);
  return reply.status === 422 && /pull request already exists/i.test(reply.said);
}

/**
 * GitHub's rules (REST API troubleshooting): a primary limit is a 403 or 429 with x-ratelimit-remaining 0
 * (wait until x-ratelimit-reset, in UTC epoch seconds); a secondary limit is a 403 or 429 whose message says
 * so (wait retry-after seconds if given, else at least a minute).
 */
function rateLimitOf(reply: ForgeReply, now: number): { kind: 'primary' | 'secondary'; waitMs: number; when: string } | null {
  if (reply.status !== 403 && reply.status !== 429) return null;
  const exhausted = reply.headers['x-ratelimit-remaining'] === '0';
  const secondary = /secondary rate limit|abuse detection/i.test(reply.said);
  if (!exhausted && !secondary && reply.status !== 429 && !/rate limit/i.test(reply.said)) return null;
  const kind = secondary ? 'secondary' : 'primary';
  const retryAfter = seconds(reply.headers['retry-after']);
  const reset = seconds(reply.headers['x-ratelimit-reset']);
  if (retryAfter !== undefined) return { kind, waitMs: Math.min(retryAfter * 1000, LONGEST_WAIT_MS), when: `GitHub asks to wait ${describeWait(retryAfter * 1000)}, until ${isoSeconds(now + retryAfter * 1000)}; the step will be retried then` };
  if (reset !== undefined && !secondary) {
    const waitMs = Math.min(Math.max(reset * 1000 - now, 0) + 1000, LONGEST_WAIT_MS);
    return { kind, waitMs, when: `it resets at ${isoSeconds(reset * 1000)} (${describeWait(waitMs)} from now); the step will be retried then` };
  }
  return { kind, waitMs: SECONDARY_LIMIT_WAIT_MS, when: 'GitHub gave no time, so the step will be retried in a minute or more' };
}

function seconds(header: string | undefined): number | undefined {
  const n = Number(header);
  return header !== undefined && header.trim() !== '' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function describeWait(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
