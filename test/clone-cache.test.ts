// The per-worker clone cache against a real forge: warm checkouts fetch only what changed (or nothing),
// pushed commits are adopted, and a damaged, interrupted or tampered entry is detected and rebuilt.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import { CloneCache, verifyEntry } from '../activities/git/clone-cache';
import { commitAll, push, remoteBranchSha, type Remote } from '../activities/git/repository';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { PROJECT_ROOT } from './helpers/world';

const run = promisify(execFile);
let forge: Forge;
let root: string;
let remote: Remote;
let counter = 0;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'clone-cache-'));
  forge = await startForge({ dataDir: path.join(root, 'forge') });
  await seedRepositories(forge, [{ owner: 'demo', name: 'ui-kit', sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit') }]);
  remote = { url: `${forge.url}/demo/ui-kit.git` };
});

afterAll(async () => {
  await forge.close();
  await fs.rm(root, { recursive: true, force: true });
});

const workspace = () => path.join(root, 'workspaces', `ws-${++counter}`);

/** Pushes a commit to main from an independent clone made with the real git CLI, as a person would. */
async function pushToMain(files: Record<string, string | null>): Promise<string> {
  const dir = path.join(root, `person-${++counter}`);
  await run('git', ['clone', '--quiet', '--depth', '1', remote.url, dir]);
  for (const [file, content] of Object.entries(files)) {
    if (content === null) await fs.rm(path.join(dir, file));
    else await fs.writeFile(path.join(dir, file), content);
  }
  const env = { ...process.env, GIT_AUTHOR_NAME: 'P', GIT_AUTHOR_EMAIL: 'p@example.com', GIT_COMMITTER_NAME: 'P', GIT_COMMITTER_EMAIL: 'p@example.com' };
  await run('git', ['-C', dir, 'add', '--all'], { env });
  await run('git', ['-C', dir, 'commit', '--quiet', '-m', 'a person changes main'], { env });
  await run('git', ['-C', dir, 'push', '--quiet', 'origin', 'main'], { env });
  return (await run('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
}

async function isClean(dir: string): Promise<boolean> {
  const matrix = await git.statusMatrix({ fs, dir });
  return matrix.every(([, head, workdir, stage]) => head === 1 && workdir === 1 && stage === 1);
}

/** The entry folder of the only repository this file caches. */
async function entryOf(cache: CloneCache): Promise<string> {
  const names = await fs.readdir(cache.root);
  const entry = names.find((n) => !n.includes('.'));
  return path.join(cache.root, entry!);
}

test('a warm checkout of a known commit does not contact the remote; a new commit fetches only that', async () => {
  const cache = new CloneCache(path.join(root, 'cache-warm'));
  const sha = (await remoteBranchSha(remote, 'main'))!;
  const first = workspace();
  expect(await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: first })).toEqual({ entry: 'cold', fetched: true });
  const second = workspace();
  expect(await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: second })).toEqual({ entry: 'warm', fetched: false });
  expect(await git.resolveRef({ fs, dir: second, ref: 'HEAD' })).toBe(sha);
  expect(await git.currentBranch({ fs, dir: second })).toBe('main');
  expect(await isClean(second)).toBe(true);

  // A workspace is a copy: changing it leaves the entry intact.
  await fs.writeFile(path.join(second, 'README.md'), 'scribbled over by an agent');
  expect(await verifyEntry(await entryOf(cache), remote.url)).toBeNull();

  const newer = await pushToMain({ 'README.md': '# ui-kit\n\nchanged on main\n', 'NEW.md': 'added\n', 'package.json': null });
  const third = workspace();
  expect(await cache.checkout({ remote, branch: 'main', sha: newer, depth: 1, dir: third })).toEqual({ entry: 'warm', fetched: true });
  expect(await fs.readFile(path.join(third, 'README.md'), 'utf8')).toContain('changed on main');
  expect(await fs.readFile(path.join(third, 'NEW.md'), 'utf8')).toBe('added\n');
  await expect(fs.stat(path.join(third, 'package.json'))).rejects.toThrow();
  expect(await isClean(third)).toBe(true);

  // The older commit is still there: going back needs no fetch and restores the old files.
  const back = workspace();
  expect(await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: back })).toEqual({ entry: 'warm', fetched: false });
  expect(await fs.readFile(path.join(back, 'package.json'), 'utf8')).toContain('"name"');
  await expect(fs.stat(path.join(back, 'NEW.md'))).rejects.toThrow();
  expect(await isClean(back)).toBe(true);
});

test('a commit pushed from a cached workspace is adopted, so the next checkout of it fetches nothing', async () => {
  const cache = new CloneCache(path.join(root, 'cache-adopt'));
  const dir = workspace();
  await cache.checkout({ remote, branch: 'main', sha: (await remoteBranchSha(remote, 'main'))!, depth: 1, dir });
  await git.branch({ fs, dir, ref: 'change-request/adopt', checkout: true });
  await fs.writeFile(path.join(dir, 'ADOPTED.md'), 'made by the agent\n');
  const commit = (await commitAll(dir, 'agent commit'))!;
  await push(remote, dir, 'change-request/adopt');
  expect(await cache.adoptPushed(remote, dir, 'change-request/adopt', commit.sha)).toBe(true);

  const checks = workspace();
  expect(await cache.checkout({ remote, branch: 'change-request/adopt', sha: commit.sha, depth: 1, dir: checks })).toEqual({ entry: 'warm', fetched: false });
  expect(await fs.readFile(path.join(checks, 'ADOPTED.md'), 'utf8')).toBe('made by the agent\n');
  expect(await git.currentBranch({ fs, dir: checks })).toBe('change-request/adopt');
  expect(await isClean(checks)).toBe(true);
});

