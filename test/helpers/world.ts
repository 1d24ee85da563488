// A whole system for one test file: a real Temporal dev server, a real git forge seeded with the demo
// repositories, a catalog pointing at it, workers with a scripted model, and the gateway people use.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ChangeRequestWorkers } from '../../worker/create-worker';
import type { Client } from '@temporalio/client';
import YAML from 'yaml';
import type { ActivityDeps } from '../../activities/deps';
import { loadScenarioBook, type Scenario } from '../../activities/agent/scenarios';
import { ScriptedModelProvider } from '../../activities/agent/scripted-model';
import { DEFAULT_PRICES } from '../../activities/agent/pricing';
import { redactorFor } from '../../activities/agent/redact';
import { tokenForgeAccess } from '../../activities/forge-access';
import { Conversations, OutboxChannel } from '../../activities/notify';
import { ChangeRequestGateway } from '../../client/gateway';
import { startForge, type Forge } from '../../forge/server';
import { seedRepositories } from '../../forge/seed';
import { startPreviewServer } from '../../previews/server';
import { startDemoPages, type DemoPages } from '../../demo/pages-server';
import { startEmbeddedRegistry, type EmbeddedRegistry } from '../../registry/embedded';
import { publishReleased } from '../../registry/seed';
import { loadCatalog } from '../../domain/catalog-loader';
import type { RunState } from '../../domain/contracts';
import { ALL_SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { createChangeRequestWorker, progressReporterVia, spendLedgerVia } from '../../worker/create-worker';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const DEMO_REPOS = ['ui-kit', 'bff-api', 'web-app'];

export interface WorldOptions {
  /** Policy values for the test catalog (short timers, few fix rounds ...). */
  policy?: Record<string, unknown>;
  /** Fields to change in the demo catalog's repositories, by id (e.g. install commands). */
  repos?: Record<string, Record<string, unknown>>;
}

export interface World {
  env: TestWorkflowEnvironment;
  forge: Forge;
  forgeToken: string;
  previewServer: { url: string; dir: string; token: string };
  /** The embedded Verdaccio with the released demo packages (@acme/ui-kit@1.4.0). */
  registry: EmbeddedRegistry;
  /** The demo's local pages (demo/pages), which requirement links may point at. */
  demoPages: DemoPages;
  dataDir: string;
  catalogPath: string;
  taskQueue: string;
  gateway: ChangeRequestGateway;
  /** Activity dependencies as a worker here would have them; `extra` replaces parts (model, prices …). */
  activityDeps(scenarios: Scenario[], extra?: Partial<ActivityDeps>): ActivityDeps;
  startWorker(scenarios: Scenario[], extra?: Partial<ActivityDeps>): Promise<{ worker: ChangeRequestWorkers; stop(): Promise<void> }>;
  /** Stops every worker started here (after a failed test, so the next one can start its own). */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

export async function demoScenarios(): Promise<Scenario[]> {
  return loadScenarioBook(path.join(PROJECT_ROOT, 'demo', 'scenarios.yaml'));
}

export function temporalCli(): string {
  const cli = process.env.CR_TEST_TEMPORAL_CLI;
  if (!cli) throw new Error('CR_TEST_TEMPORAL_CLI is not set: run the tests through jest (test/global-setup.ts)');
  return cli;
}

export function workflowBundle(): { codePath: string } {
  const codePath = process.env.CR_TEST_WORKFLOW_BUNDLE;
  if (!codePath) throw new Error('CR_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (test/global-setup.ts)');
  return { codePath };
}

export async function startTemporal(options: { dbFilename?: string; port?: number } = {}): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCli() },
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'error' },
      ...(options.dbFilename ? { dbFilename: options.dbFilename } : {}),
      ...(options.port ? { port: options.port } : {}),
    },
  });
}

