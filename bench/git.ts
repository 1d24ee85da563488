// Git: how long an activity waits for a workspace. A real project (the moment package from npm, a few
// hundred files) becomes a repository on the local forge; then, alternating so drift hits all alike:
//   native cold       `git clone --depth 1` with the git CLI
//   isomorphic cold   isomorphic-git shallow clone (what a worker would do without a cache)
//   cache cold        the clone cache with an empty entry (clone + verify + copy)
//   warm, unchanged   the clone cache, commit already cached: no network
//   warm, changed     the clone cache after someone pushed a two-file change: fetches only that
// and a damaged entry (one flipped byte in a pack) is checked to be detected and rebuilt.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CloneCache } from '../activities/git/clone-cache';
import { remoteBranchSha, shallowClone, type Remote } from '../activities/git/repository';
import { startForge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { goal, type BenchResult } from './report';
import { median, round } from './stats';
import { log, PROJECT_ROOT } from './world';

const run = promisify(execFile);
const PACKAGE = 'moment@2.30.1';
const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Bench', GIT_AUTHOR_EMAIL: 'bench@example.com', GIT_COMMITTER_NAME: 'Bench', GIT_COMMITTER_EMAIL: 'bench@example.com' };

/** The npm tarball, downloaded once into .data/bench and unpacked. */
async function realProject(): Promise<string> {
  const store = path.join(PROJECT_ROOT, '.data', 'bench');
  const unpacked = path.join(store, 'moment');
  if (await fs.stat(path.join(unpacked, 'package.json')).then(() => true, () => false)) return unpacked;
  await fs.mkdir(store, { recursive: true });
  log(`downloading ${PACKAGE} from the npm registry`);
  const { stdout } = await run('npm', ['pack', PACKAGE, '--silent', '--pack-destination', store]);
  const tarball = path.join(store, stdout.trim().split('\n').pop()!);
  await fs.mkdir(unpacked, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', unpacked, '--strip-components=1']);
  return unpacked;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  return (await timedReport(work)).ms;
}

async function countFiles(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && !path.relative(dir, path.join(e.parentPath, e.name)).startsWith('.git')).length;
}

export async function gitBenchmark(options: { quick?: boolean } = {}): Promise<BenchResult> {
  const rounds = options.quick ? 3 : 9;
  const source = await realProject();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-git-'));
  const forge = await startForge({ dataDir: path.join(root, 'forge') });
  try {
    await seedRepositories(forge, [{ owner: 'oss', name: 'moment', sourceDir: source }]);
    const remote: Remote = { url: `${forge.url}/oss/moment.git` };
    let n = 0;
    const fresh = (label: string) => path.join(root, 'ws', `${label}-${++n}`);

    // A person's clone for pushing changes between the warm measurements.
    const person = path.join(root, 'person');
    await run('git', ['clone', '--quiet', remote.url, person], { env: GIT_ENV });
    const pushTwoFiles = async (i: number) => {
      await fs.appendFile(path.join(person, 'README.md'), `\nbench change ${i}\n`);
      await fs.appendFile(path.join(person, 'moment.js'), `\n// bench change ${i}\n`);
      await run('git', ['-C', person, 'commit', '--quiet', '-am', `bench change ${i}`], { env: GIT_ENV });
      await run('git', ['-C', person, 'push', '--quiet', 'origin', 'HEAD:main'], { env: GIT_ENV });
    };

    const cache = new CloneCache(path.join(root, 'cache'));
    const head = async () => (await remoteBranchSha(remote, 'main'))!;
    // Warm-up: the first of each kind pays for loading code, not for git.
    await run('git', ['clone', '--quiet', '--depth', '1', remote.url, fresh('warmup-native')], { env: GIT_ENV });
    await shallowClone(remote, fresh('warmup-iso'), 'main', 1);
    await cache.checkout({ remote, branch: 'main', sha: await head(), depth: 1, dir: fresh('warmup-cache') });

    const samples = { native: [] as number[], isomorphic: [] as number[], cacheCold: [] as number[], warmUnchanged: [] as number[], warmChanged: [] as number[] };
    let fetchedWhenChanged = 0;
    let fetchedWhenUnchanged = 0;
    for (let i = 0; i < rounds; i++) {
      log(`git round ${i + 1}/${rounds}`);
      samples.native.push(await timed(() => run('git', ['clone', '--quiet', '--depth', '1', remote.url, fresh('native')], { env: GIT_ENV })));
      samples.isomorphic.push(await timed(() => shallowClone(remote, fresh('iso'), 'main', 1)));
      const coldCache = new CloneCache(path.join(root, `cold-cache-${i}`));
      const sha = await head();
      samples.cacheCold.push(await timed(() => coldCache.checkout({ remote, branch: 'main', sha, depth: 1, dir: fresh('cache-cold') })));
      const unchanged = await timedReport(() => cache.checkout({ remote, branch: 'main', sha, depth: 1, dir: fresh('warm') }));
      samples.warmUnchanged.push(unchanged.ms);
      if (unchanged.report.fetched) fetchedWhenUnchanged++;
      await pushTwoFiles(i);
      const changedSha = await head();
      const changed = await timedReport(() => cache.checkout({ remote, branch: 'main', sha: changedSha, depth: 1, dir: fresh('warm-changed') }));
      samples.warmChanged.push(changed.ms);
      if (changed.report.fetched) fetchedWhenChanged++;
      await fs.rm(path.join(root, 'ws'), { recursive: true, force: true });
    }

    // A damaged entry: one byte of a pack overwritten. It must be rebuilt, not used.
    const entry = (await fs.readdir(cache.root)).find((name) => !name.includes('.'))!;
    const packDir = path.join(cache.root, entry, '.git', 'objects', 'pack');
    const pack = (await fs.readdir(packDir)).find((name) => name.endsWith('.pack'))!;
    const handle = await fs.open(path.join(packDir, pack), 'r+');
    await handle.write(Buffer.from([0xff]), 0, 1, 100);
    await handle.close();
    const current = await head();
    const damaged = await timedReport(() => cache.checkout({ remote, branch: 'main', sha: current, depth: 1, dir: fresh('after-damage') }));
    // And a stale one: the branch moved; the cached commit must not be handed out for the new one.
    await pushTwoFiles(rounds);
    const staleDir = fresh('stale');
    const newest = await head();
    const stale = await cache.checkout({ remote, branch: 'main', sha: newest, depth: 1, dir: staleDir });
    const staleServedNewest = (await run('git', ['-C', staleDir, 'rev-parse', 'HEAD'], { env: GIT_ENV })).stdout.trim() === newest;

    const files = await countFiles(source);
    const packs = (await fs.readdir(packDir)).filter((name) => name.endsWith('.pack'));
    const packBytes = (await Promise.all(packs.map((name) => fs.stat(path.join(packDir, name))))).reduce((sum, stats) => sum + stats.size, 0);
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>;
    const isoRatio = m.isomorphic / m.native;
    const warmRatio = m.warmChanged / m.native;
    const warmUnchangedRatio = m.warmUnchanged / m.native;
    return {
      name: 'git',
      figures: {
        repository: `${PACKAGE} (npm package as one commit), ${files} files`,
        rounds,
        'native git clone --depth 1, median ms': round(m.native),
        'isomorphic-git shallow clone, median ms': round(m.isomorphic),
        'isomorphic / native (cold)': round(isoRatio, 2),
        'clone cache, empty entry, median ms': round(m.cacheCold),
        'clone cache warm, commit cached, median ms': round(m.warmUnchanged),
        'clone cache warm, 2 files pushed since, median ms': round(m.warmChanged),
        'warm (2 files pushed) / native cold': round(warmRatio, 2),
        'warm (commit cached) / native cold': round(warmUnchangedRatio, 2),
        'warm checkouts that fetched when nothing changed': `${fetchedWhenUnchanged}/${rounds}`,
        'warm checkouts that fetched after a push': `${fetchedWhenChanged}/${rounds}`,
        'damaged entry': `${damaged.report.entry}${damaged.report.rebuiltBecause ? ` (${damaged.report.rebuiltBecause})` : ''}, ${round(damaged.ms)} ms`,
        'stale entry (branch moved)': `${stale.entry}, fetched ${stale.fetched}, served the new commit ${staleServedNewest}`,
        'packs in the cache entry at the end, KiB': round(packBytes / 1024),
      },
      goals: [
        goal('isomorphic-git cold shallow clone within 2× of git clone --depth 1', `${round(isoRatio, 2)}×`, isoRatio <= 2),
        goal('warm workspace (2 files changed upstream) under 0.3× of a cold git clone --depth 1', `${round(warmRatio, 2)}×`, warmRatio < 0.3),
        goal('warm workspace (commit already cached) under 0.3× of a cold git clone --depth 1', `${round(warmUnchangedRatio, 2)}×`, warmUnchangedRatio < 0.3),
        goal('a damaged cache entry is detected and rebuilt, never used', damaged.report.entry, damaged.report.entry === 'rebuilt'),
        goal('a stale entry fetches the new commit instead of serving the old one', staleServedNewest && stale.fetched ? 'fetched and served' : 'served stale', staleServedNewest && stale.fetched),
      ],
      notes: [
        'Medians of alternating rounds against the local forge (git http-backend over HTTP on loopback), so the network is nearly free and the figures are dominated by pack building, indexing and writing files.',
        'A warm checkout verifies the entry (manifest, HEAD, SHA-1 of every pack, a stat-only work-tree comparison), fetches only when the commit is missing, rewrites only the files that differ and copies the tree with `cp -a`.',
      ],
    };
  } finally {
    await forge.close();
    await fs.rm(root, { recursive: true, force: true });
  }
}

async function timedReport<T>(work: () => Promise<T>): Promise<{ ms: number; report: T }> {
  const started = performance.now();
  const report = await work();
  return { ms: performance.now() - started, report };
}
