// In-flight packages with real parts only: an embedded Verdaccio, the npm CLI, the git forge and the
// activities as a worker runs them (in the SDK's MockActivityEnvironment, for heartbeats and cancellation).
// No Temporal server: these are the activities alone.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { DEFAULT_PRICES } from '../activities/agent/pricing';
import { redactorFor } from '../activities/agent/redact';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import { commandEnvironment } from '../activities/commands';
import { checkoutFromCache, installCacheDir, remoteFor, type ActivityDeps } from '../activities/deps';
import { tokenForgeAccess } from '../activities/forge-access';
import { install } from '../activities/install-cache';
import { Conversations, OutboxChannel } from '../activities/notify';
import { bumpDependencyRanges } from '../activities/packages/bump-ranges';
import { installChangeSet } from '../activities/packages/change-set-install';
import { addDistTag, packFolder, publishTarball, readPackument, RegistryUnavailableError } from '../activities/packages/npm';
import { publishPackage } from '../activities/packages/publish-package';
import type { BumpRangesRequest, BumpRangesResult, PublishRequest } from '../domain/activity-contracts';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { startEmbeddedRegistry, type EmbeddedRegistry } from '../registry/embedded';
import { publishReleased } from '../registry/seed';
import { CatalogRepoSchema, type CatalogRepo } from '../domain/catalog-schema';
import type { ChangeSetPackage, PublishRecord } from '../domain/contracts';
import { PROJECT_ROOT } from './helpers/world';

const exec = promisify(execFile);
const RUN_ID = 'cr-registry-test-ab12cd34';
const SHORT = 'ab12cd34';
const BRANCH = `cr/${SHORT}`;
const TOKENS_PRERELEASE = `1.0.0-cr.${SHORT}.1`;

let root: string;
let forge: Forge;
let forgeToken: string;
let registry: EmbeddedRegistry;
let deps: ActivityDeps;
let uiKit: CatalogRepo;
let webApp: CatalogRepo;
let uiKitMain: string;
let uiKitRound1: string;
let webAppPackageJson: string;
let webAppLock: string;
const timings: string[] = [];

