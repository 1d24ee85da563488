// The slice of GitHub's REST API the service uses for pull requests, so Octokit works unchanged
// (as against GitHub Enterprise, with this forge's `/api/v3` as the base URL).
import type http from 'node:http';
import { z } from 'zod';
import { ApiError, notFound, validationFailed } from './api-errors';
import { branchHeads, commitsBetween } from './git-queries';
import { labelsJson, pullJson, repositoryJson } from './github-json';
import { parseInput, readJsonBody } from './json-body';
import { mergeIntoBase } from './merge';
import { deliverPullEvent } from './webhooks';
import { newestFirst, type PullRecord } from './pulls-store';
import { createBareRepo, repoAt, repoExists, type Repo } from './repos';
import { sendJson } from './responses';
import type { Site } from './site';
import { parsePullNumber } from './url-paths';

interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** `segments` are the decoded path segments after `/api/v3`. */
export async function serveApi(req: http.IncomingMessage, res: http.ServerResponse, site: Site, segments: string[], query: string, caller?: string): Promise<void> {
  try {
    const answer = await routeApi(req, site, segments, query, caller);
    sendJson(res, answer.status, answer.body, answer.headers);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    sendJson(res, error.status, error.body, error.headers);
  }
}

async function routeApi(req: http.IncomingMessage, site: Site, segments: string[], query: string, caller: string | undefined): Promise<ApiResponse> {
  const [root, owner, name, collection, number, subresource] = segments;
  // GitHub's "create an organization repository": how people bring their own repositories to this forge.
  if (root === 'orgs' && owner !== undefined && name === 'repos' && segments.length === 3 && req.method === 'POST') {
    return { status: 201, body: await createRepository(site, owner, await readJsonBody(req)) };
  }
  if (root !== 'repos' || owner === undefined || name === undefined) throw notFound();
  const repo = repoAt(site.reposDir, owner, name);
  if (!repo) throw new ApiError(400, { message: 'Invalid repository name' });
  if (!(await repoExists(repo))) throw notFound();

  const method = req.method ?? 'GET';
  const pullNumber = parsePullNumber(number);
  if (segments.length === 3 && method === 'GET') return { status: 200, body: await repositoryJson(site, repo) };
  if (collection === 'pulls' && segments.length === 4) {
    if (method === 'GET') return listPulls(site, repo, new URLSearchParams(query));
    if (method === 'POST') return { status: 201, body: await createPull(site, repo, await readJsonBody(req)) };
  }
  if (collection === 'pulls' && segments.length === 5 && pullNumber !== null) {
    if (method === 'GET') return { status: 200, body: await getPull(site, repo, pullNumber) };
    if (method === 'PATCH') return { status: 200, body: await updatePull(site, repo, pullNumber, await readJsonBody(req)) };
  }
  // Reviews and line comments: who wrote them is the Basic username the caller gave (GitHub's user).
  if (collection === 'pulls' && (subresource === 'reviews' || subresource === 'comments') && segments.length === 6 && pullNumber !== null) {
    if (method === 'GET') return { status: 200, body: await listReviewsOrComments(site, repo, pullNumber, subresource) };
    if (method === 'POST') return { status: 201, body: await addReviewOrComment(site, repo, pullNumber, subresource, await readJsonBody(req), reviewer(caller)) };
  }
  if (collection === 'pulls' && subresource === 'merge' && segments.length === 6 && pullNumber !== null) {
    if (method === 'PUT') return { status: 200, body: await mergePull(site, repo, pullNumber, await readJsonBody(req)) };
    if (method === 'GET') return mergedStatus(site, repo, pullNumber);
  }
  if (collection === 'issues' && subresource === 'labels' && segments.length === 6 && pullNumber !== null && method === 'POST') {
    return { status: 200, body: await addLabels(site, repo, pullNumber, await readJsonBody(req)) };
  }
  throw notFound();
}

const CreateRepositorySchema = z.object({ name: z.string().min(1).max(100), default_branch: z.string().min(1).max(200).optional() });

