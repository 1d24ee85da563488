// A local HTTP server speaking the slice of GitHub's REST API the pull-request activities use, under
// /api/v3 as GitHub Enterprise serves it, with bodies and headers shaped like GitHub's documented ones.
// Each repository behaves as its test says (normal, no permission, archived, rate limited), and every
// request is recorded so tests can see exactly what reached "GitHub".
import { createHash, randomBytes, verify, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type RepositoryBehaviour =
  /** Answers like a repository the service may write to. */
  | 'normal'
  /** 403 "Resource not accessible by integration" to everything: an App installation without pull-request access. */
  | 'no-permission'
  /** Reads work, writes get 403 "Repository was archived so is read-only." */
  | 'archived'
  /** 403 with x-ratelimit-remaining 0 and x-ratelimit-reset: the primary limit is used up. */
  | 'rate-limited'
  /** 403 "You have exceeded a secondary rate limit …" with retry-after. */
  | 'secondary-rate-limited';

export interface FakeRepositoryOptions {
  behaviour?: RepositoryBehaviour;
  defaultBranch?: string;
  /** Head branches with nothing their base lacks: opening a pull request from one gets GitHub's 422. */
  branchesWithoutCommits?: string[];
  /** False: the plan has no drafts (private repository on GitHub Free), and `draft: true` gets a 422. */
  draftsSupported?: boolean;
  /** When a primary rate limit resets, in UTC epoch seconds (default: ten minutes from start). */
  rateLimitResetsAt?: number;
  /** Seconds a secondary rate limit asks to wait (retry-after). */
  retryAfterSeconds?: number;
  /** 403 on adding labels only, as for credentials that may open pull requests but not label them. */
  labelsForbidden?: boolean;
  /** Runs just before a pull request is created, e.g. to open one "concurrently". */
  beforeCreatePull?: () => void;
}

export type FakeAuth =
  /** Accepts these tokens (classic, fine-grained, or anything else), as `token X` or `Bearer X`. */
  | { kind: 'token'; tokens: string[] }
  /** A GitHub App: installation tokens are issued for a JWT signed with the App's private key. */
  | { kind: 'app'; appId: number; installationId: number; publicKey: KeyObject };

export interface FakePull {
  number: number;
  id: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  draft: boolean;
  head: string;
  base: string;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  /** What people and CI did since it opened, for tracking: set by tests. */
  merged?: boolean;
  reviews?: { user: string; state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED'; body: string }[];
  comments?: { user: string; body: string; path: string; line: number }[];
  /** The head commit's commit statuses and check runs. */
  statuses?: { context: string; state: 'success' | 'failure' | 'pending' | 'error' }[];
  checkRuns?: { name: string; status: 'queued' | 'in_progress' | 'completed'; conclusion: 'success' | 'failure' | 'neutral' | 'skipped' | 'cancelled' | 'timed_out' | null }[];
}

export interface FakeRepository {
  owner: string;
  name: string;
  options: FakeRepositoryOptions;
  pulls: FakePull[];
  /** A pull request already there (opened by a person or by an earlier run). */
  seedPull(pull: { head: string; base?: string; title: string; body?: string; draft?: boolean }): FakePull;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeGitHub {
  /** http://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT/api/v3 */
  apiUrl: string;
  cloneUrl(fullName: string): string;
  addRepository(fullName: string, options?: FakeRepositoryOptions): FakeRepository;
  repository(fullName: string): FakeRepository;
  requests: RecordedRequest[];
  /** Installation access tokens handed out, oldest first. */
  issuedTokens: string[];
  close(): Promise<void>;
}

const DOCS = {
  rest: 'https://docs.github.com/rest',
  listPulls: 'https://docs.github.com/rest/pulls/pulls#list-pull-requests',
  createPull: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
  updatePull: 'https://docs.github.com/rest/pulls/pulls#update-a-pull-request',
  addLabels: 'https://docs.github.com/rest/issues/labels#add-labels-to-an-issue',
  accessToken: 'https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app',
  rateLimits: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
};

const RATE_LIMIT = 5000;

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

class Answer extends Error {
  constructor(readonly reply: Reply) {
    super(`fake GitHub answers ${reply.status}`);
  }
}

const fail = (status: number, message: string, documentationUrl: string, extra: object = {}, headers?: Record<string, string>) =>
  new Answer({ status, body: { message, ...extra, documentation_url: documentationUrl, status: String(status) }, headers });

const validationFailed = (documentationUrl: string, errors: object[]) => fail(422, 'Validation Failed', documentationUrl, { errors });

export async function startFakeGitHub(auth: FakeAuth): Promise<FakeGitHub> {
  const repositories = new Map<string, FakeRepository>();
  const requests: RecordedRequest[] = [];
  const issuedTokens: string[] = [];
  const startedAt = Math.floor(Date.now() / 1000);
  let used = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://fake');
      requests.push({ method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
      let reply: Reply;
      try {
        reply = route(req.method ?? 'GET', url, req.headers, body);
      } catch (error) {
        if (!(error instanceof Answer)) throw error;
        reply = error.reply;
      }
      used += 1;
      const headers = {
        'content-type': 'application/json; charset=utf-8',
        'x-github-media-type': 'github.v3; format=json',
        'x-github-api-version-selected': '2022-11-28',
        'x-ratelimit-limit': String(RATE_LIMIT),
        'x-ratelimit-remaining': String(Math.max(RATE_LIMIT - used, 1)),
        'x-ratelimit-used': String(used),
        'x-ratelimit-reset': String(startedAt + 3600),
        'x-ratelimit-resource': 'core',
        'x-github-request-id': randomBytes(8).toString('hex').toUpperCase(),
        ...reply.headers,
      };
      res.writeHead(reply.status, headers);
      res.end(reply.status === 204 ? undefined : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const siteUrl = `http://127.0.0.1:${port}`;
  const apiUrl = `${siteUrl}/api/v3`;

  const bot = auth.kind === 'app'
    ? { login: 'change-request-service[bot]', id: 41898282, node_id: 'BOT_kgDOAn9RKg', type: 'Bot' }
    : { login: 'octocat', id: 583231, node_id: 'MDQ6VXNlcjU4MzIzMQ==', type: 'User' };
  const userJson = { ...bot, avatar_url: `${siteUrl}/avatars/u/${bot.id}`, url: `${apiUrl}/users/${encodeURIComponent(bot.login)}`, html_url: `${siteUrl}/${encodeURIComponent(bot.login)}`, site_admin: false };

  function route(method: string, url: URL, headers: http.IncomingHttpHeaders, body: string): Reply {
    if (!url.pathname.startsWith('/api/v3/')) throw fail(404, 'Not Found', DOCS.rest);
    const segments = url.pathname.slice('/api/v3/'.length).split('/').map(decodeURIComponent);
    if (segments[0] === 'app' && segments[1] === 'installations' && segments[3] === 'access_tokens' && segments.length === 4 && method === 'POST') {
      return issueInstallationToken(segments[2]!, headers);
    }
    authenticate(headers);
    const [root, owner, name, collection, number, subresource] = segments;
    if (root !== 'repos' || owner === undefined || name === undefined) throw fail(404, 'Not Found', DOCS.rest);
    const repo = repositories.get(`${owner}/${name}`.toLowerCase());
    const docs = collection === 'issues' ? DOCS.addLabels : method === 'POST' ? DOCS.createPull : method === 'PATCH' ? DOCS.updatePull : DOCS.listPulls;
    if (!repo) throw fail(404, 'Not Found', docs);
    applyBehaviour(repo, method, docs);

    if (collection === 'pulls' && segments.length === 4 && method === 'GET') return { status: 200, body: listPulls(repo, url.searchParams) };
    if (collection === 'pulls' && segments.length === 4 && method === 'POST') return createPull(repo, parseJson(body, DOCS.createPull));
    if (collection === 'pulls' && segments.length === 5 && method === 'PATCH') return { status: 200, body: updatePull(repo, Number(number), parseJson(body, DOCS.updatePull)) };
    if (collection === 'pulls' && segments.length === 5 && method === 'GET') return { status: 200, body: pullJson(repo, pullNumbered(repo, Number(number)), true) };
    if (collection === 'pulls' && subresource === 'reviews' && segments.length === 6 && method === 'GET') {
      return { status: 200, body: (pullNumbered(repo, Number(number)).reviews ?? []).map((r, i) => ({ id: 9000 + i, user: { login: r.user, type: 'User' }, body: r.body, state: r.state, submitted_at: isoSeconds(Date.now()) })) };
    }
    if (collection === 'pulls' && subresource === 'comments' && segments.length === 6 && method === 'GET') {
      return { status: 200, body: (pullNumbered(repo, Number(number)).comments ?? []).map((c, i) => ({ id: 7000 + i, user: { login: c.user, type: 'User' }, body: c.body, path: c.path, line: c.line, created_at: isoSeconds(Date.now()) })) };
    }
    // GET /repos/{o}/{r}/commits/{ref}/status and /check-runs, for the pull request whose head is that commit.
    if (collection === 'commits' && segments.length === 6 && method === 'GET' && (subresource === 'status' || subresource === 'check-runs')) {
      const pull = repo.pulls.find((p) => shaOf(`${repo.owner}/${repo.name}`, p.head) === number);
      if (subresource === 'check-runs') {
        const runs = (pull?.checkRuns ?? []).map((c, i) => ({ id: 5000 + i, name: c.name, head_sha: number, status: c.status, conclusion: c.conclusion }));
        return { status: 200, body: { total_count: runs.length, check_runs: runs } };
      }
      const statuses = pull?.statuses ?? [];
      const combined = statuses.some((s) => s.state === 'failure' || s.state === 'error') ? 'failure' : statuses.some((s) => s.state === 'pending') || statuses.length === 0 ? 'pending' : 'success';
      return { status: 200, body: { state: combined, sha: number, total_count: statuses.length, statuses: statuses.map((s, i) => ({ id: 3000 + i, context: s.context, state: s.state })) } };
    }
    if (collection === 'issues' && subresource === 'labels' && segments.length === 6 && method === 'POST') return { status: 200, body: addLabels(repo, Number(number), parseJson(body, DOCS.addLabels)) };
    throw fail(404, 'Not Found', DOCS.rest);
  }

  function authenticate(headers: http.IncomingHttpHeaders): void {
    const presented = /^(?:token|bearer)\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1];
    if (presented === undefined) throw fail(401, 'Requires authentication', DOCS.rest);
    const accepted = auth.kind === 'token' ? auth.tokens : issuedTokens;
    if (!accepted.includes(presented)) throw fail(401, 'Bad credentials', DOCS.rest);
  }

  /** GitHub's "Create an installation access token for an app": the App proves itself with an RS256 JWT. */
  function issueInstallationToken(installationId: string, headers: http.IncomingHttpHeaders): Reply {
    if (auth.kind !== 'app') throw fail(404, 'Not Found', DOCS.accessToken);
    const jwt = /^bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1];
    if (jwt === undefined) throw fail(401, 'A JSON web token could not be decoded', DOCS.rest);
    const claims = verifiedClaims(jwt, auth.publicKey);
    if (claims === null) throw fail(401, 'A JSON web token could not be decoded', DOCS.rest);
    const now = Math.floor(Date.now() / 1000);
    if (String(claims.iss) !== String(auth.appId)) throw fail(401, 'Integration not found', DOCS.rest);
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw fail(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires", DOCS.rest);
    if (claims.exp - now > 600) throw fail(401, "'Expiration time' claim ('exp') is too far in the future", DOCS.rest);
    if (typeof claims.iat !== 'number' || claims.iat > now + 60) throw fail(401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued", DOCS.rest);
    if (installationId !== String(auth.installationId)) throw fail(404, 'Not Found', DOCS.accessToken);
    const token = `ghs_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36)}`;
    issuedTokens.push(token);
    return {
      status: 201,
      body: {
        token,
        expires_at: isoSeconds(Date.now() + 3600_000),
        permissions: { contents: 'write', issues: 'write', metadata: 'read', pull_requests: 'write' },
        repository_selection: 'all',
      },
    };
  }

  function applyBehaviour(repo: FakeRepository, method: string, docs: string): void {
    const behaviour = repo.options.behaviour ?? 'normal';
    if (behaviour === 'rate-limited') {
      const who = auth.kind === 'app' ? `installation ID ${auth.installationId}` : `user ID ${bot.id}`;
      throw fail(403, `API rate limit exceeded for ${who}. If you reach out to GitHub Support for help, please include the request ID ${randomBytes(4).toString('hex').toUpperCase()}.`, DOCS.rateLimits, {}, {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-used': String(RATE_LIMIT),
        'x-ratelimit-reset': String(repo.options.rateLimitResetsAt ?? startedAt + 600),
      });
    }
    if (behaviour === 'secondary-rate-limited' && method !== 'GET') {
      throw fail(403, 'You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.', DOCS.rateLimits, {}, {
        'retry-after': String(repo.options.retryAfterSeconds ?? 60),
      });
    }
    if (behaviour === 'no-permission') throw fail(403, 'Resource not accessible by integration', docs);
    if (behaviour === 'archived' && method !== 'GET') throw fail(403, 'Repository was archived so is read-only.', docs);
  }

  function listPulls(repo: FakeRepository, params: URLSearchParams): unknown[] {
    const state = params.get('state') ?? 'open';
    if (!['open', 'closed', 'all'].includes(state)) throw validationFailed(DOCS.listPulls, [{ resource: 'Issue', field: 'state', code: 'invalid' }]);
    const head = params.get('head');
    const base = params.get('base');
    // `head` is "user:ref-name" or "organization:ref-name"; forks do not exist here.
    const [headOwner, headRef] = head === null ? [null, null] : head.includes(':') ? [head.slice(0, head.indexOf(':')), head.slice(head.indexOf(':') + 1)] : [head, null];
    const perPage = Math.min(Math.max(Number(params.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(params.get('page') ?? 1) || 1, 1);
    return repo.pulls
      .filter((p) => state === 'all' || p.state === state)
      .filter((p) => headOwner === null || (headOwner.toLowerCase() === repo.owner.toLowerCase() && (headRef === null || p.head === headRef)))
      .filter((p) => base === null || p.base === base)
      .sort((a, b) => b.number - a.number)
      .slice((page - 1) * perPage, page * perPage)
      .map((p) => pullJson(repo, p, false));
  }

  function createPull(repo: FakeRepository, input: Record<string, unknown>): Reply {
    const missing = ['head', 'base'].filter((field) => typeof input[field] !== 'string' || input[field] === '');
    if (typeof input.title !== 'string' && input.issue === undefined) missing.push('title');
    if (missing.length > 0) throw validationFailed(DOCS.createPull, missing.map((field) => ({ resource: 'PullRequest', code: 'missing_field', field })));
    const base = input.base as string;
    const head = (input.head as string).includes(':') ? (input.head as string).split(':')[1]! : (input.head as string);
    if (base !== (repo.options.defaultBranch ?? 'main')) throw validationFailed(DOCS.createPull, [{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
    if (input.draft === true && repo.options.draftsSupported === false) throw fail(422, 'Draft pull requests are not supported in this repository.', DOCS.createPull);
    repo.options.beforeCreatePull?.();
    if (repo.pulls.some((p) => p.state === 'open' && p.head === head && p.base === base)) {
      throw validationFailed(DOCS.createPull, [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${repo.owner}:${head}.` }]);
    }
    if (repo.options.branchesWithoutCommits?.includes(head)) {
      throw validationFailed(DOCS.createPull, [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${head}` }]);
    }
    const pull = repo.seedPull({ head, base, title: input.title as string, body: typeof input.body === 'string' ? input.body : undefined, draft: input.draft === true });
    return { status: 201, body: pullJson(repo, pull, true), headers: { location: `${apiUrl}/repos/${repo.owner}/${repo.name}/pulls/${pull.number}` } };
  }

  function updatePull(repo: FakeRepository, number: number, input: Record<string, unknown>): unknown {
    const pull = repo.pulls.find((p) => p.number === number);
    if (!pull) throw fail(404, 'Not Found', DOCS.updatePull);
    if (typeof input.title === 'string') pull.title = input.title;
    if (typeof input.body === 'string' || input.body === null) pull.body = input.body as string | null;
    if (input.state === 'open' || input.state === 'closed') pull.state = input.state;
    pull.updatedAt = isoSeconds(Date.now());
    return pullJson(repo, pull, true);
  }

  function addLabels(repo: FakeRepository, number: number, input: unknown): unknown[] {
    if (repo.options.labelsForbidden) throw fail(403, 'Resource not accessible by integration', DOCS.addLabels);
    const pull = repo.pulls.find((p) => p.number === number);
    if (!pull) throw fail(404, 'Not Found', DOCS.addLabels);
    const given = Array.isArray(input) ? input : (input as { labels?: unknown }).labels;
    if (!Array.isArray(given) || given.some((l) => typeof l !== 'string' && typeof (l as { name?: unknown })?.name !== 'string')) {
      throw validationFailed(DOCS.addLabels, [{ resource: 'Label', field: 'labels', code: 'invalid' }]);
    }
    // GitHub creates labels the repository does not have yet; adding one twice changes nothing.
    const names = given.map((l) => (typeof l === 'string' ? l : (l as { name: string }).name));
    pull.labels = [...new Set([...pull.labels, ...names])];
    pull.updatedAt = isoSeconds(Date.now());
    return pull.labels.map((label) => labelJson(repo, label));
  }

  function parseJson(body: string, docs: string): Record<string, unknown> {
    try {
      return JSON.parse(body || '{}') as Record<string, unknown>;
    } catch {
      throw fail(400, 'Problems parsing JSON', docs);
    }
  }

  function repoJson(repo: FakeRepository) {
    const fullName = `${repo.owner}/${repo.name}`;
    return {
      id: numericId(fullName),
      node_id: `R_kgDO${numericId(fullName).toString(36).toUpperCase()}`,
      name: repo.name,
      full_name: fullName,
      private: true,
      owner: { login: repo.owner, id: numericId(repo.owner), type: 'Organization', url: `${apiUrl}/users/${repo.owner}`, html_url: `${siteUrl}/${repo.owner}` },
      html_url: `${siteUrl}/${fullName}`,
      url: `${apiUrl}/repos/${fullName}`,
      clone_url: `${siteUrl}/${fullName}.git`,
      default_branch: repo.options.defaultBranch ?? 'main',
      archived: repo.options.behaviour === 'archived',
      visibility: 'private',
    };
  }

  /** GitHub's "pull-request-simple" (in lists), or the full "pull-request" (create, get, update). */
  function pullNumbered(repo: FakeRepository, number: number): FakePull {
    const pull = repo.pulls.find((p) => p.number === number);
    if (!pull) throw fail(404, 'Not Found', DOCS.rest);
    return pull;
  }

  function pullJson(repo: FakeRepository, pull: FakePull, full: boolean) {
    const fullName = `${repo.owner}/${repo.name}`;
    const api = `${apiUrl}/repos/${fullName}`;
    const html = `${siteUrl}/${fullName}/pull/${pull.number}`;
    const side = (ref: string) => ({ label: `${repo.owner}:${ref}`, ref, sha: shaOf(fullName, ref), user: repoJson(repo).owner, repo: repoJson(repo) });
    const simple = {
      url: `${api}/pulls/${pull.number}`,
      id: pull.id,
      node_id: `PR_kwDO${pull.id.toString(36).toUpperCase()}`,
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${pull.number}`,
      commits_url: `${api}/pulls/${pull.number}/commits`,
      review_comments_url: `${api}/pulls/${pull.number}/comments`,
      review_comment_url: `${api}/pulls/comments{/number}`,
      comments_url: `${api}/issues/${pull.number}/comments`,
      statuses_url: `${api}/statuses/${shaOf(fullName, pull.head)}`,
      number: pull.number,
      state: pull.state,
      locked: false,
      title: pull.title,
      user: userJson,
      body: pull.body,
      labels: pull.labels.map((label) => labelJson(repo, label)),
      milestone: null,
      active_lock_reason: null,
      created_at: pull.createdAt,
      updated_at: pull.updatedAt,
      closed_at: pull.merged ? pull.updatedAt : null,
      merged_at: pull.merged ? pull.updatedAt : null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: side(pull.head),
      base: side(pull.base),
      _links: {
        self: { href: `${api}/pulls/${pull.number}` },
        html: { href: html },
        issue: { href: `${api}/issues/${pull.number}` },
        comments: { href: `${api}/issues/${pull.number}/comments` },
        review_comments: { href: `${api}/pulls/${pull.number}/comments` },
        review_comment: { href: `${api}/pulls/comments{/number}` },
        commits: { href: `${api}/pulls/${pull.number}/commits` },
        statuses: { href: `${api}/statuses/${shaOf(fullName, pull.head)}` },
      },
      author_association: 'NONE',
      auto_merge: null,
      draft: pull.draft,
    };
    if (!full) return simple;
    return {
      ...simple,
      merged: pull.merged ?? false,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: 1,
      additions: 1,
      deletions: 0,
      changed_files: 1,
    };
  }

  function labelJson(repo: FakeRepository, name: string) {
    const id = numericId(`${repo.owner}/${repo.name}#label:${name}`);
    return { id, node_id: `LA_kwDO${id.toString(36).toUpperCase()}`, url: `${apiUrl}/repos/${repo.owner}/${repo.name}/labels/${encodeURIComponent(name)}`, name, color: 'ededed', default: false, description: null };
  }

  function addRepository(fullName: string, options: FakeRepositoryOptions = {}): FakeRepository {
    const [owner, name] = fullName.split('/') as [string, string];
    const repo: FakeRepository = {
      owner,
      name,
      options,
      pulls: [],
      seedPull(pull) {
        const now = isoSeconds(Date.now());
        const number = Math.max(0, ...repo.pulls.map((p) => p.number)) + 1;
        const record: FakePull = {
          number,
          id: numericId(`${fullName}#${number}`),
          title: pull.title,
          body: pull.body ?? null,
          state: 'open',
          draft: pull.draft ?? false,
          head: pull.head,
          base: pull.base ?? options.defaultBranch ?? 'main',
          labels: [],
          createdAt: now,
          updatedAt: now,
        };
        repo.pulls.push(record);
        return record;
      },
    };
    repositories.set(fullName.toLowerCase(), repo);
    return repo;
  }

  return {
    url: siteUrl,
    apiUrl,
    cloneUrl: (fullName) => `${siteUrl}/${fullName}.git`,
    addRepository,
    repository(fullName) {
      const repo = repositories.get(fullName.toLowerCase());
      if (!repo) throw new Error(`the fake GitHub has no repository ${fullName}`);
      return repo;
    },
    requests,
    issuedTokens,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** The claims of an RS256 JWT whose signature the key verifies, else null. */
function verifiedClaims(jwt: string, publicKey: KeyObject): { iss?: unknown; iat?: unknown; exp?: unknown } | null {
  const parts = jwt.split('.');
  if (parts.length !== 3) return null;
  const [header, payload, signature] = parts as [string, string, string];
  try {
    const { alg } = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: string };
    if (alg !== 'RS256') return null;
    if (!verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'))) return null;
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: unknown; iat?: unknown; exp?: unknown };
  } catch {
    return null;
  }
}

function shaOf(fullName: string, ref: string): string {
  return createHash('sha1').update(`${fullName}@${ref}`).digest('hex');
}

/** GitHub-like numeric ids that stay the same for the same name. */
function numericId(key: string): number {
  return createHash('sha256').update(key).digest().readUIntBE(0, 5);
}

/** GitHub's timestamp format: ISO 8601 in UTC, whole seconds. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
