// Pull requests through Octokit: on GitHub, on GitHub Enterprise, and on the local forge (which speaks the
// same REST shapes under /api/v3). Idempotent: an open PR for the work branch is updated, never duplicated.
import { Octokit } from '@octokit/rest';
import type { PullRequestRef } from '../shared/contracts';
import { renderSummaryMarkdown } from '../shared/summary';
import type { ActivityDeps } from './deps';
import type { LinkRequest, PullRequestOutcome, PullRequestRequest } from './types';

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

function octokitFor(deps: ActivityDeps, apiUrl: string): Octokit {
  return deps.forge.octokit(apiUrl);
}

export async function openPullRequest(deps: ActivityDeps, request: PullRequestRequest): Promise<PullRequestOutcome> {
  const where = forgeCoordinates(request.repo.url);
  const octokit = octokitFor(deps, where.apiUrl);
  const head = `${where.owner}:${request.branch}`;
  try {
    const existing = await findOpenPullRequest(octokit, where, head, request.repo.defaultBranch);
    if (existing) {
      const { data } = await octokit.rest.pulls.update({ owner: where.owner, repo: where.repo, pull_number: existing.number, title: request.title, body: request.body });
      return { repo: request.repo.id, pr: refOf(data, true), error: null };
    }
    const { data } = await octokit.rest.pulls.create({
      owner: where.owner,
      repo: where.repo,
      head: request.branch,
      base: request.repo.defaultBranch,
      title: request.title,
      body: request.body,
    });
    return { repo: request.repo.id, pr: refOf(data, false), error: null };
  } catch (error) {
    const advice = explainForgeError(error, request.repo.id);
    if (advice.retryable) throw error;
    return { repo: request.repo.id, pr: null, error: advice.message };
  }
}

/** Rewrites every PR body with the combined summary and links to its siblings (all PRs exist by now). */
export async function linkPullRequests(deps: ActivityDeps, request: LinkRequest): Promise<void> {
  const siblings = request.pullRequests.map((p) => ({ repo: p.repo.id, url: p.url, number: p.number }));
  for (const pr of request.pullRequests) {
    const where = forgeCoordinates(pr.repo.url);
    await octokitFor(deps, where.apiUrl).rest.pulls.update({
      owner: where.owner,
      repo: where.repo,
      pull_number: pr.number,
      body: renderSummaryMarkdown(request.summary, { siblings, forRepo: pr.repo.id }),
    });
  }
}

async function findOpenPullRequest(octokit: Octokit, where: ForgeCoordinates, head: string, base: string) {
  const { data } = await octokit.rest.pulls.list({ owner: where.owner, repo: where.repo, head, base, state: 'open', per_page: 10 });
  return data[0];
}

function refOf(data: { number: number; html_url: string; state: string; merged_at?: string | null }, reused: boolean): PullRequestRef {
  const state = data.merged_at ? 'merged' : data.state === 'closed' ? 'closed' : 'open';
  return { number: data.number, url: data.html_url, state, reused };
}

/** Turns a forge error into what a person should do, and whether trying again later may help. */
export function explainForgeError(error: unknown, repo: string): { message: string; retryable: boolean } {
  const status = (error as { status?: number }).status;
  const detail = (error as { response?: { data?: { message?: string; errors?: { message?: string }[] } } }).response?.data;
  const said = [detail?.message, ...(detail?.errors ?? []).map((e) => e.message)].filter(Boolean).join('; ');
  switch (status) {
    case 401:
      return { retryable: false, message: `${repo}: the forge rejected the token (401). Check GITHUB_TOKEN / the app installation.` };
    case 403:
      if (/rate limit/i.test(said)) return { retryable: true, message: `${repo}: rate limited by the forge` };
      return { retryable: false, message: `${repo}: no permission to open pull requests (403${said ? `: ${said}` : ''}). Give the service write access to the repository.` };
    case 404:
      return { retryable: false, message: `${repo}: repository not found or not visible to the service (404). Check the catalog URL and the token's access.` };
    case 422:
      return { retryable: false, message: `${repo}: the forge refused the pull request (422${said ? `: ${said}` : ''}). The base branch may be protected, or the branch has no commits.` };
    case 429:
      return { retryable: true, message: `${repo}: rate limited by the forge` };
    default:
      return { retryable: true, message: `${repo}: ${(error as Error).message}` };
  }
}
