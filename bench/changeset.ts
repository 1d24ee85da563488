// Change sets: from a package round's commit to its dependents' checks starting, i.e. the publish of the
// round's prerelease and the dependent's install of it, against a plain warm-cache install of the same
// dependent. With the service's own parts: the publishPackage activity (in the SDK's
// MockActivityEnvironment) against a real local forge and an embedded Verdaccio, then, for the dependent,
// what runChecks does before its first check: install() from activities/install-cache.ts (a miss in round
// 1, restored from the install cache in later rounds) and installChangeSet().
//
// Two cases: the demo (ui-kit → web-app, one package in the tree), and a real tree (~150 packages from the
// npm registry through the embedded registry's uplink, plus a small generated React component package).
// Samples of the three paths alternate, in an order that rotates every iteration, so drift hits all alike.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { DEFAULT_PRICES } from '../activities/agent/pricing';
import { redactorFor } from '../activities/agent/redact';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import { runCommand } from '../activities/commands';
import { checkoutFromCache, remoteFor, repositoryCommandEnv, type ActivityDeps } from '../activities/deps';
import { tokenForgeAccess } from '../activities/forge-access';
import { install } from '../activities/install-cache';
import { Conversations, OutboxChannel } from '../activities/notify';
import { installChangeSet, installedVersions } from '../activities/packages/change-set-install';
import { packFolder, publishTarball } from '../activities/packages/npm';
import { publishPackage } from '../activities/packages/publish-package';
import type { PublishRequest } from '../domain/activity-contracts';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { startEmbeddedRegistry, type EmbeddedRegistry } from '../registry/embedded';
import { publishReleased } from '../registry/seed';
import { loadCatalog } from '../domain/catalog-loader';
import { CatalogRepoSchema, type CatalogRepo } from '../domain/catalog-schema';
import { shortRunId } from '../domain/change-set';
import type { ChangeSetPackage, PublishRecord } from '../domain/contracts';
import { writeTestCatalog } from '../test/helpers/world';
import { goal, type BenchResult } from './report';
import { median, round } from './stats';
import { log, PROJECT_ROOT } from './world';

const exec = promisify(execFile);
const GOAL_RATIO = 1.3;
const UPLINK = 'https://registry.npmjs.org/';
/** The real tree's direct dependencies (≈ 155 packages installed with them): a React app tested with vitest. */
const REAL_TREE: Record<string, string> = {
  react: '^18.3.1',
  'react-dom': '^18.3.1',
  '@testing-library/react': '^16.3.0',
  '@testing-library/dom': '^10.4.0',
  '@testing-library/jest-dom': '^6.6.3',
  '@testing-library/user-event': '^14.6.1',
  jsdom: '^26.1.0',
  vitest: '^3.2.4',
  '@vitejs/plugin-react': '^4.7.0',
};
/** The demo catalog's install command for web-app; the real-tree dependent uses the same. */
const INSTALL = 'npm install --no-package-lock --no-audit --no-fund';
const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
};

export interface ChangesetOptions {
  /** Samples per path in the demo case (default 7) and in the real-tree case (default 4). */
  demoSamples?: number;
  realSamples?: number;
  quick?: boolean;
}

type Path = 'baseline' | 'round1' | 'later';

interface Samples {
  baseline: number[];
  round1: { publish: number[]; install: number[]; changeSet: number[]; total: number[] };
  later: { publish: number[]; install: number[]; changeSet: number[]; total: number[] };
  checkout: number[];
}

/** One package and one dependent on the forge, the registry they use, and the activities' deps. */
interface Case {
  key: 'demo' | 'real';
  pkg: CatalogRepo;
  packageName: string;
  /** The file each round changes (in the package's repository). */
  roundFile: string;
  dependent: CatalogRepo;
  registry: EmbeddedRegistry;
  deps: ActivityDeps;
  runId: string;
  branch: string;
  root: string;
}

interface World {
  root: string;
  forge: Forge;
  forgeToken: string;
}

