// The local forge against real clients: isomorphic-git and the git CLI over smart HTTP, Octokit over REST.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import git from 'isomorphic-git';
import gitHttp from 'isomorphic-git/http/node';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { REFUSAL } from '../forge/ref-guard';

const execFileAsync = promisify(execFile);
const TOKEN = `forge-test-${randomBytes(8).toString('hex')}`;
const AUTHOR = { name: 'Test Author', email: 'author@test.local' };

let tmp: string;
let sourceDir: string;
let forge: Forge;
let firstSeed: { created: string[]; existing: string[] };

/** The git CLI, isolated from the machine's config and never prompting for a password. */
async function gitCli(args: string[], cwd?: string): Promise<string> {
  const env = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: AUTHOR.name,
    GIT_AUTHOR_EMAIL: AUTHOR.email,
    GIT_COMMITTER_NAME: AUTHOR.name,
    GIT_COMMITTER_EMAIL: AUTHOR.email,
  };
  const { stdout } = await execFileAsync('git', args, { cwd, env });
  return stdout;
}

function cloneUrl(repo = 'acme/web-app', token: string | null = TOKEN): string {
  const url = new URL(`${forge.url}/${repo}.git`);
  if (token !== null) {
    url.username = 'x-access-token';
    url.password = token;
  }
  return url.toString();
}

async function remoteHeads(repo = 'acme/web-app'): Promise<Map<string, string>> {
  const out = await gitCli(['ls-remote', '--heads', cloneUrl(repo)]);
  return new Map(out.trim().split('\n').filter(Boolean).map((line) => {
    const [sha = '', ref = ''] = line.split('\t');
    return [ref, sha] as const;
  }));
}