const tokensChangeSet: ChangeSetPackage = { repo: 'tokens', name: '@acme/tokens', version: TOKENS_PRERELEASE, round: 1, sha: 'f'.repeat(40) };

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-registry-'));
  registry = await timed('registry start (first, creates the service user)', () => startEmbeddedRegistry({ dir: path.join(root, 'registry') }));
  forgeToken = randomBytes(16).toString('hex');
  forge = await startForge({ dataDir: path.join(root, 'forge'), token: forgeToken });

  // Released packages, as the team published them before this run.
  const uiKitSource = await sourceFolder('ui-kit', path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit'), (manifest) => {
    delete manifest.private;
  });
  const tokensSource = path.join(root, 'sources', 'tokens');
  await writeFiles(tokensSource, { 'package.json': `${JSON.stringify({ name: '@acme/tokens', version: '1.0.0', main: 'index.js' }, null, 2)}\n`, 'index.js': 'exports.brand = "#0a6";\n' });
  await timed('publishReleased ui-kit 1.4.0', () => publishReleased(registry, uiKitSource));
  await publishReleased(registry, tokensSource);
  // The tokens package's own in-flight prerelease, which ui-kit's round depends on.
  const tokensPrerelease = await sourceFolder('tokens-prerelease', tokensSource, (manifest) => {
    manifest.version = TOKENS_PRERELEASE;
  });
  await publishReleased(registry, tokensPrerelease);

  // A dependent that installs ui-kit by version from the registry, with 4-space indentation and a lock file.
  const webAppSource = path.join(root, 'sources', 'web-app');
  await writeFiles(webAppSource, {
    'package.json': `${JSON.stringify({ name: '@acme/web-app', version: '2.3.0', private: true, dependencies: { '@acme/ui-kit': '^1.4.0' } }, null, 4)}\n`,
    'index.js': 'import { formatPrice } from "@acme/ui-kit";\nconsole.log(formatPrice(1250));\n',
  });
  await exec('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--no-update-notifier', '--registry', registry.url], { cwd: webAppSource, env: commandEnvironment(path.join(root, 'home')) });
  webAppPackageJson = await fs.readFile(path.join(webAppSource, 'package.json'), 'utf8');
  webAppLock = await fs.readFile(path.join(webAppSource, 'package-lock.json'), 'utf8');

  await seedRepositories(forge, [
    { owner: 'demo', name: 'ui-kit', sourceDir: uiKitSource },
    { owner: 'demo', name: 'web-app', sourceDir: webAppSource },
  ]);
  uiKit = catalogRepo('ui-kit', 'package', { install: [{ name: 'install', run: 'npm install --no-audit --no-fund', timeoutSeconds: 120 }], publish: { name: '@acme/ui-kit' } });
  webApp = catalogRepo('web-app', 'app', { dependsOn: ['ui-kit'], install: [{ name: 'install', run: 'npm ci --no-audit --no-fund', timeoutSeconds: 120 }] });
  deps = activityDeps(registry);

  // ui-kit's round 1: a new export, and a dependency on the in-flight tokens package.
  uiKitMain = await headOf('ui-kit', 'main');
  const manifest = JSON.parse(await fs.readFile(path.join(uiKitSource, 'package.json'), 'utf8')) as Record<string, unknown>;
  manifest.dependencies = { '@acme/tokens': '^1.0.0' };
  const index = await fs.readFile(path.join(uiKitSource, 'src', 'index.js'), 'utf8');
  uiKitRound1 = await pushCommit('ui-kit', BRANCH, { 'package.json': `${JSON.stringify(manifest, null, 2)}\n`, 'src/index.js': `${index}export const CURRENCY_CODES = ['USD', 'EUR'];\n` }, 'ui-kit: currency codes (round 1)');
});