export async function changesetBenchmark(options: ChangesetOptions = {}): Promise<BenchResult> {
  const demoSamples = options.demoSamples ?? (options.quick ? 3 : 7);
  const realSamples = options.realSamples ?? (options.quick ? 2 : 4);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-changeset-'));
  const forgeToken = randomBytes(16).toString('hex');
  const forge = await startForge({ dataDir: path.join(root, 'forge'), token: forgeToken });
  const world: World = { root, forge, forgeToken };
  const registries: EmbeddedRegistry[] = [];
  const figures: BenchResult['figures'] = {};
  const goals: BenchResult['goals'] = [];
  const notes: string[] = [];
  try {
    for (const key of ['demo', 'real'] as const) {
      const samples = key === 'demo' ? demoSamples : realSamples;
      try {
        const c = key === 'demo' ? await demoCase(world) : await realCase(world);
        registries.push(c.registry);
        const measured = await measure(c, samples);
        Object.assign(figures, measured.figures);
        goals.push(...measured.goals);
        notes.push(...measured.notes);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`changeset ${key}: failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
        figures[`${key}_status`] = `failed: ${message.split('\n')[0]}`;
        goals.push(goal(`${key}: change-set path within ${GOAL_RATIO}× of a plain warm-cache install`, 'not measured', false));
        notes.push(`${key}: the case did not complete: ${message.split('\n').slice(0, 3).join(' ')}`);
      }
    }
    notes.push(
      'Timed from the round\'s commit being on the forge: publishPackage (clone-cache checkout, registry check, pack, publish), then in the dependent\'s fresh checkout install() and installChangeSet(). ' +
        'The dependent\'s checkout (clone cache, same for every path) and Temporal\'s hand-offs are not in any of the three paths; the checkout is reported on its own.',
      'baseline = the catalog\'s install command run directly (no install cache) in a fresh checkout with no node_modules, npm\'s cache and the registry\'s storage warm; ' +
        'round 1 = publish + install() with an empty install cache (npm install, then the entry saved) + installChangeSet; later rounds = publish + install() restored from the install cache + installChangeSet.',
      'side_*: beside the activity, what one npm process costs to start (npm --version) and npm pack / npm publish of the same package as publishPackage runs them; a publish runs both.',
    );
    return { name: 'changeset', figures, goals, notes };
  } finally {
    for (const registry of registries) await registry.close().catch(() => undefined);
    await forge.close();
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** The demo: ui-kit and web-app as the demo catalog has them, on an offline registry (as `npm start` runs it). */
async function demoCase(world: World): Promise<Case> {
  const dir = path.join(world.root, 'demo');
  await fs.mkdir(dir, { recursive: true });
  log('changeset demo: registry (offline), forge, released ui-kit');
  const registry = await startEmbeddedRegistry({ dir: path.join(dir, 'registry') });
  await publishReleased(registry, path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit'));
  await seedRepositories(world.forge, ['ui-kit', 'web-app'].map((name) => ({ owner: 'demo', name, sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', name) })));
  const catalog = await loadCatalog(await writeTestCatalog(dir, world.forge.url));
  const pkg = catalog.repositories.find((r) => r.id === 'ui-kit')!;
  const dependent = catalog.repositories.find((r) => r.id === 'web-app')!;
  if (!pkg.publish) throw new Error('the demo catalog no longer publishes ui-kit');
  return caseOf(world, { key: 'demo', dir, registry, pkg, packageName: pkg.publish.name ?? '@acme/ui-kit', roundFile: 'src/index.js', dependent });
}

/**
 * The real tree: a dependent with a React + testing-library + vitest tree from the npm registry through the
 * embedded registry's uplink, and a small React component package (react as a peer) published as 1.0.0.
 */
async function realCase(world: World): Promise<Case> {
  const dir = path.join(world.root, 'real');
  const sources = path.join(dir, 'sources');
  const packageName = '@cr-bench/link';
  await writeFiles(path.join(sources, 'link'), {
    'package.json': json({ name: packageName, version: '1.0.0', description: 'A link component (benchmark package).', main: 'index.js', files: ['index.js'], peerDependencies: { react: '>=18' }, license: 'MIT' }),
    'index.js': [
      "'use strict';",
      "const React = require('react');",
      '/** A link that opens external addresses in a new tab. */',
      'exports.Link = function Link({ href, external = false, children }) {',
      "  return React.createElement('a', external ? { href, target: '_blank', rel: 'noreferrer' } : { href }, children);",
      '};',
      '',
    ].join('\n'),
  });
  await writeFiles(path.join(sources, 'storefront'), {
    'package.json': json({ name: 'cr-bench-storefront', version: '1.0.0', private: true, dependencies: { ...REAL_TREE, [packageName]: '^1.0.0' } }),
    'src/App.js': "const React = require('react');\nconst { Link } = require('@cr-bench/link');\nexports.App = () => React.createElement(Link, { href: '/cart' }, 'Cart');\n",
  });
  log(`changeset real: registry with uplink ${UPLINK}, forge, released ${packageName}@1.0.0`);
  const registry = await startEmbeddedRegistry({ dir: path.join(dir, 'registry'), uplink: UPLINK });
  await publishReleased(registry, path.join(sources, 'link'));
  await seedRepositories(world.forge, [
    { owner: 'bench', name: 'link', sourceDir: path.join(sources, 'link') },
    { owner: 'bench', name: 'storefront', sourceDir: path.join(sources, 'storefront') },
  ]);
  const repo = (id: string, fields: Record<string, unknown>) =>
    CatalogRepoSchema.parse({ id, url: `${world.forge.url}/bench/${id}.git`, defaultBranch: 'main', description: `${id} (changeset benchmark)`, owners: ['fiona'], ...fields });
  const pkg = repo('link', { role: 'package', install: [], publish: { name: packageName } });
  const dependent = repo('storefront', { role: 'app', dependsOn: ['link'], install: [{ name: 'install', run: INSTALL, timeoutSeconds: 600 }] });
  return caseOf(world, { key: 'real', dir, registry, pkg, packageName, roundFile: 'index.js', dependent });
}

function caseOf(world: World, c: { key: Case['key']; dir: string; registry: EmbeddedRegistry; pkg: CatalogRepo; packageName: string; roundFile: string; dependent: CatalogRepo }): Case {
  const runId = `cr-20261203-${randomBytes(4).toString('hex')}`;
  const dataDir = path.join(c.dir, 'worker');
  const deps: ActivityDeps = {
    loadCatalog: async () => {
      throw new Error('not used by the changeset benchmark');
    },
    dataDir,
    models: new ScriptedModelProvider([], 'none'),
    prices: DEFAULT_PRICES,
    maxTokensPerCall: 4096,
    redact: redactorFor([world.forgeToken, c.registry.token]),
    forge: tokenForgeAccess(world.forgeToken),
    reportProgress: async () => undefined,
    // No agent step runs here, so nothing is recorded.
    spendLedger: { read: async () => null, record: async () => undefined },
    conversations: new Conversations(new OutboxChannel(dataDir)),
    previews: { dir: path.join(c.dir, 'previews'), baseUrl: 'http://127.0.0.1:1', chromiumPath: null, viewport: { width: 1024, height: 640 }, host: null },
    registry: { url: c.registry.url, token: c.registry.token },
    progressIntervalMs: 0,
  };
  return { key: c.key, pkg: c.pkg, packageName: c.packageName, roundFile: c.roundFile, dependent: c.dependent, registry: c.registry, deps, runId, branch: `cr/${shortRunId(runId)}`, root: c.dir };
}

async function measure(c: Case, n: number): Promise<{ figures: BenchResult['figures']; goals: BenchResult['goals']; notes: string[] }> {
  const rounds = await packageRounds(c);
  const remote = await remoteFor(c.deps, c.dependent.url);
  const warmCache = path.join(c.root, 'install-cache-warm');
  let workspaces = 0;
  const samples: Samples = { baseline: [], round1: { publish: [], install: [], changeSet: [], total: [] }, later: { publish: [], install: [], changeSet: [], total: [] }, checkout: [] };

  /** A fresh checkout of the dependent from the clone cache, with a command environment as runChecks builds it. */
  const workspace = async () => {
    const dir = path.join(c.root, 'ws', String(++workspaces));
    const checkout = path.join(dir, 'checkout');
    const home = path.join(dir, 'home');
    await fs.mkdir(home, { recursive: true });
    const t0 = performance.now();
    await checkoutFromCache(c.deps, remote, checkout, 'main');
    const checkoutMs = performance.now() - t0;
    return { dir, checkout, env: repositoryCommandEnv(c.deps, home), checkoutMs };
  };

  const baseline = async (keep = false): Promise<{ ms: number; checkout: string; checkoutMs: number }> => {
    const ws = await workspace();
    const t0 = performance.now();
    for (const command of c.dependent.install) {
      const ran = await runCommand(command.run, { cwd: ws.checkout, timeoutMs: command.timeoutSeconds * 1000, env: ws.env });
      if (ran.exitCode !== 0) throw new Error(`the plain install of ${c.dependent.id} failed (exit ${ran.exitCode}${ran.timedOut ? ', timed out' : ''}):\n${ran.outputTail.slice(-1500)}`);
    }
    const ms = performance.now() - t0;
    const found = (await installedVersions(ws.checkout, [{ name: c.packageName }]))[c.packageName];
    if (!found || found.includes('-cr.')) throw new Error(`the plain install of ${c.dependent.id} has ${c.packageName}@${found ?? 'nothing'}, not the released version`);
    if (!keep) await fs.rm(ws.dir, { recursive: true, force: true });
    return { ms, checkout: ws.checkout, checkoutMs: ws.checkoutMs };
  };

  /** publish → the dependent's install (miss or hit) → installChangeSet, as runChecks does before its checks. */
  const changeSetPath = async (cacheDir: string, expectHit: boolean) => {
    const published = await rounds.publish();
    const ws = await workspace();
    let t0 = performance.now();
    const results = await install(c.dependent, ws.checkout, { cacheDir, env: ws.env });
    const installMs = performance.now() - t0;
    const failed = results.find((r) => r.status !== 'passed');
    if (failed) throw new Error(`install() of ${c.dependent.id} failed: ${failed.outputTail.slice(-1500)}`);
    const hit = results.some((r) => r.fromCache);
    if (hit !== expectHit) throw new Error(`install() of ${c.dependent.id} was ${hit ? 'restored from' : 'not restored from'} the install cache, expected the opposite`);
    const wanted: ChangeSetPackage = { repo: c.pkg.id, name: c.packageName, version: published.record.version!, round: published.record.round, sha: published.record.sha };
    t0 = performance.now();
    const changeSet = await installChangeSet(ws.checkout, [wanted], { env: ws.env });
    const changeSetMs = performance.now() - t0;
    if (changeSet.result?.status !== 'passed') throw new Error(`installChangeSet of ${wanted.name}@${wanted.version} did not pass: ${changeSet.result?.outputTail.slice(-1500) ?? 'nothing was installed'}`);
    if (changeSet.installed[c.packageName] !== wanted.version) throw new Error(`after installChangeSet node_modules has ${c.packageName}@${changeSet.installed[c.packageName]}, not ${wanted.version}`);
    await fs.rm(ws.dir, { recursive: true, force: true });
    return { publishMs: published.ms, installMs, changeSetMs, totalMs: published.ms + installMs + changeSetMs, checkoutMs: ws.checkoutMs };
  };

  // Warm-up, untimed: the first plain install fills the registry's storage (through the uplink) and npm's
  // cache; one round-1 path fills the install cache later rounds restore from (and warms the publish).
  log(`changeset ${c.key}: warming up (registry storage, npm cache, install cache)`);
  const first = await baseline(true);
  const tree = await treeOf(path.join(first.checkout, 'node_modules'));
  await fs.rm(path.join(c.root, 'ws'), { recursive: true, force: true });
  log(`changeset ${c.key}: ${tree.packages} packages installed (${tree.files} files, ${round(tree.bytes / 2 ** 20)} MiB), cold install ${round(first.ms / 1000, 1)} s`);
  await changeSetPath(warmCache, false);

  const order: Path[] = ['baseline', 'round1', 'later'];
  for (let i = 0; i < n; i++) {
    const rotated = [...order.slice(i % 3), ...order.slice(0, i % 3)];
    log(`changeset ${c.key}: iteration ${i + 1}/${n} (${rotated.join(', ')})`);
    for (const kind of rotated) {
      if (kind === 'baseline') {
        const b = await baseline();
        samples.baseline.push(b.ms);
        samples.checkout.push(b.checkoutMs);
        continue;
      }
      // Round 1: an install cache of its own, empty (a dependent's first checks on this worker).
      const fresh = path.join(c.root, `install-cache-empty-${i}`);
      const s = kind === 'round1' ? await changeSetPath(fresh, false) : await changeSetPath(warmCache, true);
      await fs.rm(fresh, { recursive: true, force: true });
      const into = samples[kind];
      into.publish.push(s.publishMs);
      into.install.push(s.installMs);
      into.changeSet.push(s.changeSetMs);
      into.total.push(s.totalMs);
      samples.checkout.push(s.checkoutMs);
    }
  }

  const side = await publishParts(c, rounds.dir);
  const k = c.key;
  const base = median(samples.baseline);
  const r1 = median(samples.round1.total);
  const later = median(samples.later.total);
  const allPublishes = [...samples.round1.publish, ...samples.later.publish];
  const f: BenchResult['figures'] = {
    [`${k}_dependent`]: `${c.dependent.id} (${tree.packages} packages, ${tree.files} files, ${round(tree.bytes / 2 ** 20)} MiB in node_modules); package ${c.packageName}`,
    [`${k}_samples_per_path`]: n,
    [`${k}_baseline_install_median_ms`]: round(base),
    [`${k}_baseline_install_range_ms`]: range(samples.baseline),
    [`${k}_round1_path_median_ms`]: round(r1),
    [`${k}_round1_path_range_ms`]: range(samples.round1.total),
    [`${k}_later_path_median_ms`]: round(later),
    [`${k}_later_path_range_ms`]: range(samples.later.total),
    [`${k}_publish_median_ms`]: round(median(allPublishes)),
    [`${k}_publish_range_ms`]: range(allPublishes),
    [`${k}_install_miss_median_ms`]: round(median(samples.round1.install)),
    [`${k}_install_miss_range_ms`]: range(samples.round1.install),
    [`${k}_install_hit_median_ms`]: round(median(samples.later.install)),
    [`${k}_install_hit_range_ms`]: range(samples.later.install),
    [`${k}_changeset_install_round1_median_ms`]: round(median(samples.round1.changeSet)),
    [`${k}_changeset_install_round1_range_ms`]: range(samples.round1.changeSet),
    [`${k}_changeset_install_later_median_ms`]: round(median(samples.later.changeSet)),
    [`${k}_changeset_install_later_range_ms`]: range(samples.later.changeSet),
    [`${k}_round1_vs_baseline`]: round(r1 / base, 2),
    [`${k}_later_vs_baseline`]: round(later / base, 2),
    [`${k}_dependent_checkout_median_ms`]: round(median(samples.checkout)),
    [`${k}_side_npm_start_median_ms`]: round(median(side.npmStart)),
    [`${k}_side_npm_pack_median_ms`]: round(median(side.pack)),
    [`${k}_side_npm_publish_median_ms`]: round(median(side.publish)),
    [`${k}_cold_first_install_ms`]: round(first.ms),
  };
  const g = [
    goal(`${k}: round 1 (publish + install, cache miss + change set) within ${GOAL_RATIO}× of a plain warm-cache install`, `${round(r1 / base, 2)}× (${round(r1)} vs ${round(base)} ms)`, r1 / base <= GOAL_RATIO),
    goal(`${k}: later rounds (publish + install cache hit + change set) within ${GOAL_RATIO}× of a plain warm-cache install`, `${round(later / base, 2)}× (${round(later)} vs ${round(base)} ms)`, later / base <= GOAL_RATIO),
  ];
  const parts = (p: Samples['round1']) => `publish ${round(median(p.publish))} + install ${round(median(p.install))} + change set ${round(median(p.changeSet))} ms`;
  return {
    figures: f,
    goals: g,
    notes: [`${k}: medians of ${n} samples per path after warm-up; round 1 = ${parts(samples.round1)}; later = ${parts(samples.later)}; ranges are min–max`],
  };
}

/** The package's work branch, one new commit per round, each published by the publishPackage activity. */
async function packageRounds(c: Case): Promise<{ dir: string; publish(): Promise<{ ms: number; record: PublishRecord }> }> {
  const person = path.join(c.root, 'person');
  const url = new URL(c.pkg.url);
  url.username = 'x';
  url.password = (await c.deps.forge.gitToken(c.pkg.url)) ?? '';
  const git = (...args: string[]) => exec('git', ['-C', person, ...args], { env: GIT_ENV }).then(({ stdout }) => stdout.trim());
  await exec('git', ['clone', '--quiet', url.toString(), person], { env: GIT_ENV });
  const baseSha = await git('rev-parse', 'HEAD');
  await git('checkout', '--quiet', '-b', c.branch);
  let roundNo = 0;
  const environment = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  return {
    dir: person,
    async publish() {
      roundNo++;
      await fs.appendFile(path.join(person, c.roundFile), `// change-request round ${roundNo}\n`);
      await git('commit', '--quiet', '-am', `${c.pkg.id}: round ${roundNo}`);
      await git('push', '--quiet', 'origin', `HEAD:refs/heads/${c.branch}`);
      const sha = await git('rev-parse', 'HEAD');
      const request: PublishRequest = { runId: c.runId, repo: c.pkg, branch: c.branch, sha, baseSha, round: roundNo, changeSet: [] };
      const t0 = performance.now();
      const record: PublishRecord = await environment.run(publishPackage, c.deps, request);
      const ms = performance.now() - t0;
      if (record.status !== 'published' || record.reused || !record.version) throw new Error(`publishPackage round ${roundNo} did not publish a new prerelease (${record.status}${record.reused ? ', reused' : ''}):\n${record.output}`);
      return { ms, record };
    },
  };
}

/**
 * Where a publish's time goes, measured beside the activity (which cannot be timed inside): one npm start
 * (`npm --version`), then `npm pack` and `npm publish` of the package as the activity runs them
 * (activities/packages/npm.ts), with versions of their own (`-bench.N`) under a dist-tag of their own.
 */
async function publishParts(c: Case, packageCheckout: string): Promise<{ npmStart: number[]; pack: number[]; publish: number[] }> {
  const scratch = path.join(c.root, 'side');
  const home = path.join(scratch, 'home');
  await fs.mkdir(home, { recursive: true });
  const env = repositoryCommandEnv(c.deps, home);
  const out = { npmStart: [] as number[], pack: [] as number[], publish: [] as number[] };
  for (let i = 0; i < 3; i++) {
    let t0 = performance.now();
    const ran = await runCommand('npm --version', { cwd: scratch, timeoutMs: 60_000, env });
    if (ran.exitCode !== 0) throw new Error(`npm --version failed: ${ran.outputTail}`);
    out.npmStart.push(performance.now() - t0);
    const dir = path.join(scratch, `pkg-${i}`);
    await fs.cp(packageCheckout, dir, { recursive: true, filter: (from) => path.basename(from) !== '.git' });
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { version: string };
    manifest.version = `${manifest.version}-bench.${i}`;
    await fs.writeFile(path.join(dir, 'package.json'), json(manifest));
    t0 = performance.now();
    const tarball = await packFolder(dir, path.join(scratch, `out-${i}`), scratch);
    out.pack.push(performance.now() - t0);
    t0 = performance.now();
    const published = await publishTarball({ url: c.registry.url, token: c.registry.token }, tarball.file, 'bench-side', scratch);
    out.publish.push(performance.now() - t0);
    if (!published.ok) throw new Error(`npm publish of ${tarball.name}@${tarball.version} was refused: ${published.refusal.message}`);
  }
  return out;
}

/** Installed packages (every folder with a package.json under node_modules, nested ones too), files and bytes. */
async function treeOf(nodeModules: string): Promise<{ packages: number; files: number; bytes: number }> {
  let packages = 0;
  const visitModules = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (entry.name.startsWith('.') || !entry.isDirectory()) continue;
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        for (const scoped of await fs.readdir(full, { withFileTypes: true })) if (scoped.isDirectory()) await visitPackage(path.join(full, scoped.name));
      } else await visitPackage(full);
    }
  };
  const visitPackage = async (dir: string): Promise<void> => {
    if (!(await fs.stat(path.join(dir, 'package.json')).then(() => true, () => false))) return;
    packages++;
    await visitModules(path.join(dir, 'node_modules'));
  };
  await visitModules(nodeModules);
  let files = 0;
  let bytes = 0;
  for (const entry of await fs.readdir(nodeModules, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += (await fs.lstat(path.join(entry.parentPath, entry.name))).size;
  }
  return { packages, files, bytes };
}

function range(samples: readonly number[]): string {
  return samples.length ? `${round(Math.min(...samples))}–${round(Math.max(...samples))}` : 'none';
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
}