/** Writes the demo catalog with the forge's URL and the given policy, into the test's data folder. */
export async function writeTestCatalog(dir: string, forgeUrl: string, policy: Record<string, unknown> = {}, repos: WorldOptions['repos'] = {}): Promise<string> {
  const demo = YAML.parse(await fs.readFile(path.join(PROJECT_ROOT, 'demo', 'catalog.yaml'), 'utf8')) as { policy: Record<string, unknown>; repositories: { id: string; url: string }[] };
  // Pull requests are looked at every second, so a merge on the forge shows within a test's patience.
  demo.policy = { ...demo.policy, activityHeartbeatTimeout: '5s', trackPullRequestsEvery: '1s', trackPullRequestsAtMostEvery: '4s', ...policy };
  for (const repo of demo.repositories) {
    repo.url = repo.url.replace('${FORGE_URL}', forgeUrl);
    Object.assign(repo, repos[repo.id] ?? {});
  }
  const file = path.join(dir, 'catalog.yaml');
  await fs.writeFile(file, YAML.stringify(demo));
  return file;
}

/** Activities reach their run through a client: a test on its own Temporal server passes its client here. */
export function runChannelsVia(client: Client): Pick<ActivityDeps, 'reportProgress' | 'spendLedger'> {
  return { reportProgress: progressReporterVia(client), spendLedger: spendLedgerVia(client) };
}