/** A request sent exactly as written: unlike fetch, http.request does not normalise "..", so traversal reaches the server. */
function rawRequest(options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const { hostname, port } = new URL(forge.url);
    const req = http.request({ hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const bearer = { Authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-test-'));
  sourceDir = path.join(tmp, 'source');
  await fs.mkdir(path.join(sourceDir, 'src'), { recursive: true });
  await fs.mkdir(path.join(sourceDir, 'node_modules', 'left-pad'), { recursive: true });
  await fs.mkdir(path.join(sourceDir, 'dist'), { recursive: true });
  await fs.writeFile(path.join(sourceDir, 'package.json'), '{ "name": "web-app" }\n');
  await fs.writeFile(path.join(sourceDir, 'src', 'index.ts'), 'export const greeting = "hello";\n');
  await fs.writeFile(path.join(sourceDir, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
  await fs.writeFile(path.join(sourceDir, 'dist', 'bundle.js'), 'built\n');

  forge = await startForge({ dataDir: path.join(tmp, 'data'), token: TOKEN });
  firstSeed = await seedRepositories(forge, [{ owner: 'acme', name: 'web-app', sourceDir }]);
});

afterAll(async () => {
  await forge?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('seeding', () => {
  it('imports the source as one commit, skipping node_modules and dist, and only once', async () => {
    const bare = path.join(forge.reposDir, 'acme', 'web-app.git');
    expect(firstSeed).toEqual({ created: ['acme/web-app'], existing: [] });
    const files = (await gitCli(['--git-dir', bare, 'ls-tree', '-r', '--name-only', 'main'])).trim().split('\n');
    expect(files).toEqual(['package.json', 'src/index.ts']);
    const log = (await gitCli(['--git-dir', bare, 'log', '--format=%an <%ae>|%cn <%ce>|%s', 'main'])).trim().split('\n');
    expect(log).toEqual(['Demo Seeder <seed@forge.local>|Demo Seeder <seed@forge.local>|Initial import']);

    const mainBefore = (await gitCli(['--git-dir', bare, 'rev-parse', 'main'])).trim();
    await fs.writeFile(path.join(sourceDir, 'package.json'), '{ "name": "changed" }\n');
    const again = await seedRepositories(forge, [{ owner: 'acme', name: 'web-app', sourceDir }]);
    expect(again).toEqual({ created: [], existing: ['acme/web-app'] });
    expect((await gitCli(['--git-dir', bare, 'rev-parse', 'main'])).trim()).toBe(mainBefore);
    await fs.writeFile(path.join(sourceDir, 'package.json'), '{ "name": "web-app" }\n');
  });
});

describe('git over smart HTTP', () => {
  it('lets isomorphic-git shallow-clone with the token, push a new branch, and git ls-remote see it', async () => {
    const dir = path.join(tmp, 'iso-clone');
    const onAuth = () => ({ username: 'x-access-token', password: TOKEN });
    await git.clone({ fs, http: gitHttp, dir, url: `${forge.url}/acme/web-app.git`, ref: 'main', singleBranch: true, depth: 1, onAuth });
    expect(await fs.readFile(path.join(dir, '.git', 'shallow'), 'utf8')).toMatch(/^[0-9a-f]{40}\n$/);
    expect(await fs.readFile(path.join(dir, 'src', 'index.ts'), 'utf8')).toBe('export const greeting = "hello";\n');

    await git.branch({ fs, dir, ref: 'feature/iso', checkout: true });
    await fs.writeFile(path.join(dir, 'src', 'index.ts'), 'export const greeting = "hi";\n');
    await git.add({ fs, dir, filepath: 'src/index.ts' });
    const sha = await git.commit({ fs, dir, message: 'Say hi', author: AUTHOR });
    const result = await git.push({ fs, http: gitHttp, dir, url: `${forge.url}/acme/web-app.git`, ref: 'feature/iso', onAuth });
    expect(result.ok).toBe(true);

    const heads = await remoteHeads();
    expect(heads.get('refs/heads/feature/iso')).toBe(sha);
    // What the service uses to look up a remote branch.
    const refs = await git.listServerRefs({ http: gitHttp, url: `${forge.url}/acme/web-app.git`, prefix: 'refs/heads/feature/', onAuth });
    expect(refs).toEqual([{ ref: 'refs/heads/feature/iso', oid: sha }]);
    const bare = path.join(forge.reposDir, 'acme', 'web-app.git');
    expect(await gitCli(['--git-dir', bare, 'show', 'feature/iso:src/index.ts'])).toBe('export const greeting = "hi";\n');
  });

  it('lets the git CLI clone with the token in the URL', async () => {
    const dir = path.join(tmp, 'cli-clone');
    await gitCli(['clone', '--quiet', cloneUrl(), dir]);
    expect(await fs.readFile(path.join(dir, 'package.json'), 'utf8')).toBe('{ "name": "web-app" }\n');
    expect((await gitCli(['rev-parse', '--abbrev-ref', 'HEAD'], dir)).trim()).toBe('main');
  });

  it('answers 401 with a Basic challenge when the token is missing or wrong', async () => {
    const refsPath = '/acme/web-app.git/info/refs?service=git-upload-pack';
    const missing = await rawRequest({ path: refsPath });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Basic realm="forge"');
    const wrongBasic = `Basic ${Buffer.from(`x-access-token:${TOKEN}x`).toString('base64')}`;
    expect((await rawRequest({ path: refsPath, headers: { Authorization: wrongBasic } })).status).toBe(401);
    expect((await rawRequest({ path: '/api/v3/repos/acme/web-app', headers: { Authorization: 'token nope' } })).status).toBe(401);
    expect((await rawRequest({ path: refsPath, headers: bearer })).status).toBe(200);
  });

  it('opens its pages to a browser on this machine without the token, and to nothing else', async () => {
    const { port } = new URL(forge.url);
    // A person's browser on this machine: no token, a loopback Host (any *.localhost too).
    expect((await rawRequest({ path: '/' })).status).toBe(200);
    expect((await rawRequest({ path: '/acme/web-app', headers: { Host: `localhost:${port}` } })).status).toBe(200);
    // A DNS-rebinding page reaches the same socket under a foreign name: the token is asked for.
    const rebound = await rawRequest({ path: '/', headers: { Host: `attacker.example:${port}` } });
    expect(rebound.status).toBe(401);
    // Writes and git need the token whoever asks.
    expect((await rawRequest({ method: 'POST', path: '/acme/web-app' })).status).toBe(401);
    expect((await rawRequest({ path: '/acme/web-app.git/info/refs?service=git-upload-pack' })).status).toBe(401);
    expect((await rawRequest({ path: '/api/v3/repos/acme/web-app' })).status).toBe(401);
  });

  it('lets refs change only through its authenticated HTTP: local git commands and path pushes are refused', async () => {
    const before = await remoteHeads();
    const bare = path.join(forge.reposDir, 'acme', 'web-app.git');
    const main = [...before.values()][0];
    await expect(gitCli(['--git-dir', bare, 'update-ref', 'refs/heads/main', '0000000000000000000000000000000000000000'])).rejects.toThrow(REFUSAL);
    await expect(gitCli(['--git-dir', bare, 'branch', 'sneaky', main!])).rejects.toThrow(REFUSAL);
    const dir = path.join(tmp, 'local-pusher');
    await gitCli(['clone', '--quiet', cloneUrl(), dir]);
    await expect(gitCli(['push', '--quiet', bare, 'HEAD:refs/heads/sneaky'], dir)).rejects.toThrow(REFUSAL);
    // The hook holds only the key's hash: reading it does not help.
    const hook = await fs.readFile(path.join(bare, 'hooks', 'reference-transaction'), 'utf8');
    expect(hook).not.toContain(await fs.readFile(path.join(tmp, 'data', 'ref-write-key'), 'utf8'));
    expect(await remoteHeads()).toEqual(before);
  });

  it('refuses pushes with a wrong token and leaves the repository unchanged', async () => {
    const before = await remoteHeads();
    const dir = path.join(tmp, 'intruder');
    await gitCli(['clone', '--quiet', cloneUrl(), dir]);
    await gitCli(['checkout', '--quiet', '-b', 'intruder'], dir);
    await fs.writeFile(path.join(dir, 'evil.txt'), 'nope\n');
    await gitCli(['add', '.'], dir);
    await gitCli(['commit', '--quiet', '-m', 'Intrude'], dir);

    await expect(gitCli(['push', cloneUrl('acme/web-app', 'wrong-token'), 'intruder'], dir)).rejects.toThrow(/Authentication failed|401/);
    await expect(gitCli(['push', cloneUrl('acme/web-app', null), 'intruder'], dir)).rejects.toThrow();
    const isoPush = git.push({
      fs,
      http: gitHttp,
      dir,
      url: `${forge.url}/acme/web-app.git`,
      ref: 'intruder',
      onAuth: () => ({ username: 'x-access-token', password: 'wrong-token' }),
    });
    await expect(isoPush).rejects.toMatchObject({ code: 'HttpError', data: { statusCode: 401 } });

    expect(await remoteHeads()).toEqual(before);
  });

  it('answers 404 for an unknown repository and 400 for names that try to leave the repositories folder', async () => {
    expect((await rawRequest({ path: '/acme/nope.git/info/refs?service=git-upload-pack', headers: bearer })).status).toBe(404);
    for (const attempt of [
      '/../../etc/passwd.git/info/refs?service=git-upload-pack',
      '/acme/..%2F..%2Fetc.git/info/refs',
      '/%2e%2e/web-app.git/info/refs',
      '/.hidden/web-app.git/info/refs',
      '/api/v3/repos/..%2F..%2Fetc/passwd',
      '/api/v3/repos/acme/..',
    ]) {
      const response = await rawRequest({ path: attempt, headers: bearer });
      expect({ attempt, status: response.status }).toEqual({ attempt, status: 400 });
    }
  });

  it('passes the Git-Protocol header through, so clients get protocol v2', async () => {
    const refsPath = '/acme/web-app.git/info/refs?service=git-upload-pack';
    const v2 = await rawRequest({ path: refsPath, headers: { ...bearer, 'Git-Protocol': 'version=2' } });
    expect(v2.status).toBe(200);
    expect(v2.body).toContain('version 2\n');
    expect((await rawRequest({ path: refsPath, headers: bearer })).body).not.toContain('version 2\n');
  });

  it('turns a failing http-backend into a prompt 500 with a short reason', async () => {
    const response = await rawRequest({
      method: 'POST',
      path: '/acme/web-app.git/git-upload-pack',
      headers: { ...bearer, 'Content-Type': 'application/x-git-upload-pack-request' },
      body: 'not a pkt-line',
    });
    expect(response.status).toBe(500);
    expect(response.body).toMatch(/^git http-backend failed: exit 1 \(fatal: protocol error/);
  });

  it('accepts anonymous pushes on a forge without a token', async () => {
    const open = await startForge({ dataDir: path.join(tmp, 'open-forge') });
    try {
      await seedRepositories(open, [{ owner: 'demo', name: 'site', sourceDir }]);
      const dir = path.join(tmp, 'open-clone');
      await gitCli(['clone', '--quiet', `${open.url}/demo/site.git`, dir]);
      await fs.writeFile(path.join(dir, 'README.md'), 'open\n');
      await gitCli(['add', '.'], dir);
      await gitCli(['commit', '--quiet', '-m', 'Add readme'], dir);
      await gitCli(['push', '--quiet', 'origin', 'HEAD:refs/heads/docs'], dir);
      const heads = await gitCli(['ls-remote', '--heads', `${open.url}/demo/site.git`]);
      expect(heads).toContain(`${(await gitCli(['rev-parse', 'HEAD'], dir)).trim()}\trefs/heads/docs`);
    } finally {
      await open.close();
    }
  });
});

describe('pull request API', () => {
  let octokit: Octokit;
  let workDir: string;

  /** Pushes a branch off main with one new commit and returns that commit. */
  async function pushBranch(branch: string): Promise<string> {
    await gitCli(['checkout', '--quiet', '-B', branch, 'origin/main'], workDir);
    await fs.writeFile(path.join(workDir, `${branch.replace(/\//g, '-')}.txt`), `${branch}\n`);
    await gitCli(['add', '.'], workDir);
    await gitCli(['commit', '--quiet', '-m', `Work on ${branch}`], workDir);
    await gitCli(['push', '--quiet', 'origin', branch], workDir);
    return (await gitCli(['rev-parse', 'HEAD'], workDir)).trim();
  }

  beforeAll(async () => {
    const quiet = () => undefined; // the 4xx answers below are expected; keep Octokit from logging them
    octokit = new Octokit({ baseUrl: forge.apiUrl, auth: TOKEN, request: { retries: 0 }, log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
    workDir = path.join(tmp, 'api-work');
    await gitCli(['clone', '--quiet', cloneUrl(), workDir]);
  });

  it('describes the repository like GitHub does', async () => {
    const { data } = await octokit.rest.repos.get({ owner: 'acme', repo: 'web-app' });
    expect(data).toMatchObject({
      name: 'web-app',
      full_name: 'acme/web-app',
      default_branch: 'main',
      archived: false,
      private: true,
      clone_url: `${forge.url}/acme/web-app.git`,
      permissions: { admin: true, push: true, pull: true },
    });
    await expect(octokit.rest.repos.get({ owner: 'acme', repo: 'missing' })).rejects.toMatchObject({ status: 404 });
  });

  it('creates a repository of an owner as GitHub does, which git can then push to; a second create is refused', async () => {
    const { data } = await octokit.rest.repos.createInOrg({ org: 'team', name: 'own-app' });
    expect(data).toMatchObject({ full_name: 'team/own-app', default_branch: 'main', clone_url: `${forge.url}/team/own-app.git` });
    await gitCli(['push', '--quiet', cloneUrl('team/own-app'), 'HEAD:refs/heads/main'], workDir);
    expect([...(await remoteHeads('team/own-app')).keys()]).toEqual(['refs/heads/main']);
    await expect(octokit.rest.repos.createInOrg({ org: 'team', name: 'own-app' })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.repos.createInOrg({ org: 'team', name: '../escape' })).rejects.toMatchObject({ status: 422 });
    const anonymous = await fetch(`${forge.apiUrl}/orgs/team/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"sneaky"}' });
    expect(anonymous.status).toBe(401);
  });

  it('creates, finds, refuses to duplicate, updates and labels a pull request, and records it beside the repo', async () => {
    const headSha = await pushBranch('change/button');
    const mainSha = (await gitCli(['rev-parse', 'origin/main'], workDir)).trim();

    const created = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/button', base: 'main', title: 'Bigger button', body: 'First draft' });
    expect(created.status).toBe(201);
    const pr = created.data;
    expect(pr).toMatchObject({
      state: 'open',
      title: 'Bigger button',
      body: 'First draft',
      draft: false,
      merged: false,
      user: { login: 'change-request-bot' },
      labels: [],
      html_url: `${forge.url}/acme/web-app/pull/${pr.number}`,
      url: `${forge.apiUrl}/repos/acme/web-app/pulls/${pr.number}`,
      head: { ref: 'change/button', sha: headSha, label: 'acme:change/button', repo: { full_name: 'acme/web-app' } },
      base: { ref: 'main', sha: mainSha, label: 'acme:main', repo: { full_name: 'acme/web-app' } },
    });

    const listed = await octokit.rest.pulls.list({ owner: 'acme', repo: 'web-app', head: 'acme:change/button', base: 'main', state: 'open' });
    expect(listed.data.map((p) => p.number)).toEqual([pr.number]);
    const otherHead = await octokit.rest.pulls.list({ owner: 'acme', repo: 'web-app', head: 'acme:change/other' });
    expect(otherHead.data).toEqual([]);
    expect((await octokit.rest.pulls.list({ owner: 'acme', repo: 'web-app', state: 'closed' })).data).toEqual([]);

    const duplicate = octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'acme:change/button', base: 'main', title: 'Again' });
    await expect(duplicate).rejects.toMatchObject({
      status: 422,
      response: { data: { message: 'Validation Failed', errors: [{ resource: 'PullRequest', code: 'custom', message: 'A pull request already exists for acme:change/button.' }] } },
    });
    const missingHead = octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'no-such-branch', base: 'main', title: 'x' });
    await expect(missingHead).rejects.toMatchObject({ status: 422, response: { data: { errors: [{ message: expect.stringMatching(/head.*invalid/) }] } } });
    const missingBase = octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/button', base: 'release', title: 'x' });
    await expect(missingBase).rejects.toMatchObject({ status: 422, response: { data: { errors: [{ message: expect.stringMatching(/base.*invalid/) }] } } });

    const updated = await octokit.rest.pulls.update({ owner: 'acme', repo: 'web-app', pull_number: pr.number, body: 'Final summary' });
    expect(updated.data).toMatchObject({ number: pr.number, title: 'Bigger button', body: 'Final summary' });

    const labels = await octokit.rest.issues.addLabels({ owner: 'acme', repo: 'web-app', issue_number: pr.number, labels: ['change-request', 'ui'] });
    expect(labels.data.map((l) => l.name)).toEqual(['change-request', 'ui']);
    await octokit.rest.issues.addLabels({ owner: 'acme', repo: 'web-app', issue_number: pr.number, labels: ['ui'] });

    const fetched = await octokit.rest.pulls.get({ owner: 'acme', repo: 'web-app', pull_number: pr.number });
    expect(fetched.data).toMatchObject({ body: 'Final summary', labels: [{ name: 'change-request' }, { name: 'ui' }] });

    const record = JSON.parse(await fs.readFile(path.join(forge.reposDir, 'acme', 'web-app.pulls.json'), 'utf8'));
    expect(record.repository).toBe('acme/web-app');
    expect(record.pulls).toContainEqual(
      expect.objectContaining({ number: pr.number, head: 'change/button', base: 'main', title: 'Bigger button', body: 'Final summary', state: 'open', labels: ['change-request', 'ui'] }),
    );

    const closed = await octokit.rest.pulls.update({ owner: 'acme', repo: 'web-app', pull_number: pr.number, state: 'closed' });
    expect(closed.data).toMatchObject({ state: 'closed', closed_at: expect.any(String) });
    const reopened = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/button', base: 'main', title: 'Second try' });
    expect(reopened.data.number).toBeGreaterThan(pr.number);
  });

  it('merges a pull request with a merge commit as GitHub does, and refuses what GitHub refuses', async () => {
    const headSha = await pushBranch('change/merge-me');
    const { data: pr } = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/merge-me', base: 'main', title: 'Merge me' });
    const mainBefore = (await remoteHeads()).get('refs/heads/main')!;
    await expect(octokit.rest.pulls.checkIfMerged({ owner: 'acme', repo: 'web-app', pull_number: pr.number })).rejects.toMatchObject({ status: 404 });
    // Without the token nothing merges.
    const anonymous = await fetch(`${forge.apiUrl}/repos/acme/web-app/pulls/${pr.number}/merge`, { method: 'PUT' });
    expect(anonymous.status).toBe(401);
    await expect(octokit.rest.pulls.merge({ owner: 'acme', repo: 'web-app', pull_number: pr.number, sha: mainBefore })).rejects.toMatchObject({ status: 409 });

    const { data: merge } = await octokit.rest.pulls.merge({ owner: 'acme', repo: 'web-app', pull_number: pr.number });
    expect(merge).toMatchObject({ merged: true, sha: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const bare = path.join(forge.reposDir, 'acme', 'web-app.git');
    expect((await gitCli(['--git-dir', bare, 'rev-parse', 'main'])).trim()).toBe(merge.sha);
    expect((await gitCli(['--git-dir', bare, 'log', '-1', '--format=%P%n%s', 'main'])).trim()).toBe(`${mainBefore} ${headSha}\nMerge pull request #${pr.number} from acme/change/merge-me`);
    const { data: after } = await octokit.rest.pulls.get({ owner: 'acme', repo: 'web-app', pull_number: pr.number });
    expect(after).toMatchObject({ state: 'closed', merged: true, merged_at: expect.any(String), merge_commit_sha: merge.sha });
    expect((await octokit.rest.pulls.checkIfMerged({ owner: 'acme', repo: 'web-app', pull_number: pr.number })).status).toBe(204);
    await expect(octokit.rest.pulls.merge({ owner: 'acme', repo: 'web-app', pull_number: pr.number })).rejects.toMatchObject({ status: 405 });
    await expect(octokit.rest.pulls.update({ owner: 'acme', repo: 'web-app', pull_number: pr.number, state: 'open' })).rejects.toMatchObject({ status: 422 });

    // The page's own buttons: a person merges with the token typed into the form; a wrong one changes nothing.
    await pushBranch('change/by-form');
    const { data: formPr } = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/by-form', base: 'main', title: 'By form' });
    const pagePath = `/acme/web-app/pull/${formPr.number}`;
    expect((await rawRequest({ path: pagePath })).body).toContain(`<form method="post" action="${pagePath}/merge"`);
    const post = (token: string) => rawRequest({ method: 'POST', path: `${pagePath}/merge`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(token)}` });
    expect((await post('wrong')).status).toBe(401);
    expect((await octokit.rest.pulls.get({ owner: 'acme', repo: 'web-app', pull_number: formPr.number })).data.merged).toBe(false);
    const merged = await post(TOKEN);
    expect(merged).toMatchObject({ status: 303, headers: { location: pagePath } });
    expect((await rawRequest({ path: pagePath })).body).toMatch(/Merged as <code>[0-9a-f]{8}<\/code>/);
    expect((await post(TOKEN)).status).toBe(405);

    // Two branches that change the same line: the second cannot be merged after the first.
    for (const [branch, text] of [['change/left', 'left\n'], ['change/right', 'right\n']] as const) {
      await gitCli(['checkout', '--quiet', '-B', branch, 'origin/main'], workDir);
      await gitCli(['fetch', '--quiet', 'origin'], workDir);
      await gitCli(['reset', '--quiet', '--hard', 'origin/main'], workDir);
      await fs.writeFile(path.join(workDir, 'package.json'), text);
      await gitCli(['commit', '--quiet', '-am', `Write ${text.trim()}`], workDir);
      await gitCli(['push', '--quiet', '--force', 'origin', branch], workDir);
    }
    const left = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/left', base: 'main', title: 'Left' });
    const right = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/right', base: 'main', title: 'Right' });
    await octokit.rest.pulls.merge({ owner: 'acme', repo: 'web-app', pull_number: left.data.number });
    await expect(octokit.rest.pulls.merge({ owner: 'acme', repo: 'web-app', pull_number: right.data.number })).rejects.toMatchObject({ status: 405, response: { data: { message: expect.stringMatching(/^Pull Request is not mergeable: merge conflict/) } } });
    expect((await octokit.rest.pulls.get({ owner: 'acme', repo: 'web-app', pull_number: right.data.number })).data).toMatchObject({ state: 'open', merged: false });
  });

  it('refuses a pull request whose head has no commits beyond the base', async () => {
    await gitCli(['push', '--quiet', 'origin', 'origin/main:refs/heads/same-as-main'], workDir);
    const create = octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'same-as-main', base: 'main', title: 'Nothing' });
    await expect(create).rejects.toMatchObject({ status: 422, response: { data: { errors: [{ message: 'No commits between main and same-as-main' }] } } });
  });

  it('shows the pull request on an HTML page with its title escaped', async () => {
    await pushBranch('change/markup');
    const title = '<script>alert("x")</script> & more';
    const body = '## Summary\n\nline 1 <b>line 2</b> [docs](https://docs.example.com/x)\n\n<details><summary>Key changes</summary>\n\n````diff\n+```js\n+x\n+```\n````\n\n</details>\n\n<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">j</a>';
    const { data } = await octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head: 'change/markup', base: 'main', title, body });

    const page = await rawRequest({ path: new URL(data.html_url).pathname });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; more');
    // The body as Markdown: headings, links, collapsed sections and fenced code, sanitized.
    expect(page.body).toContain('<h2>Summary</h2>');
    expect(page.body).toContain('<b>line 2</b> <a href="https://docs.example.com/x" rel="noopener noreferrer nofollow">docs</a>');
    expect(page.body).toMatch(/<details><summary>Key changes<\/summary>\s*<pre><code class="language-diff">\+```js\n\+x\n\+```\n<\/code><\/pre>\s*<\/details>/);
    expect(page.body).not.toContain('<script>');
    expect(page.body).not.toMatch(/onerror|javascript:/);
    // Its commits and its diff, one collapsible section per file.
    expect(page.body).toContain('Commits (1)');
    expect(page.body).toContain('Work on change/markup');
    expect(page.body).toMatch(/<details class="diff-file" open><summary><code>change-markup\.txt \(added\)<\/code> <span class="diff-count added">\+1<\/span>/);
    expect(page.body).toContain('d2h-ins');
    const stylesheet = await rawRequest({ path: '/-/diff2html.min.css' });
    expect(stylesheet.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(stylesheet.body).toContain('.d2h-ins');

    // The same as a compare view and as a raw diff, refs with "/" included; a file at a ref.
    const compare = await rawRequest({ path: '/acme/web-app/compare/main...change/markup' });
    expect(compare.status).toBe(200);
    expect(compare.body).toContain('Work on change/markup');
    const raw = await rawRequest({ path: '/acme/web-app/compare/main...change/markup.diff' });
    expect(raw.body).toMatch(/^diff --git a\/change-markup\.txt b\/change-markup\.txt\n/);
    expect(raw.body).toContain('+change/markup');
    const blob = await rawRequest({ path: '/acme/web-app/blob/change/markup/change-markup.txt' });
    expect(blob.status).toBe(200);
    expect(blob.body).toContain('<pre class="blob">change/markup\n</pre>');
    expect((await rawRequest({ path: '/acme/web-app/blob/main/no-such-file' })).status).toBe(404);
    expect((await rawRequest({ path: '/acme/web-app/compare/--output=x...main' })).status).toBe(404);

    const index = await rawRequest({ path: '/', headers: bearer });
    expect(index.body).toContain(`<a href="/acme/web-app/pull/${data.number}">#${data.number} &#60;script&#62;`);
    expect((await rawRequest({ path: '/acme/web-app/pull/999', headers: bearer })).status).toBe(404);
  });

  it('gives concurrent creates distinct numbers and keeps every record', async () => {
    await pushBranch('race/a');
    await pushBranch('race/b');
    const [a, b] = await Promise.all(
      ['race/a', 'race/b'].map((head) => octokit.rest.pulls.create({ owner: 'acme', repo: 'web-app', head, base: 'main', title: head })),
    );
    expect(a!.data.number).not.toBe(b!.data.number);
    const record = JSON.parse(await fs.readFile(path.join(forge.reposDir, 'acme', 'web-app.pulls.json'), 'utf8'));
    const numbers = record.pulls.map((p: { number: number }) => p.number);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(record.pulls.filter((p: { head: string }) => p.head.startsWith('race/')).map((p: { head: string }) => p.head).sort()).toEqual(['race/a', 'race/b']);
  });

  it('rejects malformed and oversized JSON bodies', async () => {
    const post = (body: string | Buffer) =>
      rawRequest({ method: 'POST', path: '/api/v3/repos/acme/web-app/pulls', headers: { ...bearer, 'Content-Type': 'application/json' }, body });
    const malformed = await post('{"title": ');
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body)).toMatchObject({ message: 'Problems parsing JSON' });
    expect((await post(Buffer.alloc(2 * 1024 * 1024, 0x20))).status).toBe(413);
    const invalid = await post(JSON.stringify({ head: 'race/a', base: 'main' }));
    expect(invalid.status).toBe(422);
    expect(JSON.parse(invalid.body).errors[0].message).toMatch(/^title: /);
  });
});