async function createRepository(site: Site, owner: string, raw: unknown): Promise<unknown> {
  const input = parseInput(CreateRepositorySchema, raw, 'Repository');
  const repo = repoAt(site.reposDir, owner, input.name);
  if (!repo) throw validationFailed(`"${owner}/${input.name}" is not a valid repository name`, 'Repository');
  if (await repoExists(repo)) throw validationFailed(`${repo.fullName} already exists`, 'Repository');
  await createBareRepo(site.reposDir, owner, input.name, input.default_branch ?? 'main', site.writeKey);
  return repositoryJson(site, repo);
}

async function listPulls(site: Site, repo: Repo, params: URLSearchParams): Promise<ApiResponse> {
  const state = params.get('state') ?? 'open';
  if (state !== 'open' && state !== 'closed' && state !== 'all') throw validationFailed(`state "${state}" is not one of open, closed, all`);
  const head = params.get('head');
  const base = params.get('base');
  // Like GitHub, `head` is "owner:branch" or just "owner"; other forks do not exist here.
  const [headOwner, headBranch] = head === null ? [null, null] : head.includes(':') ? splitOnce(head, ':') : [head, null];
  const matching = (await site.pulls.read(repo))
    .filter((p) => state === 'all' || p.state === state)
    .filter((p) => headOwner === null || (headOwner === repo.owner && (headBranch === null || p.head === headBranch)))
    .filter((p) => base === null || p.base === base)
    .sort(newestFirst);

  const perPage = clamp(Number(params.get('per_page') ?? 30) || 30, 1, 100);
  const page = Math.max(1, Math.floor(Number(params.get('page') ?? 1)) || 1);
  const lastPage = Math.max(1, Math.ceil(matching.length / perPage));
  const branches = await branchHeads(repo);
  const body = matching.slice((page - 1) * perPage, page * perPage).map((p) => pullJson(site, repo, p, branches));
  if (page >= lastPage) return { status: 200, body };
  // Octokit's paginate() follows these links.
  const pageUrl = (n: number) => {
    const next = new URLSearchParams(params);
    next.set('page', String(n));
    return `<${site.apiUrl}/repos/${repo.fullName}/pulls?${next.toString()}>`;
  };
  return { status: 200, body, headers: { Link: `${pageUrl(page + 1)}; rel="next", ${pageUrl(lastPage)}; rel="last"` } };
}

const CreatePullSchema = z.object({
  title: z.string().trim().min(1),
  head: z.string().min(1),
  base: z.string().min(1),
  body: z.string().nullish(),
  draft: z.boolean().optional(),
});

async function createPull(site: Site, repo: Repo, input: unknown) {
  const request = parseInput(CreatePullSchema, input);
  const [headOwner, head] = request.head.includes(':') ? splitOnce(request.head, ':') : [repo.owner, request.head];
  return site.pulls.mutate(repo, async (pulls) => {
    const branches = await branchHeads(repo);
    const headSha = headOwner === repo.owner ? branches.get(head) : undefined;
    if (headSha === undefined) throw missingBranch(repo, 'head', request.head);
    const baseSha = branches.get(request.base);
    if (baseSha === undefined) throw missingBranch(repo, 'base', request.base);
    refuseDuplicateOpenPull(repo, pulls, head, request.base);
    if ((await commitsBetween(repo, baseSha, headSha)) === 0) throw validationFailed(`No commits between ${request.base} and ${head}`);
    const now = timestamp();
    const record: PullRecord = {
      number: Math.max(0, ...pulls.map((p) => p.number)) + 1,
      title: request.title,
      body: request.body ?? null,
      state: 'open',
      draft: request.draft ?? false,
      head,
      base: request.base,
      headSha,
      baseSha,
      labels: [],
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      merged: false,
      mergedAt: null,
      mergeCommitSha: null,
      reviews: [],
      comments: [],
    };
    pulls.push(record);
    deliverPullEvent(site.webhooks, site.pulls.settled(), 'pull_request', 'opened', repo, record, headSha);
    return pullJson(site, repo, record, branches);
  });
}