describe('an entry that cannot be trusted is rebuilt, never used', () => {
  let cache: CloneCache;
  let sha: string;

  beforeEach(async () => {
    cache = new CloneCache(path.join(root, `cache-damage-${++counter}`));
    sha = (await remoteBranchSha(remote, 'main'))!;
    await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: workspace() });
  });

  async function checkoutAfterDamage(): Promise<{ report: Awaited<ReturnType<CloneCache['checkout']>>; dir: string }> {
    const dir = workspace();
    const report = await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir });
    expect(await git.resolveRef({ fs, dir, ref: 'HEAD' })).toBe(sha);
    expect(await isClean(dir)).toBe(true);
    expect(await verifyEntry(await entryOf(cache), remote.url)).toBeNull();
    return { report, dir };
  }

  test('a pack whose bytes changed', async () => {
    const packDir = path.join(await entryOf(cache), '.git', 'objects', 'pack');
    const pack = (await fs.readdir(packDir)).find((n) => n.endsWith('.pack'))!;
    const handle = await fs.open(path.join(packDir, pack), 'r+');
    await handle.write(Buffer.from('garbage!'), 0, 8, 40);
    await handle.close();
    const { report } = await checkoutAfterDamage();
    expect(report.entry).toBe('rebuilt');
    expect(report.rebuiltBecause).toMatch(/fails its checksum/);
  });

  test('a truncated pack', async () => {
    const packDir = path.join(await entryOf(cache), '.git', 'objects', 'pack');
    const pack = (await fs.readdir(packDir)).find((n) => n.endsWith('.pack'))!;
    await fs.truncate(path.join(packDir, pack), 100);
    const { report } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/fails its checksum|truncated/) });
  });

  test('a pack index without its pack', async () => {
    const packDir = path.join(await entryOf(cache), '.git', 'objects', 'pack');
    const pack = (await fs.readdir(packDir)).find((n) => n.endsWith('.pack'))!;
    await fs.rm(path.join(packDir, pack));
    const { report } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/has no pack/) });
  });

  test('an update that never finished (no manifest)', async () => {
    await fs.rm(`${await entryOf(cache)}.json`);
    const { report } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/no manifest/) });
  });

  test('a manifest that is not JSON', async () => {
    await fs.writeFile(`${await entryOf(cache)}.json`, '{"version":');
    const { report } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/unreadable/) });
  });

  test('a HEAD that moved away from what the manifest records', async () => {
    const entry = await entryOf(cache);
    await fs.writeFile(path.join(entry, '.git', 'HEAD'), `${'0'.repeat(40)}\n`);
    const { report } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/HEAD is/) });
  });

  test('a file of the work tree changed behind its back', async () => {
    const entry = await entryOf(cache);
    await fs.appendFile(path.join(entry, 'README.md'), '\ntampered\n');
    const { report, dir } = await checkoutAfterDamage();
    expect(report).toMatchObject({ entry: 'rebuilt', rebuiltBecause: expect.stringMatching(/work tree was changed \(README\.md\)/) });
    expect(await fs.readFile(path.join(dir, 'README.md'), 'utf8')).not.toContain('tampered');
  });
});

test('concurrent checkouts of one repository: one uses the entry, the others clone directly, all get the right tree', async () => {
  const cache = new CloneCache(path.join(root, 'cache-concurrent'));
  const sha = (await remoteBranchSha(remote, 'main'))!;
  const dirs = Array.from({ length: 4 }, () => workspace());
  const reports = await Promise.all(dirs.map((dir) => cache.checkout({ remote, branch: 'main', sha, depth: 1, dir })));
  expect(reports.map((r) => r.entry).sort()).toEqual(['bypassed', 'bypassed', 'bypassed', 'cold']);
  for (const dir of dirs) {
    expect(await isClean(dir)).toBe(true);
    expect(await git.resolveRef({ fs, dir, ref: 'HEAD' })).toBe(sha);
    expect(await git.currentBranch({ fs, dir })).toBe('main');
  }
  // Afterwards the entry serves again.
  expect(await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: workspace() })).toEqual({ entry: 'warm', fetched: false });
});

test('a commit that is not on the branch is an error, and the entry stays usable', async () => {
  const cache = new CloneCache(path.join(root, 'cache-missing'));
  const sha = (await remoteBranchSha(remote, 'main'))!;
  await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: workspace() });
  await expect(cache.checkout({ remote, branch: 'main', sha: 'f'.repeat(40), depth: 1, dir: workspace() })).rejects.toThrow(/is not on main/);
  expect(await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: workspace() })).toEqual({ entry: 'warm', fetched: false });
});

test('a branch name that could leave refs/heads is refused before anything is written', async () => {
  const cache = new CloneCache(path.join(root, 'cache-names'));
  const sha = (await remoteBranchSha(remote, 'main'))!;
  const dir = workspace();
  await cache.checkout({ remote, branch: 'main', sha, depth: 1, dir });
  for (const branch of ['../../escape', 'a/../b', '/abs', 'x.lock', 'with space']) {
    await expect(cache.checkout({ remote, branch, sha, depth: 1, dir: workspace() })).rejects.toThrow(/not a valid branch name|is not on/);
  }
  await expect(fs.stat(path.join(dir, '..', '..', 'escape'))).rejects.toThrow();
});
