// Pull requests on GitHub through the real activities and Octokit, against a local server that answers
// like GitHub's REST API (test/helpers/fake-github.ts): opening, updating, labels, refusals, rate limits,
// sibling links, and GitHub App authentication with a JWT the server verifies.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { redactorFor } from '../activities/agent/redact';
import type { ActivityDeps } from '../activities/deps';
import {
  ForgeAccessError,
  forgeAccessFromEnv,
  githubAppForgeAccess,
  pullRequestSettingsFromEnv,
  tokenForgeAccess,
  type ForgeAccess,
  type PullRequestSettings,
} from '../activities/forge-access';
import { explainForgeError, forgeCoordinates, linkPullRequests, openPullRequest } from '../activities/pull-requests';
import type { PullRequestRequest } from '../domain/activity-contracts';
import { noSpend } from '../domain/budget';
import { CatalogRepoSchema, type CatalogRepo } from '../domain/catalog-schema';
import type { CombinedSummary } from '../domain/contracts';
import { startFakeGitHub, type FakeGitHub, type RecordedRequest } from './helpers/fake-github';
import { readPullRequests, readReviewFeedback } from '../activities/track-pull-requests';

const TOKEN = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
const BRANCH = 'change-request/run-1';
const NO_SETTINGS: PullRequestSettings = { draft: false, labels: [] };

/** Pull-request activities need only `forge` and `redact` from their deps; touching anything else fails loudly. */
function depsFor(forge: ForgeAccess): ActivityDeps {
  const used: Partial<ActivityDeps> = { forge, redact: redactorFor([TOKEN]) };
  return new Proxy(used, {
    get(target, key: string) {
      if (key in target) return target[key as keyof ActivityDeps];
      throw new Error(`pull-request activities should not need deps.${key}`);
    },
  }) as ActivityDeps;
}

function catalogRepo(github: FakeGitHub, id: string): CatalogRepo {
  return CatalogRepoSchema.parse({ id, url: github.cloneUrl(`acme/${id}`), role: 'app', description: `${id}, for tests`, owners: ['fiona'] });
}

function prRequest(repo: CatalogRepo): PullRequestRequest {
  return { runId: 'run-1', repo, branch: BRANCH, title: 'Show prices with the currency code', body: 'Prices read "USD 12.50" on product cards.' };
}

function sent(github: FakeGitHub, method: string, path: string): RecordedRequest[] {
  return github.requests.filter((r) => r.method === method && r.path === path);
}

function jsonOf(request: RecordedRequest | undefined): unknown {
  return JSON.parse(request?.body ?? 'null');
}