async function getPull(site: Site, repo: Repo, number: number) {
  const record = pullNumbered(await site.pulls.read(repo), number);
  return pullJson(site, repo, record, await branchHeads(repo));
}

const UpdatePullSchema = z.object({
  title: z.string().trim().min(1).optional(),
  body: z.string().nullish(),
  state: z.enum(['open', 'closed']).optional(),
  base: z.string().min(1).optional(),
});

export async function updatePull(site: Site, repo: Repo, number: number, input: unknown) {
  const update = parseInput(UpdatePullSchema, input);
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pullNumbered(pulls, number);
    const branches = await branchHeads(repo);
    const base = update.base ?? record.base;
    if (!branches.has(base)) throw missingBranch(repo, 'base', base);
    const state = update.state ?? record.state;
    if (state === 'open' && record.merged) throw validationFailed('A merged pull request cannot be reopened.');
    if (state === 'open') refuseDuplicateOpenPull(repo, pulls, record.head, base, record);
    const now = timestamp();
    if (update.title !== undefined) record.title = update.title;
    if (update.body !== undefined) record.body = update.body;
    if (state !== record.state) record.closedAt = state === 'closed' ? now : null;
    record.state = state;
    record.base = base;
    record.baseSha = branches.get(base) ?? record.baseSha;
    record.headSha = branches.get(record.head) ?? record.headSha;
    record.updatedAt = now;
    deliverPullEvent(site.webhooks, site.pulls.settled(), 'pull_request', update.state === 'closed' ? 'closed' : update.state === 'open' ? 'reopened' : 'edited', repo, record, record.headSha);
    return pullJson(site, repo, record, branches);
  });
}

const ReviewSchema = z.object({ body: z.string().max(65_536).default(''), event: z.enum(['APPROVE', 'REQUEST_CHANGES', 'COMMENT']).default('COMMENT') });
const CommentSchema = z.object({ body: z.string().min(1).max(65_536), path: z.string().min(1).max(1000), line: z.number().int().positive().optional(), commit_id: z.string().optional() });
const REVIEW_STATES = { APPROVE: 'APPROVED', REQUEST_CHANGES: 'CHANGES_REQUESTED', COMMENT: 'COMMENTED' } as const;

function reviewer(caller: string | undefined): string {
  return caller && caller !== 'token' ? caller : 'reviewer';
}

async function listReviewsOrComments(site: Site, repo: Repo, number: number, kind: 'reviews' | 'comments') {
  const record = pullNumbered(await site.pulls.read(repo), number);
  return kind === 'reviews'
    ? record.reviews.map((r) => ({ id: r.id, user: { login: r.user }, state: r.state, body: r.body, submitted_at: r.submittedAt }))
    : record.comments.map((c) => ({ id: c.id, user: { login: c.user }, body: c.body, path: c.path, line: c.line, created_at: c.createdAt }));
}

async function addReviewOrComment(site: Site, repo: Repo, number: number, kind: 'reviews' | 'comments', input: unknown, user: string) {
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pullNumbered(pulls, number);
    const now = timestamp();
    const id = Math.max(0, ...record.reviews.map((r) => r.id), ...record.comments.map((c) => c.id)) + 1;
    record.updatedAt = now;
    if (kind === 'reviews') {
      const review = parseInput(ReviewSchema, input, 'PullRequestReview');
      const entry = { id, user, state: REVIEW_STATES[review.event], body: review.body, submittedAt: now };
      record.reviews.push(entry);
      deliverPullEvent(site.webhooks, site.pulls.settled(), 'pull_request_review', 'submitted', repo, record, record.headSha);
      return { id, user: { login: user }, state: entry.state, body: entry.body, submitted_at: now };
    }
    const comment = parseInput(CommentSchema, input, 'PullRequestReviewComment');
    const entry = { id, user, body: comment.body, path: comment.path, line: comment.line ?? null, createdAt: now };
    record.comments.push(entry);
    deliverPullEvent(site.webhooks, site.pulls.settled(), 'pull_request_review_comment', 'created', repo, record, record.headSha);
    return { id, user: { login: user }, body: entry.body, path: entry.path, line: entry.line, created_at: now };
  });
}