export async function createWorld(options: WorldOptions = {}): Promise<World> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-test-'));
  const forgeToken = randomBytes(16).toString('hex');
  const forge = await startForge({ dataDir: path.join(dataDir, 'forge'), token: forgeToken });
  await seedRepositories(forge, DEMO_REPOS.map((name) => ({ owner: 'demo', name, sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', name) })));
  const catalogPath = await writeTestCatalog(dataDir, forge.url, options.policy, options.repos);
  const previewDir = path.join(dataDir, 'previews');
  const previewToken = randomBytes(16).toString('hex');
  const previewServer = await startPreviewServer({ dir: previewDir, token: previewToken });
  const registry = await startEmbeddedRegistry({ dir: path.join(dataDir, 'registry') });
  await publishReleased(registry, path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit'));
  const demoPages = await startDemoPages({ dir: path.join(PROJECT_ROOT, 'demo', 'pages') });
  const env = await startTemporal();
  const taskQueue = `change-requests-${randomBytes(3).toString('hex')}`;
  const gateway = new ChangeRequestGateway(env.client, { taskQueue, catalog: () => loadCatalog(catalogPath) });
  const running: { worker: ChangeRequestWorkers; done: Promise<void> }[] = [];

  const activityDeps = (scenarios: Scenario[], extra: Partial<ActivityDeps> = {}): ActivityDeps => ({
    loadCatalog: () => loadCatalog(catalogPath),
    dataDir: path.join(dataDir, 'worker'),
    models: new ScriptedModelProvider(scenarios, 'test scenarios'),
    prices: DEFAULT_PRICES,
    maxTokensPerCall: 4096,
    redact: redactorFor([forgeToken, registry.token, previewToken]),
    forge: tokenForgeAccess(forgeToken),
    ...runChannelsVia(env.client),
    conversations: new Conversations(new OutboxChannel(path.join(dataDir, 'worker'))),
    previews: { dir: previewDir, baseUrl: previewServer.url, chromiumPath: '/usr/bin/chromium', viewport: { width: 1024, height: 640 }, host: { url: previewServer.url, token: previewToken } },
    registry: { url: registry.url, token: registry.token },
    progressIntervalMs: 0,
    contextHosts: [new URL(forge.url).host, new URL(demoPages.url).host],
    ...extra,
  });

  const stopWorkers = async (): Promise<void> => {
    for (const { worker } of running) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.allSettled(running.map((r) => r.done));
  };

  return {
    env,
    forge,
    forgeToken,
    previewServer: { url: previewServer.url, dir: previewDir, token: previewToken },
    registry,
    demoPages,
    dataDir,
    catalogPath,
    taskQueue,
    gateway,
    activityDeps,
    async startWorker(scenarios, extra) {
      const worker = await createChangeRequestWorker({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue,
        deps: activityDeps(scenarios, extra),
        workflowBundle: workflowBundle(),
      });
      const done = worker.run();
      running.push({ worker, done });
      return {
        worker,
        async stop() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await done;
        },
      };
    },
    stopWorkers,
    async close() {
      await stopWorkers();
      await env.teardown();
      await forge.close();
      await previewServer.close();
      await registry.close();
      await demoPages.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls the run's state until `predicate` holds; fails with the last state when it never does. */
export async function waitForState(gateway: ChangeRequestGateway, runId: string, predicate: (s: RunState) => boolean, timeoutMs = 60_000): Promise<RunState> {
  const deadline = Date.now() + timeoutMs;
  let last: RunState | undefined;
  while (Date.now() < deadline) {
    last = await gateway.state(runId);
    if (predicate(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`state never matched; last phase ${last?.phase}, last error ${last?.lastError?.message ?? 'none'}`);
}

export function waitForPhase(gateway: ChangeRequestGateway, runId: string, phase: RunState['phase'], timeoutMs?: number): Promise<RunState> {
  return waitForState(gateway, runId, (s) => s.phase === phase || ['failed', 'cancelled', 'done'].includes(s.phase) , timeoutMs).then((s) => {
    if (s.phase !== phase) throw new Error(`expected phase ${phase}, got ${s.phase}: ${s.outcome?.reason ?? s.lastError?.message ?? ''}`);
    return s;
  });
}

/**
 * Commit subjects on a branch of the forge that are not on main, read with the real git CLI. Async on
 * purpose: the forge serves from this same process, so a blocking child would deadlock it.
 */
export async function branchCommits(world: World, repo: string, branch: string): Promise<string[]> {
  const url = new URL(`${world.forge.url}/demo/${repo}.git`);
  url.username = 'x';
  url.password = world.forgeToken;
  const dir = await fs.mkdtemp(path.join(world.dataDir, `inspect-${repo}-`));
  const git = promisify(execFile);
  await git('git', ['clone', '--quiet', '--branch', branch, url.toString(), dir], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  await git('git', ['-C', dir, 'fetch', '--quiet', 'origin', 'main']);
  const { stdout } = await git('git', ['-C', dir, 'log', '--format=%s', 'origin/main..HEAD']);
  return stdout.trim().split('\n').filter(Boolean);
}

/** Pull requests on the forge for one demo repository, as GitHub's REST API would list them. */
export async function forgePulls(world: World, repo: string): Promise<{ number: number; state: string; title: string; body: string; head: { ref: string; sha: string } }[]> {
  const response = await fetch(`${world.forge.apiUrl}/repos/demo/${repo}/pulls?state=all`, { headers: { authorization: `token ${world.forgeToken}` } });
  if (response.status !== 200) throw new Error(`listing pulls of ${repo}: HTTP ${response.status}`);
  return (await response.json()) as never;
}

/** Commits files straight onto a demo repository's main branch on the forge, as a person would. */
export async function commitToForge(world: World, repo: string, files: Record<string, string>, message: string): Promise<void> {
  await commitToBranch(world, repo, 'main', files, message);
}

/** Commits files onto a branch on the forge as a person would (starting it from main if it is new). */
export async function commitToBranch(world: World, repo: string, branch: string, files: Record<string, string>, message: string): Promise<void> {
  const url = new URL(`${world.forge.url}/demo/${repo}.git`);
  url.username = 'x';
  url.password = world.forgeToken;
  const dir = await fs.mkdtemp(path.join(world.dataDir, `commit-${repo}-`));
  const git = promisify(execFile);
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.com' };
  await git('git', ['clone', '--quiet', url.toString(), dir], { env });
  const exists = await git('git', ['-C', dir, 'rev-parse', '--verify', '--quiet', `origin/${branch}`], { env }).then(() => true, () => false);
  if (exists) await git('git', ['-C', dir, 'checkout', '--quiet', branch], { env });
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  await git('git', ['-C', dir, 'add', '-A'], { env });
  await git('git', ['-C', dir, 'commit', '--quiet', '-m', message], { env });
  await git('git', ['-C', dir, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], { env });
}