/** The rejection of `promise`, which must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${String(error)}`);
  return error;
}

describe('openPullRequest on GitHub (token)', () => {
  let github: FakeGitHub;
  beforeEach(async () => {
    github = await startFakeGitHub({ kind: 'token', tokens: [TOKEN] });
  });
  afterEach(async () => {
    await github.close();
  });

  test('opens a draft pull request and adds the configured labels', async () => {
    const repo = github.addRepository('acme/web-app');
    const forge = tokenForgeAccess(TOKEN, { draft: true, labels: ['change-request', 'needs-review'] });

    const outcome = await openPullRequest(depsFor(forge), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome).toEqual({ repo: 'web-app', pr: { number: 1, url: `${github.url}/acme/web-app/pull/1`, state: 'open', reused: false }, error: null });
    const [lookup] = sent(github, 'GET', '/api/v3/repos/acme/web-app/pulls');
    expect(lookup?.query).toMatchObject({ head: `acme:${BRANCH}`, base: 'main', state: 'open' });
    const creates = sent(github, 'POST', '/api/v3/repos/acme/web-app/pulls');
    expect(creates).toHaveLength(1);
    expect(jsonOf(creates[0])).toEqual({ head: BRANCH, base: 'main', title: 'Show prices with the currency code', body: 'Prices read "USD 12.50" on product cards.', draft: true });
    expect(jsonOf(sent(github, 'POST', '/api/v3/repos/acme/web-app/issues/1/labels')[0])).toEqual({ labels: ['change-request', 'needs-review'] });
    expect(repo.pulls).toMatchObject([{ number: 1, draft: true, labels: ['change-request', 'needs-review'] }]);
    expect(github.requests.every((r) => r.headers.authorization === `token ${TOKEN}`)).toBe(true);
  });

  test('without draft or labels configured, sends no draft field and adds no labels', async () => {
    github.addRepository('acme/web-app');

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome.pr).toMatchObject({ number: 1, reused: false });
    expect(jsonOf(sent(github, 'POST', '/api/v3/repos/acme/web-app/pulls')[0])).not.toHaveProperty('draft');
    expect(github.requests.filter((r) => r.path.endsWith('/labels'))).toEqual([]);
  });

  test('an open pull request for the branch is updated, never duplicated, and labels are added again harmlessly', async () => {
    const repo = github.addRepository('acme/web-app');
    repo.seedPull({ head: BRANCH, title: 'An older title', body: 'An older body' });
    const deps = depsFor(tokenForgeAccess(TOKEN, { draft: true, labels: ['change-request'] }));

    const first = await openPullRequest(deps, prRequest(catalogRepo(github, 'web-app')));
    const retried = await openPullRequest(deps, prRequest(catalogRepo(github, 'web-app')));

    expect(first).toEqual({ repo: 'web-app', pr: { number: 1, url: `${github.url}/acme/web-app/pull/1`, state: 'open', reused: true }, error: null });
    expect(retried).toEqual(first);
    expect(sent(github, 'POST', '/api/v3/repos/acme/web-app/pulls')).toEqual([]);
    const updates = sent(github, 'PATCH', '/api/v3/repos/acme/web-app/pulls/1');
    expect(updates.map(jsonOf)).toEqual([
      { title: 'Show prices with the currency code', body: 'Prices read "USD 12.50" on product cards.' },
      { title: 'Show prices with the currency code', body: 'Prices read "USD 12.50" on product cards.' },
    ]);
    expect(repo.pulls).toHaveLength(1);
    expect(repo.pulls[0]).toMatchObject({ title: 'Show prices with the currency code', labels: ['change-request'] });
  });

  test('a pull request opened between the look-up and the create (422 "already exists") is found and updated', async () => {
    const repo = github.addRepository('acme/web-app', {
      beforeCreatePull: () => {
        if (repo.pulls.length === 0) repo.seedPull({ head: BRANCH, title: 'Opened by an earlier attempt' });
      },
    });

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome).toMatchObject({ pr: { number: 1, reused: true }, error: null });
    expect(github.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v3/repos/acme/web-app/pulls',
      'POST /api/v3/repos/acme/web-app/pulls',
      'GET /api/v3/repos/acme/web-app/pulls',
      'PATCH /api/v3/repos/acme/web-app/pulls/1',
    ]);
    expect(repo.pulls).toHaveLength(1);
  });

  test('a repository the service may not write to is reported with what to do, while the other opens', async () => {
    github.addRepository('acme/web-app');
    github.addRepository('acme/ui-kit', { behaviour: 'no-permission' });
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));

    const [webApp, uiKit] = await Promise.all([openPullRequest(deps, prRequest(catalogRepo(github, 'web-app'))), openPullRequest(deps, prRequest(catalogRepo(github, 'ui-kit')))]);

    expect(webApp).toMatchObject({ repo: 'web-app', pr: { number: 1, state: 'open' }, error: null });
    expect(uiKit.pr).toBeNull();
    expect(uiKit.error).toBe(
      'ui-kit: the GitHub App may not do this here (403: Resource not accessible by integration). Give the App "Pull requests: Read and write" (and "Contents: Read and write" to push), have an organization owner accept the changed permissions, and make sure the installation includes this repository.',
    );
  });

  test('an archived repository is reported as read-only', async () => {
    github.addRepository('acme/web-app', { behaviour: 'archived' });

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome).toEqual({
      repo: 'web-app',
      pr: null,
      error: 'web-app: the repository is archived, so it is read-only (403: Repository was archived so is read-only.). Unarchive it on GitHub, or take it out of the catalog.',
    });
  });

  test('a used-up rate limit is thrown for Temporal to retry, saying when it resets', async () => {
    const resetsAt = Math.floor(Date.now() / 1000) + 900;
    github.addRepository('acme/web-app', { behaviour: 'rate-limited', rateLimitResetsAt: resetsAt });

    const failure = await rejectionOf(openPullRequest(depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app'))));

    const resetIso = new Date(resetsAt * 1000).toISOString().replace('.000Z', 'Z');
    expect(failure.type).toBe('ForgeRateLimited');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toMatch(new RegExp(`^web-app: GitHub's primary rate limit was reached \\(403: API rate limit exceeded for user ID 583231\\..*\\); it resets at ${resetIso} \\(15 min from now\\); the step will be retried then\\.$`));
    expect(Number(failure.nextRetryDelay)).toBeGreaterThan(880_000);
    expect(Number(failure.nextRetryDelay)).toBeLessThanOrEqual(902_000);
  });

  test('a secondary rate limit waits as long as retry-after says', async () => {
    github.addRepository('acme/web-app', { behaviour: 'secondary-rate-limited', retryAfterSeconds: 90 });

    const failure = await rejectionOf(openPullRequest(depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app'))));

    expect(failure.type).toBe('ForgeRateLimited');
    expect(failure.message).toMatch(/^web-app: GitHub's secondary rate limit was reached \(403: You have exceeded a secondary rate limit.*\); GitHub asks to wait 90 s, until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; the step will be retried then\.$/);
    expect(failure.nextRetryDelay).toBe(90_000);
  });

  test.each([
    {
      what: 'bad credentials (401)',
      token: 'ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      repo: {},
      error: "web-app: GitHub rejected the service's credentials (401: Bad credentials). Renew the token in FORGE_TOKEN or GITHUB_TOKEN, or check the GitHub App's ID and private key.",
    },
    {
      what: 'a repository that is not there or not visible (404)',
      token: TOKEN,
      repo: null,
      error: "web-app: the repository was not found, or the service's credentials cannot see it (404: Not Found). Check its URL in the catalog, and that the token or the GitHub App installation has access to it.",
    },
    {
      what: 'no commits between base and head (422)',
      token: TOKEN,
      repo: { branchesWithoutCommits: [BRANCH] },
      error: `web-app: GitHub refused the pull request (422: Validation Failed; No commits between main and ${BRANCH}). The work branch has no commits its base lacks, so there is nothing to review (it may be merged already).`,
    },
    {
      what: 'a base branch GitHub does not know (422)',
      token: TOKEN,
      repo: { defaultBranch: 'trunk' },
      error: "web-app: GitHub refused the pull request (422: Validation Failed; base invalid). The base branch is not on GitHub: check the repository's defaultBranch in the catalog.",
    },
  ])('refusal: $what', async ({ token, repo, error }) => {
    if (repo) github.addRepository('acme/web-app', repo);

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(token, NO_SETTINGS)), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome).toEqual({ repo: 'web-app', pr: null, error });
    expect(outcome.error).not.toContain(token);
  });

  test('drafts on a plan without them: the advice says to turn PR_DRAFT off', async () => {
    github.addRepository('acme/web-app', { draftsSupported: false });

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(TOKEN, { draft: true, labels: [] })), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome.error).toBe("web-app: GitHub refused the pull request (422: Draft pull requests are not supported in this repository.). This repository's plan has no draft pull requests: set PR_DRAFT=false.");
  });

  test('labels that cannot be added leave the pull request reported, with the reason', async () => {
    github.addRepository('acme/web-app', { labelsForbidden: true });

    const outcome = await openPullRequest(depsFor(tokenForgeAccess(TOKEN, { draft: false, labels: ['change-request'] })), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome.pr).toMatchObject({ number: 1, reused: false });
    expect(outcome.error).toMatch(/^web-app: pull request #1 is open, but its labels \(change-request\) could not be added: the GitHub App may not do this here \(403: Resource not accessible by integration\)/);
  });
});

describe('linkPullRequests', () => {
  let github: FakeGitHub;
  beforeEach(async () => {
    github = await startFakeGitHub({ kind: 'token', tokens: [TOKEN] });
  });
  afterEach(async () => {
    await github.close();
  });

  const ids = ['ui-kit', 'bff-api', 'web-app'];

  function summary(): CombinedSummary {
    return {
      round: 1,
      requirement: 'Show prices with the currency code',
      narrative: 'Prices now carry their currency code.',
      narrativeBy: 'plain',
      spent: noSpend(),
      repos: [],
      mergeOrder: ids,
      risks: [],
      sincePrevious: [],
    releasePlan: [],
    steps: [],
    };
  }

  async function openAll(deps: ActivityDeps) {
    return Promise.all(
      ids.map(async (id) => {
        github.addRepository(`acme/${id}`);
        const repo = catalogRepo(github, id);
        const { pr } = await openPullRequest(deps, prRequest(repo));
        return { repo, number: pr!.number, url: pr!.url };
      }),
    );
  }

  test('every body links its siblings and lists the merge order; linking again changes nothing', async () => {
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));
    const pullRequests = await openAll(deps);

    await linkPullRequests(deps, { runId: 'run-1', summary: summary(), pullRequests });
    const bodies = ids.map((id) => github.repository(`acme/${id}`).pulls[0]!.body);
    await linkPullRequests(deps, { runId: 'run-1', summary: summary(), pullRequests });

    for (const [i, id] of ids.entries()) {
      const body = bodies[i]!;
      expect(body).toContain(`**this pull request** (${id})`);
      for (const other of ids.filter((o) => o !== id)) expect(body).toContain(`[${other} #1](${github.url}/acme/${other}/pull/1)`);
      expect(body).toContain('### Merge order\n\n1. ui-kit\n2. bff-api\n3. web-app');
      expect(github.repository(`acme/${id}`).pulls[0]!.body).toBe(body);
    }
  });

  test('one pull request that cannot be updated does not stop the others; the failure names it', async () => {
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));
    const pullRequests = await openAll(deps);
    github.repository('acme/bff-api').options.behaviour = 'archived';

    const failure = await rejectionOf(linkPullRequests(deps, { runId: 'run-1', summary: summary(), pullRequests }));

    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      '1 of 3 pull requests could not be linked to their siblings: bff-api #1: the repository is archived, so it is read-only (403: Repository was archived so is read-only.). Unarchive it on GitHub, or take it out of the catalog.',
    );
    for (const id of ['ui-kit', 'web-app']) expect(github.repository(`acme/${id}`).pulls[0]!.body).toContain('[bff-api #1]');
  });

  test('a rate limit on one of them makes the whole step retryable, after the others were tried', async () => {
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));
    const pullRequests = await openAll(deps);
    github.repository('acme/ui-kit').options.behaviour = 'secondary-rate-limited';

    const failure = await rejectionOf(linkPullRequests(deps, { runId: 'run-1', summary: summary(), pullRequests }));

    expect(failure).toMatchObject({ type: 'ForgeRateLimited', nonRetryable: false, nextRetryDelay: 60_000 });
    expect(failure.message).toMatch(/^1 of 3 pull requests could not be linked to their siblings: ui-kit #1: GitHub's secondary rate limit was reached/);
    expect(github.repository('acme/web-app').pulls[0]!.body).toContain('[ui-kit #1]');
  });
});

describe('tracking the pull requests on GitHub', () => {
  let github: FakeGitHub;
  beforeEach(async () => {
    github = await startFakeGitHub({ kind: 'token', tokens: [TOKEN] });
  });
  afterEach(async () => {
    await github.close();
  });

  test('merged or closed, the head commit\'s statuses and check runs, the review decision and what reviewers wrote', async () => {
    const app = github.addRepository('acme/web-app');
    const kit = github.addRepository('acme/ui-kit');
    const open = app.seedPull({ head: BRANCH, title: 'Prices' });
    Object.assign(open, {
      statuses: [{ context: 'ci/lint', state: 'success' }],
      checkRuns: [{ name: 'test', status: 'completed', conclusion: 'failure' }, { name: 'build', status: 'in_progress', conclusion: null }],
      reviews: [{ user: 'frank', state: 'APPROVED', body: '' }, { user: 'bob', state: 'CHANGES_REQUESTED', body: 'The banner needs the code too.' }],
      comments: [{ user: 'bob', body: 'USD here as well', path: 'src/render.js', line: 12 }],
    });
    Object.assign(kit.seedPull({ head: BRANCH, title: 'Prices' }), { merged: true, state: 'closed' });
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));
    const request = { runId: 'run-1', pullRequests: [{ repo: catalogRepo(github, 'web-app'), number: open.number }, { repo: catalogRepo(github, 'ui-kit'), number: 1 }] };

    expect(await readPullRequests(deps, request)).toEqual([
      { repo: 'web-app', number: open.number, state: 'open', headSha: expect.any(String), ci: 'failure', review: 'changes_requested', reviewComments: 2, error: null },
      { repo: 'ui-kit', number: 1, state: 'merged', headSha: expect.any(String), ci: null, review: null, reviewComments: 0, error: null },
    ]);
    // Passing checks and one still running read as running; with every one done, as passing.
    Object.assign(open, { checkRuns: [{ name: 'test', status: 'completed', conclusion: 'success' }, { name: 'build', status: 'queued', conclusion: null }] });
    expect((await readPullRequests(deps, request))[0]!.ci).toBe('pending');
    Object.assign(open, { checkRuns: [{ name: 'test', status: 'completed', conclusion: 'success' }, { name: 'lint', status: 'completed', conclusion: 'skipped' }] });
    expect((await readPullRequests(deps, request))[0]!.ci).toBe('success');

    // What reviewers wrote, for a feedback round: review bodies and line comments.
    const [feedback] = await readReviewFeedback(deps, { runId: 'run-1', pullRequests: [request.pullRequests[0]!] });
    expect(feedback!.comments).toEqual([
      { id: expect.stringMatching(/^review-/), by: 'bob', text: 'The banner needs the code too.', path: null, line: null },
      { id: expect.stringMatching(/^comment-/), by: 'bob', text: 'USD here as well', path: 'src/render.js', line: 12 },
    ]);
  });

  test('a rate limit is thrown for Temporal to retry when it resets; a pull request it may not see is reported and looked at again later', async () => {
    const resetsAt = Math.floor(Date.now() / 1000) + 600;
    github.addRepository('acme/web-app', { behaviour: 'rate-limited', rateLimitResetsAt: resetsAt });
    github.addRepository('acme/ui-kit', { behaviour: 'no-permission' });
    const deps = depsFor(tokenForgeAccess(TOKEN, NO_SETTINGS));
    const limited = await rejectionOf(readPullRequests(deps, { runId: 'run-1', pullRequests: [{ repo: catalogRepo(github, 'web-app'), number: 1 }] }));
    expect(limited.type).toBe('ForgeRateLimited');
    expect(Number(limited.nextRetryDelay)).toBeGreaterThan(580_000);
    const [refused] = await readPullRequests(deps, { runId: 'run-1', pullRequests: [{ repo: catalogRepo(github, 'ui-kit'), number: 1 }] });
    expect(refused).toMatchObject({ repo: 'ui-kit', state: 'open', error: expect.stringMatching(/^ui-kit: the GitHub App may not do this here \(403: Resource not accessible by integration\)/) });
  });
});

describe('GitHub App authentication', () => {
  const APP_ID = 1234;
  const INSTALLATION_ID = 5678;
  // GitHub hands out App keys as PKCS#1 PEM ("BEGIN RSA PRIVATE KEY").
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const keyLines = keys.privateKey.split('\n').filter((line) => line && !line.startsWith('-----'));
  let github: FakeGitHub;
  let tmp: string;
  beforeEach(async () => {
    github = await startFakeGitHub({ kind: 'app', appId: APP_ID, installationId: INSTALLATION_ID, publicKey: createPublicKey(keys.publicKey) });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'github-app-test-'));
  });
  afterEach(async () => {
    await github.close();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  function expectNoKeyIn(text: string): void {
    for (const line of keyLines) expect(text).not.toContain(line);
  }

  test('API calls and git use one installation token, obtained with a JWT GitHub verifies; the key never leaves', async () => {
    github.addRepository('acme/web-app');
    github.addRepository('acme/ui-kit', { behaviour: 'no-permission' });
    const forge = githubAppForgeAccess({ appId: APP_ID, privateKey: keys.privateKey, installationId: INSTALLATION_ID, pullRequests: { draft: false, labels: ['change-request'] }, baseUrl: github.apiUrl });
    const deps = depsFor(forge);

    const [webApp, uiKit] = await Promise.all([openPullRequest(deps, prRequest(catalogRepo(github, 'web-app'))), openPullRequest(deps, prRequest(catalogRepo(github, 'ui-kit')))]);
    const gitToken = await forge.gitToken(github.cloneUrl('acme/web-app'));

    expect(webApp).toMatchObject({ pr: { number: 1, state: 'open' }, error: null });
    expect(uiKit.error).toMatch(/^ui-kit: the GitHub App may not do this here \(403: Resource not accessible by integration\)/);
    // One token for everything: the auth caches it until it nears expiry.
    expect(github.issuedTokens).toHaveLength(1);
    const installationToken = github.issuedTokens[0]!;
    expect(installationToken).toMatch(/^ghs_/);
    expect(gitToken).toBe(installationToken);

    const tokenRequests = sent(github, 'POST', `/api/v3/app/installations/${INSTALLATION_ID}/access_tokens`);
    expect(tokenRequests).toHaveLength(1);
    const jwt = /^bearer (\S+)$/i.exec(tokenRequests[0]!.headers.authorization ?? '')?.[1] ?? '';
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss: unknown; iat: number; exp: number };
    expect(String(claims.iss)).toBe(String(APP_ID));
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);

    const apiCalls = github.requests.filter((r) => r !== tokenRequests[0]);
    expect(apiCalls.length).toBeGreaterThan(0);
    for (const call of apiCalls) expect(call.headers.authorization).toBe(`token ${installationToken}`);
    for (const request of github.requests) expectNoKeyIn(JSON.stringify(request));
    expectNoKeyIn(JSON.stringify([webApp, uiKit]));
  });

  test('the token is only handed to the GitHub the App is registered on', async () => {
    const forge = githubAppForgeAccess({ appId: APP_ID, privateKey: keys.privateKey, installationId: INSTALLATION_ID, pullRequests: NO_SETTINGS, baseUrl: github.apiUrl });

    await expect(forge.gitToken('https://github.com/acme/web-app.git')).rejects.toThrow(new ForgeAccessError(`git host github.com is not ${new URL(github.url).host}, where GitHub App ${APP_ID} is registered; point the catalog at that host or set GITHUB_API_URL`));
    expect(() => forge.octokit('https://api.github.com')).toThrow(`GitHub App ${APP_ID} is registered on ${github.apiUrl}, not https://api.github.com`);
    expect(github.issuedTokens).toEqual([]);
  });

  test('a wrong installation ID is reported as such, not as a missing repository', async () => {
    github.addRepository('acme/web-app');
    const forge = githubAppForgeAccess({ appId: APP_ID, privateKey: keys.privateKey, installationId: 999, pullRequests: NO_SETTINGS, baseUrl: github.apiUrl });

    const outcome = await openPullRequest(depsFor(forge), prRequest(catalogRepo(github, 'web-app')));

    expect(outcome.error).toMatch(/^web-app: the GitHub App could not get an installation access token \(404: Not Found\)\. Check GITHUB_APP_ID/);
    expectNoKeyIn(outcome.error ?? '');
  });

  test('forgeAccessFromEnv chooses the App, with the key read from GITHUB_APP_PRIVATE_KEY_PATH', async () => {
    const keyFile = path.join(tmp, 'app.pem');
    await fs.writeFile(keyFile, keys.privateKey);
    const forge = forgeAccessFromEnv(
      { GITHUB_APP_ID: String(APP_ID), GITHUB_APP_PRIVATE_KEY_PATH: keyFile, GITHUB_APP_INSTALLATION_ID: String(INSTALLATION_ID), GITHUB_API_URL: github.apiUrl, GITHUB_TOKEN: TOKEN },
      NO_SETTINGS,
    );

    const token = await forge.gitToken(github.cloneUrl('acme/web-app'));

    expect(github.issuedTokens).toEqual([token]);
  });
});

describe('configuration', () => {
  test('forgeCoordinates: github.com goes to api.github.com, any other host to its /api/v3', () => {
    expect(forgeCoordinates('https://github.com/acme/web-app.git')).toEqual({ apiUrl: 'https://api.github.com', owner: 'acme', repo: 'web-app' });
    expect(forgeCoordinates('https://ghe.example.com/acme/web-app.git')).toEqual({ apiUrl: 'https://ghe.example.com/api/v3', owner: 'acme', repo: 'web-app' });
    expect(forgeCoordinates('http://127.0.0.1:8740/demo/ui-kit.git')).toEqual({ apiUrl: 'http://127.0.0.1:8740/api/v3', owner: 'demo', repo: 'ui-kit' });
  });

  test('partial GitHub App settings name what is missing', () => {
    expect(() => forgeAccessFromEnv({ GITHUB_APP_ID: '1234', GITHUB_TOKEN: TOKEN }, NO_SETTINGS)).toThrow(
      'GitHub App settings are incomplete: GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, GITHUB_APP_INSTALLATION_ID are missing. Set all of them, or unset the GITHUB_APP_* variables to use FORGE_TOKEN or GITHUB_TOKEN.',
    );
    expect(() => forgeAccessFromEnv({ GITHUB_APP_PRIVATE_KEY: 'x', GITHUB_APP_INSTALLATION_ID: '5678' }, NO_SETTINGS)).toThrow('GITHUB_APP_ID is missing');
    expect(() => forgeAccessFromEnv({ GITHUB_APP_ID: '1234', GITHUB_APP_PRIVATE_KEY_PATH: '/nonexistent/app.pem', GITHUB_APP_INSTALLATION_ID: '5678' }, NO_SETTINGS)).toThrow(
      'GITHUB_APP_PRIVATE_KEY_PATH: cannot read /nonexistent/app.pem (ENOENT)',
    );
    expect(() => forgeAccessFromEnv({ GITHUB_APP_ID: '1234', GITHUB_APP_PRIVATE_KEY: 'not a key', GITHUB_APP_INSTALLATION_ID: '5678' }, NO_SETTINGS)).toThrow(/^The GitHub App private key is not a PEM private key/);
    expect(() => forgeAccessFromEnv({ GITHUB_APP_ID: 'my-app', GITHUB_APP_PRIVATE_KEY: 'x', GITHUB_APP_INSTALLATION_ID: '5678' }, NO_SETTINGS)).toThrow('GITHUB_APP_ID must be a number');
  });

  test('without App settings: FORGE_TOKEN, else GITHUB_TOKEN, else no credentials', async () => {
    expect(await forgeAccessFromEnv({ FORGE_TOKEN: 'forge-token-123', GITHUB_TOKEN: TOKEN }, NO_SETTINGS).gitToken('https://github.com/a/b.git')).toBe('forge-token-123');
    expect(await forgeAccessFromEnv({ GITHUB_TOKEN: TOKEN, GITHUB_APP_ID: '' }, NO_SETTINGS).gitToken('https://github.com/a/b.git')).toBe(TOKEN);
    expect(await forgeAccessFromEnv({}, NO_SETTINGS).gitToken('https://github.com/a/b.git')).toBeUndefined();
  });

  test('pull request settings: PR_DRAFT and PR_LABELS', () => {
    expect(pullRequestSettingsFromEnv({})).toEqual({ draft: false, labels: [] });
    expect(pullRequestSettingsFromEnv({ PR_DRAFT: 'true', PR_LABELS: ' change-request, needs review ,,change-request' })).toEqual({ draft: true, labels: ['change-request', 'needs review'] });
    expect(() => pullRequestSettingsFromEnv({ PR_DRAFT: 'yes' })).toThrow('PR_DRAFT must be "true" or "false", not "yes"');
  });

  test('a ruleset refusal (422) says who can lift it', () => {
    const error = { status: 422, message: 'Repository rule violations found', response: { headers: {}, data: { message: 'Repository rule violations found\n\nGH013: Cannot create this pull request.', documentation_url: 'https://docs.github.com/rest' } } };

    expect(explainForgeError(error, 'web-app')).toEqual({
      retryable: false,
      message:
        "web-app: GitHub refused the pull request (422: Repository rule violations found\n\nGH013: Cannot create this pull request.). A branch protection rule or ruleset blocks it: ask a repository admin to add the service's account or App to the rule's bypass list, or to change the rule.",
    });
  });
});