const MergePullSchema = z.object({
  commit_title: z.string().max(500).optional(),
  commit_message: z.string().max(10_000).optional(),
  merge_method: z.literal('merge').optional(),
  sha: z.string().regex(/^[0-9a-f]{40}$/).optional(),
});

/** GitHub's "merge a pull request" (merge commits only): 405 when it cannot be merged, 409 when `sha` is not the head. */
export async function mergePull(site: Site, repo: Repo, number: number, input: unknown) {
  const request = parseInput(MergePullSchema, input);
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pullNumbered(pulls, number);
    if (record.merged) throw new ApiError(405, { message: 'Pull Request is already merged' });
    if (record.state !== 'open') throw new ApiError(405, { message: 'Pull Request is not mergeable: it is closed' });
    if (record.draft) throw new ApiError(405, { message: 'Pull Request is still a draft' });
    const branches = await branchHeads(repo);
    const headSha = branches.get(record.head);
    const baseSha = branches.get(record.base);
    if (!headSha || !baseSha) throw new ApiError(405, { message: 'Pull Request is not mergeable: a branch is missing' });
    if (request.sha && request.sha !== headSha) throw new ApiError(409, { message: 'Head branch was modified. Review and try the merge again.' });
    const title = request.commit_title ?? `Merge pull request #${number} from ${repo.owner}/${record.head}`;
    const outcome = await mergeIntoBase(repo, record.base, baseSha, headSha, request.commit_message ? `${title}\n\n${request.commit_message}` : title, site.writeKey);
    if (!outcome.merged) throw new ApiError(405, { message: `Pull Request is not mergeable: ${outcome.why}` });
    const now = timestamp();
    Object.assign(record, { state: 'closed', merged: true, mergedAt: now, mergeCommitSha: outcome.sha, closedAt: now, updatedAt: now, headSha, baseSha });
    deliverPullEvent(site.webhooks, site.pulls.settled(), 'pull_request', 'closed', repo, record, headSha);
    return { sha: outcome.sha, merged: true, message: 'Pull Request successfully merged' };
  });
}

/** GitHub's "check if a pull request has been merged": 204 when merged, 404 when not. */
async function mergedStatus(site: Site, repo: Repo, number: number): Promise<ApiResponse> {
  const record = pullNumbered(await site.pulls.read(repo), number);
  if (!record.merged) throw notFound();
  return { status: 204, body: null };
}

const LabelsSchema = z.object({
  labels: z.array(z.union([z.string(), z.object({ name: z.string() })]).transform((l) => (typeof l === 'string' ? l : l.name).trim())),
});

async function addLabels(site: Site, repo: Repo, number: number, input: unknown) {
  const { labels } = parseInput(LabelsSchema, input, 'Label');
  if (labels.some((l) => l === '')) throw validationFailed('Label names must not be empty.', 'Label');
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pullNumbered(pulls, number);
    record.labels = [...new Set([...record.labels, ...labels])];
    record.updatedAt = timestamp();
    return labelsJson(record.labels);
  });
}

function pullNumbered(pulls: PullRecord[], number: number): PullRecord {
  const record = pulls.find((p) => p.number === number);
  if (!record) throw notFound();
  return record;
}

function missingBranch(repo: Repo, side: 'head' | 'base', branch: string): ApiError {
  return validationFailed(`The ${side} branch "${branch}" is invalid: it does not exist in ${repo.fullName}.`);
}

/** GitHub allows one open pull request per head and base; `except` is the pull request being changed. */
function refuseDuplicateOpenPull(repo: Repo, pulls: PullRecord[], head: string, base: string, except?: PullRecord): void {
  if (pulls.some((p) => p !== except && p.state === 'open' && p.head === head && p.base === base)) {
    throw validationFailed(`A pull request already exists for ${repo.owner}:${head}.`);
  }
}

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return [text.slice(0, at), text.slice(at + separator.length)];
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.floor(value)));
}

/** GitHub's timestamp format: ISO 8601 in UTC, whole seconds. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