afterAll(async () => {
  if (timings.length > 0) process.stdout.write(`\nregistry timings:\n${timings.join('\n')}\n`);
  await registry?.close();
  await forge?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('the embedded registry', () => {
  test('a restart on the same folder keeps the service user, its tokens and the published packages, on the same port', async () => {
    const dir = path.join(root, 'restart');
    const first = await startEmbeddedRegistry({ dir });
    const port = new URL(first.url).port;
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const source = path.join(root, 'sources', 'restart-pkg');
    await writeFiles(source, { 'package.json': `${JSON.stringify({ name: 'restart-pkg', version: '0.1.0' })}\n`, 'index.js': 'module.exports = 1;\n' });
    expect(await publishReleased(first, source)).toEqual({ name: 'restart-pkg', version: '0.1.0', published: true });
    await first.close();

    // The port is free again (close really released it) and the same folder carries on.
    const second = await timed('registry restart (same folder, same port)', () => startEmbeddedRegistry({ dir, port: Number(port) }));
    try {
      expect(second.url).toBe(first.url);
      expect(await whoami(second.url, first.token)).toBe('change-requests');
      expect(await whoami(second.url, second.token)).toBe('change-requests');
      expect((await readPackument(second, 'restart-pkg'))?.versions['0.1.0']).toBeDefined();
      expect(await publishReleased(second, source)).toEqual({ name: 'restart-pkg', version: '0.1.0', published: false });
      expect((await fs.stat(path.join(dir, 'service-user.json'))).mode & 0o777).toBe(0o600);
      // Reads are open; publishing needs the service user's token.
      const scratch = await fs.mkdtemp(path.join(root, 'anonymous-'));
      await writeFiles(source, { 'package.json': `${JSON.stringify({ name: 'restart-pkg', version: '0.2.0' })}\n` });
      const tarball = await packFolder(source, scratch, scratch);
      const anonymous = await publishTarball({ url: second.url, token: 'not-a-token' }, tarball.file, 'latest', scratch);
      expect(anonymous).toMatchObject({ ok: false, refusal: { code: 'E401' } });
      expect(Object.keys((await readPackument(second, 'restart-pkg'))!.versions)).toEqual(['0.1.0']);
      // And a version that is there is a conflict, however npm words it.
      await writeFiles(source, { 'package.json': `${JSON.stringify({ name: 'restart-pkg', version: '0.1.0' })}\n` });
      const again = await publishTarball(second, (await packFolder(source, scratch, scratch)).file, 'latest', scratch);
      expect(again).toMatchObject({ ok: false, refusal: { code: 'E409' } });
      const registration = await fetch(new URL('-/user/org.couchdb.user:mallory', second.url), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mallory', password: 'mallory-password' }) });
      expect(registration.status).toBe(409);
    } finally {
      await second.close();
    }
    await expect(fetch(second.url)).rejects.toThrow();
  });

  test('with an uplink, packages not published here come through it and stay cached when it goes away', async () => {
    const upstream = await startEmbeddedRegistry({ dir: path.join(root, 'upstream') });
    const source = path.join(root, 'sources', 'upstream-only');
    await writeFiles(source, { 'package.json': `${JSON.stringify({ name: 'upstream-only', version: '3.1.0' })}\n` });
    await publishReleased(upstream, source);
    const proxy = await startEmbeddedRegistry({ dir: path.join(root, 'proxy'), uplink: upstream.url });
    try {
      expect((await readPackument(proxy, 'upstream-only'))?.['dist-tags'].latest).toBe('3.1.0');
      const tarball = `${proxy.url}upstream-only/-/upstream-only-3.1.0.tgz`;
      const first = await fetch(tarball);
      expect(first.status).toBe(200);
      await first.arrayBuffer();
      // Verdaccio writes the proxied tarball to its storage as it streams it: wait until it is there.
      const cached = path.join(root, 'proxy', 'storage', 'upstream-only', 'upstream-only-3.1.0.tgz');
      for (let i = 0; i < 100 && !(await fs.stat(cached).then((s) => s.size > 0, () => false)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      await upstream.close();
      expect((await fetch(tarball)).status).toBe(200);
      expect(await fs.readdir(path.join(root, 'proxy', 'storage', 'upstream-only'))).toContain('upstream-only-3.1.0.tgz');
    } finally {
      await proxy.close();
      await upstream.close().catch(() => undefined);
    }
  });

  test('the released ui-kit is published once: publishReleased is idempotent', async () => {
    const source = path.join(root, 'sources', 'ui-kit');
    expect(await publishReleased(registry, source)).toEqual({ name: '@acme/ui-kit', version: '1.4.0', published: false });
    const packument = await readPackument(registry, '@acme/ui-kit');
    expect(packument?.['dist-tags'].latest).toBe('1.4.0');
  });
});

describe('publishPackage', () => {
  const request = (overrides: Partial<PublishRequest> = {}): PublishRequest => ({
    runId: RUN_ID,
    repo: uiKit,
    branch: BRANCH,
    sha: uiKitRound1,
    baseSha: uiKitMain,
    round: 1,
    changeSet: [tokensChangeSet],
    ...overrides,
  });

  test('publishes the round as the run prerelease with its dist-tag, commit and pinned in-flight dependencies', async () => {
    const record = await timed('publishPackage (checkout, install, change set, pack, publish)', () => publish(deps, request()));
    expect(record).toMatchObject({
      repo: 'ui-kit',
      round: 1,
      sha: uiKitRound1,
      name: '@acme/ui-kit',
      version: `1.4.0-cr.${SHORT}.1`,
      distTag: `cr-${SHORT}`,
      releasedVersion: '1.4.0',
      headVersion: '1.4.0',
      status: 'published',
      reused: false,
    });
    expect(JSON.stringify(record)).not.toContain(registry.token);
    const packument = (await readPackument(registry, '@acme/ui-kit'))!;
    const published = packument.versions[`1.4.0-cr.${SHORT}.1`]!;
    expect(published.gitHead).toBe(uiKitRound1);
    expect(published.dependencies).toEqual({ '@acme/tokens': TOKENS_PRERELEASE });
    expect(packument['dist-tags'][`cr-${SHORT}`]).toBe(`1.4.0-cr.${SHORT}.1`);
    expect(packument['dist-tags'].latest).toBe('1.4.0');
  });

  test('a retried publish of the same commit publishes nothing, reuses the version and puts its dist-tag back', async () => {
    // As if the attempt died between publishing and tagging: the run's tag is somewhere else.
    const scratch = await fs.mkdtemp(path.join(root, 'retag-'));
    expect(await addDistTag(registry, '@acme/ui-kit', '1.4.0', `cr-${SHORT}`, scratch)).toMatchObject({ ok: true });
    const record = await timed('publishPackage retried (registry check only)', () => publish(deps, request()));
    expect(record).toMatchObject({ status: 'published', reused: true, version: `1.4.0-cr.${SHORT}.1` });
    const packument = (await readPackument(registry, '@acme/ui-kit'))!;
    expect(Object.keys(packument.versions).filter((v) => v.includes(`-cr.${SHORT}.`))).toEqual([`1.4.0-cr.${SHORT}.1`]);
    expect(packument['dist-tags'][`cr-${SHORT}`]).toBe(`1.4.0-cr.${SHORT}.1`);
  });

  test('the same version from another commit is refused and reported, and the registry keeps the first', async () => {
    const other = await pushCommit('ui-kit', BRANCH, { 'CHANGELOG.md': '# Changelog\n\n- currency codes\n' }, 'ui-kit: changelog');
    const record = await publish(deps, request({ sha: other }));
    expect(record).toMatchObject({ status: 'failed', reused: false, version: `1.4.0-cr.${SHORT}.1`, sha: other });
    expect(record.output).toMatch(/already exists in the registry for another commit/);
    expect((await readPackument(registry, '@acme/ui-kit'))!.versions[`1.4.0-cr.${SHORT}.1`]!.gitHead).toBe(uiKitRound1);
  });

  test('a build that fails is reported with its output and publishes nothing', async () => {
    const failing = { ...uiKit, publish: { ...uiKit.publish!, build: { name: 'build', run: 'echo compiling; echo "src/index.js(3,1): error TS2322: broken" >&2; exit 2', timeoutSeconds: 30 } } };
    const record = await publish(deps, request({ repo: failing, round: 2 }));
    expect(record).toMatchObject({ status: 'failed', reused: false, version: `1.4.0-cr.${SHORT}.2` });
    expect(record.output).toMatch(/^Not published: the build "build" failed/);
    expect(record.output).toContain('error TS2322: broken');
    expect(record.output).toContain('exit 2');
    expect((await readPackument(registry, '@acme/ui-kit'))!.versions[`1.4.0-cr.${SHORT}.2`]).toBeUndefined();
  });

  test('a registry that is down makes the activity throw, so Temporal retries it', async () => {
    const down = activityDeps({ url: await closedPortUrl(), token: registry.token });
    const attempt = publish(down, request({ round: 3 }));
    await expect(attempt).rejects.toBeInstanceOf(RegistryUnavailableError);
    await expect(attempt).rejects.toThrow(/cannot be reached/);
  });

  test('without a registry the record says so', async () => {
    const record = await publish(activityDeps(null), request({ round: 4 }));
    expect(record).toMatchObject({ status: 'failed', version: null });
    expect(record.output).toMatch(/No npm registry is configured/);
  });
});

describe('installChangeSet', () => {
  const uiKitPrerelease: ChangeSetPackage = { repo: 'ui-kit', name: '@acme/ui-kit', version: `1.4.0-cr.${SHORT}.1`, round: 1, sha: '' };

  async function installedCheckout(label: string): Promise<{ checkout: string; env: NodeJS.ProcessEnv }> {
    const dir = await fs.mkdtemp(path.join(root, `${label}-`));
    const checkout = path.join(dir, 'checkout');
    await checkoutFromCache(deps, await remoteFor(deps, webApp.url), checkout, 'main');
    const env = commandEnvironment(path.join(dir, 'home'), { npm_config_registry: registry.url, npm_config_cache: path.join(root, 'npm-cache') });
    const results = await install(webApp, checkout, { cacheDir: installCacheDir(deps), env });
    expect(results.map((r) => r.status)).toEqual(['passed']);
    return { checkout, env };
  }

  test('installs the prerelease over the released version and writes nothing the repository tracks', async () => {
    const { checkout, env } = await installedCheckout('change-set');
    expect(JSON.parse(await fs.readFile(path.join(checkout, 'node_modules', '@acme', 'ui-kit', 'package.json'), 'utf8')).version).toBe('1.4.0');
    uiKitPrerelease.sha = uiKitRound1;

    const { result, installed } = await timed('installChangeSet (one prerelease and its pinned dependency)', () => installChangeSet(checkout, [uiKitPrerelease], { env }));
    expect(result).toMatchObject({ kind: 'install', name: 'change set', status: 'passed', exitCode: 0 });
    expect(result!.command).toContain(`'@acme/ui-kit@1.4.0-cr.${SHORT}.1'`);
    expect(installed).toEqual({ '@acme/ui-kit': `1.4.0-cr.${SHORT}.1` });
    expect(await fs.readFile(path.join(checkout, 'node_modules', '@acme', 'ui-kit', 'src', 'index.js'), 'utf8')).toContain('CURRENCY_CODES');
    // Its own in-flight dependency came along, pinned by the publish.
    expect(JSON.parse(await fs.readFile(path.join(checkout, 'node_modules', '@acme', 'tokens', 'package.json'), 'utf8')).version).toBe(TOKENS_PRERELEASE);
    expect(await fs.readFile(path.join(checkout, 'package.json'), 'utf8')).toBe(webAppPackageJson);
    expect(await fs.readFile(path.join(checkout, 'package-lock.json'), 'utf8')).toBe(webAppLock);
  });

  test('a version the registry does not have fails, naming the package and the version', async () => {
    const { checkout, env } = await installedCheckout('change-set-missing');
    const missing = { ...uiKitPrerelease, version: `1.4.0-cr.${SHORT}.9` };
    const { result, installed } = await installChangeSet(checkout, [missing], { env });
    expect(result?.status).toBe('failed');
    expect(result!.outputTail.split('\n')[0]).toBe(`Could not install @acme/ui-kit@1.4.0-cr.${SHORT}.9 (ui-kit round 1): the registry ${registry.url} has no version 1.4.0-cr.${SHORT}.9 of @acme/ui-kit (it has 1.4.0, 1.4.0-cr.${SHORT}.1).`);
    expect(result!.outputTail).toMatch(/ETARGET/);
    expect(installed).toEqual({ '@acme/ui-kit': '1.4.0' });
    expect(await fs.readFile(path.join(checkout, 'package.json'), 'utf8')).toBe(webAppPackageJson);
  });

  test('packages the checkout does not depend on are not installed', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'unlisted-'));
    await writeFiles(dir, { 'package.json': '{"name":"unrelated","version":"1.0.0"}\n' });
    const outcome = await installChangeSet(dir, [uiKitPrerelease], { env: commandEnvironment(dir, { npm_config_registry: registry.url }) });
    expect(outcome).toEqual({ result: null, installed: { '@acme/ui-kit': null } });
  });
});

describe('bumpDependencyRanges', () => {
  test('commits the planned ranges once, keeping the file as it was written, and a second call changes nothing', async () => {
    const { stdout: mainHead } = await exec('git', ['-C', await cloneBranch('web-app', 'main'), 'rev-parse', 'HEAD']);
    await pushCommit('web-app', BRANCH, { 'index.js': 'import { formatPrice, CURRENCY_CODES } from "@acme/ui-kit";\nconsole.log(formatPrice(1250), CURRENCY_CODES);\n' }, 'web-app: currency codes (round 1)');
    const request: BumpRangesRequest = { runId: RUN_ID, requester: 'fiona', repo: webApp, branch: BRANCH, baseSha: mainHead.trim(), round: 1, ranges: [{ name: '@acme/ui-kit', range: '^1.5.0' }, { name: '@acme/absent', range: '^2.0.0' }] };

    const first = await timed('bumpDependencyRanges (checkout, commit, push)', () => bump(request));
    expect(first.commit).not.toBeNull();
    expect(first.commit!.message).toBe('web-app: depend on @acme/ui-kit ^1.5.0 (planned release)');
    expect(first.commit!.files).toEqual(['package-lock.json', 'package.json']);
    expect(first.notListed).toEqual(['@acme/absent']);
    expect(first.headSha).toBe(first.commit!.sha);
    // The whole change of the branch against its base, the round's edit included.
    expect(first.files.map((f) => f.path).sort()).toEqual(['index.js', 'package-lock.json', 'package.json']);

    const clone = await cloneBranch('web-app', BRANCH);
    expect(await fs.readFile(path.join(clone, 'package.json'), 'utf8')).toBe(webAppPackageJson.replace('"^1.4.0"', '"^1.5.0"'));
    const lock = JSON.parse(await fs.readFile(path.join(clone, 'package-lock.json'), 'utf8'));
    expect(lock.packages[''].dependencies).toEqual({ '@acme/ui-kit': '^1.5.0' });
    expect(lock.packages['node_modules/@acme/ui-kit'].version).toBe('1.4.0');
    const { stdout: body } = await exec('git', ['-C', clone, 'log', '-1', '--format=%B']);
    expect(body).toContain(`Change-Request-Run: ${RUN_ID}`);
    expect(body).toContain('Requested-by: fiona');
    expect(body).toContain(`Change-Request-Round: ${RUN_ID}/1-release-plan`);

    const second = await bump(request);
    expect(second).toMatchObject({ commit: null, headSha: first.headSha, notListed: ['@acme/absent'], files: first.files });
    const { stdout: log } = await exec('git', ['-C', await cloneBranch('web-app', BRANCH), 'log', '--format=%s']);
    expect(log.split('\n').filter((s) => s.includes('planned release'))).toHaveLength(1);
  });
});

// Last: it releases 1.5.0, which the tests above must not see.
describe('publishPackage after a release made elsewhere', () => {
  test("the released version is the registry's latest when main's package.json was not bumped on release", async () => {
    // As release tooling that publishes without committing the version: 1.5.0 is out, main still says 1.4.0.
    const released = path.join(root, 'sources', 'ui-kit-1.5.0');
    await fs.cp(path.join(root, 'sources', 'ui-kit'), released, { recursive: true });
    const manifest = JSON.parse(await fs.readFile(path.join(released, 'package.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path.join(released, 'package.json'), `${JSON.stringify({ ...manifest, version: '1.5.0' }, null, 2)}\n`);
    await publishReleased(registry, released);
    const record = await publish(deps, { runId: RUN_ID, repo: uiKit, branch: BRANCH, sha: uiKitRound1, baseSha: uiKitMain, round: 5, changeSet: [tokensChangeSet] });
    expect(record).toMatchObject({ status: 'published', releasedVersion: '1.5.0', headVersion: '1.4.0' });
  });

});

function publish(activityDeps: ActivityDeps, request: PublishRequest): Promise<PublishRecord> {
  return activityEnvironment().run(publishPackage, activityDeps, request);
}

/** An activity context whose logger keeps quiet about the failures these tests cause on purpose. */
function activityEnvironment(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
}

function bump(request: BumpRangesRequest): Promise<BumpRangesResult> {
  return activityEnvironment().run(bumpDependencyRanges, deps, request);
}

function activityDeps(access: { url: string; token: string } | null): ActivityDeps {
  const dataDir = path.join(root, 'worker');
  return {
    loadCatalog: async () => {
      throw new Error('not used by these activities');
    },
    dataDir,
    models: new ScriptedModelProvider([], 'none'),
    prices: DEFAULT_PRICES,
    maxTokensPerCall: 4096,
    redact: redactorFor([forgeToken]),
    forge: tokenForgeAccess(forgeToken),
    reportProgress: async () => undefined,
    // No agent step runs here, so nothing is recorded.
    spendLedger: { read: async () => null, record: async () => undefined },
    conversations: new Conversations(new OutboxChannel(dataDir)),
    previews: { dir: path.join(root, 'previews'), baseUrl: 'http://127.0.0.1:1', chromiumPath: null, viewport: { width: 1024, height: 640 }, host: null },
    registry: access,
    progressIntervalMs: 0,
  };
}

function catalogRepo(id: string, role: 'app' | 'package', fields: Record<string, unknown>): CatalogRepo {
  return CatalogRepoSchema.parse({ id, url: `${forge.url}/demo/${id}.git`, defaultBranch: 'main', role, description: `${id} for the registry tests`, dependsOn: [], owners: ['fiona'], ...fields });
}

/** A copy of a source folder with its package.json changed by `edit`. */
async function sourceFolder(name: string, from: string, edit: (manifest: Record<string, unknown>) => void): Promise<string> {
  const dir = path.join(root, 'sources', name);
  await fs.cp(from, dir, { recursive: true, filter: (source) => !source.includes('node_modules') });
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  edit(manifest);
  await fs.writeFile(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
}

function forgeUrl(repo: string): string {
  const url = new URL(`${forge.url}/demo/${repo}.git`);
  url.username = 'x';
  url.password = forgeToken;
  return url.toString();
}

const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.com' };

/** Commits files onto a branch of the forge (new branches start at main); async git: the forge serves from this process. */
async function pushCommit(repo: string, branch: string, files: Record<string, string>, message: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(root, `push-${repo}-`));
  await exec('git', ['clone', '--quiet', forgeUrl(repo), dir], { env: gitEnv });
  const exists = await exec('git', ['-C', dir, 'rev-parse', '--verify', '--quiet', `origin/${branch}`], { env: gitEnv }).then(() => true, () => false);
  await exec('git', ['-C', dir, 'checkout', '--quiet', ...(exists ? [branch] : ['-b', branch])], { env: gitEnv });
  await writeFiles(dir, files);
  await exec('git', ['-C', dir, 'add', '-A'], { env: gitEnv });
  await exec('git', ['-C', dir, 'commit', '--quiet', '-m', message], { env: gitEnv });
  await exec('git', ['-C', dir, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], { env: gitEnv });
  return (await exec('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
}

async function headOf(repo: string, branch: string): Promise<string> {
  const { stdout } = await exec('git', ['ls-remote', forgeUrl(repo), `refs/heads/${branch}`], { env: gitEnv });
  return stdout.split('\t')[0]!;
}

async function cloneBranch(repo: string, branch: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(root, `inspect-${repo}-`));
  await exec('git', ['clone', '--quiet', '--branch', branch, forgeUrl(repo), dir], { env: gitEnv });
  return dir;
}

async function whoami(url: string, token: string): Promise<string | null> {
  const response = await fetch(new URL('-/whoami', url), { headers: { authorization: `Bearer ${token}` } });
  return response.status === 200 ? ((await response.json()) as { username: string }).username : null;
}

/** The address of a port nothing listens on. */
async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/`;
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings.push(`  ${label}: ${Date.now() - started} ms`);
  }
}
