// A whole system for one benchmark, built from the test infrastructure (test/helpers/world.ts): a real
// Temporal dev server (in-memory SQLite), the git forge seeded with the demo repositories, a catalog with
// instant checks and no previews, the gateway, and a worker in its own process (so its memory is its
// own, and the process measuring latency does not share an event loop with workflow code).
import { freePort } from '../activities/free-port';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ScenarioSchema, type Scenario, type ScenarioInput } from '../activities/agent/scenarios';
import { ChangeRequestGateway } from '../client/gateway';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { startPreviewServer } from '../previews/server';
import { ensureTemporalCli } from '../scripts/ensure-temporal';
import { loadCatalog } from '../domain/catalog-loader';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { quietSdkLogs } from '../worker/create-worker';
import { DEMO_REPOS, PROJECT_ROOT, writeTestCatalog } from '../test/helpers/world';

export { PROJECT_ROOT };

/** Progress lines go to stderr, so stdout carries only the results. */
export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** What is running now (servers, workers), so an interrupted benchmark can still stop it. */
const running = new Set<() => Promise<void>>();

/** Stops everything still running (on SIGINT/SIGTERM); benchmarks stop their own parts otherwise. */
export async function stopEverything(): Promise<void> {
  for (const stop of [...running].reverse()) await stop().catch(() => undefined);
  running.clear();
}

function track(stop: () => Promise<void>): () => Promise<void> {
  const once = async () => {
    running.delete(once);
    await stop();
  };
  running.add(once);
  return once;
}

let prepared: Promise<{ temporalCli: string; bundle: string }> | undefined;
let ownBundle: string | undefined;

/** Removes the workflow bundle prepareEnvironment wrote (if it wrote one). */
export async function cleanUpEnvironment(): Promise<void> {
  if (ownBundle) await fs.rm(ownBundle, { force: true });
}

/**
 * What test/global-setup.ts does for jest: finds the Temporal CLI and bundles the workflows once, and
 * exposes both the way test/helpers/world.ts expects (CR_TEST_TEMPORAL_CLI, CR_TEST_WORKFLOW_BUNDLE).
 */
export function prepareEnvironment(): Promise<{ temporalCli: string; bundle: string }> {
  prepared ??= (async () => {
    quietSdkLogs();
    const temporalCli = process.env.CR_TEST_TEMPORAL_CLI || (await ensureTemporalCli((line) => log(line)));
    process.env.CR_TEST_TEMPORAL_CLI = temporalCli;
    let bundle = process.env.CR_TEST_WORKFLOW_BUNDLE;
    if (!bundle) {
      const noop = () => undefined;
      const logger = { trace: noop, debug: noop, info: noop, warn: (m: string) => log(m), error: (m: string) => log(m), log: noop };
      const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger });
      bundle = path.join(os.tmpdir(), `cr-bench-workflow-bundle-${process.pid}.js`);
      await fs.writeFile(bundle, code);
      ownBundle = bundle;
      process.env.CR_TEST_WORKFLOW_BUNDLE = bundle;
    }
    return { temporalCli, bundle };
  })();
  return prepared;
}

/** The requirement every benchmark run uses; the bench scenario below matches it. */
export const BENCH_REQUIREMENT = 'Benchmark: add a one-line BENCH note to the repositories';
export const BENCH_REQUESTER = 'fiona';

/**
 * The scripted model's part, with zero latency: proposing answers at once with the repositories asked for;
 * editing writes one small file and finishes in the same turn; the narrative is one sentence.
 */
export function benchScenario(proposeRepos: readonly string[] = ['ui-kit']): Scenario {
  const edit = (repo: string): ScenarioInput['edit'] => ({
    [repo]: {
      initial: [
        {
          say: 'Writing the note.',
          calls: [
            { name: 'write_file', input: { path: 'BENCH.md', content: `Benchmark note for ${repo}.\n` } },
            { name: 'finish', input: { summary: `Added BENCH.md to ${repo}.` } },
          ],
        },
      ],
    },
  });
  return ScenarioSchema.parse({
    id: 'bench',
    requirement: BENCH_REQUIREMENT,
    match: ['benchmark', 'bench note'],
    propose: [
      {
        calls: [
          {
            name: 'propose_repositories',
            input: { repositories: proposeRepos.map((id) => ({ id, reason: `The benchmark edits ${id}.`, confidence: 0.9 })), questions: [] },
          },
        ],
      },
    ],
    edit: Object.assign({}, ...DEMO_REPOS.map(edit)),
    narrative: 'Each repository gained a one-line BENCH.md note; nothing else changed.',
  } satisfies ScenarioInput);
}

/** Instant checks (`true`), no install, no preview, no package publishing, no dependencies between the repositories. */
export function instantRepos(options: { keepDependencies?: boolean } = {}): Record<string, Record<string, unknown>> {
  const repos: Record<string, Record<string, unknown>> = {};
  for (const id of DEMO_REPOS) {
    repos[id] = {
      install: [],
      checks: [{ name: 'check', run: 'true', timeoutSeconds: 60 }],
      preview: undefined, // YAML.stringify leaves undefined keys out: no preview
      publish: undefined,
      ...(options.keepDependencies ? {} : { dependsOn: [] }),
    };
  }
  return repos;
}

export interface BenchWorldOptions {
  repos?: Record<string, Record<string, unknown>>;
  policy?: Record<string, unknown>;
  /** Extra `temporal server start-dev` arguments (e.g. --dynamic-config-value). */
  temporalArgs?: string[];
}

export interface BenchWorld {
  env: TestWorkflowEnvironment;
  forge: Forge;
  forgeToken: string;
  dataDir: string;
  catalogPath: string;
  taskQueue: string;
  gateway: ChangeRequestGateway;
  previewServer: { url: string; dir: string };
  /** The Temporal dev server's process id (for CPU accounting). */
  temporalPid: number;
  close(): Promise<void>;
}

export async function createBenchWorld(options: BenchWorldOptions = {}): Promise<BenchWorld> {
  const { temporalCli } = await prepareEnvironment();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-bench-'));
  const forgeToken = randomBytes(16).toString('hex');
  const forge = await startForge({ dataDir: path.join(dataDir, 'forge'), token: forgeToken });
  await seedRepositories(forge, DEMO_REPOS.map((name) => ({ owner: 'demo', name, sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', name) })));
  // The production heartbeat timeout (the test catalog shortens it to 5 s).
  const catalogPath = await writeTestCatalog(dataDir, forge.url, { activityHeartbeatTimeout: '60s', ...options.policy }, options.repos ?? instantRepos());
  const previewDir = path.join(dataDir, 'previews');
  const previewServer = await startPreviewServer({ dir: previewDir });
  const temporal = await startDevServer(temporalCli, options.temporalArgs ?? []);
  const env = temporal.env;
  const taskQueue = `change-requests-bench-${randomBytes(3).toString('hex')}`;
  const gateway = new ChangeRequestGateway(env.client, { taskQueue, catalog: () => loadCatalog(catalogPath) });
  return {
    env,
    forge,
    forgeToken,
    dataDir,
    catalogPath,
    taskQueue,
    gateway,
    previewServer: { url: previewServer.url, dir: previewDir },
    temporalPid: temporal.pid,
    close: track(async () => {
      await env.teardown().catch((error: unknown) => log(`temporal teardown: ${String(error)}`));
      await temporal.stop();
      await forge.close().catch(() => undefined);
      await previewServer.close().catch(() => undefined);
      await fs.rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    }),
  };
}

/**
 * `temporal server start-dev` (in-memory SQLite, no UI), started here rather than through
 * TestWorkflowEnvironment.createLocal so that its output goes to stderr, never into the results on stdout,
 * and so that extra server arguments can be passed.
 */
async function startDevServer(cli: string, extraArgs: string[]): Promise<{ env: TestWorkflowEnvironment; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const args = ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error', ...extraArgs];
  for (const key of ALL_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`);
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  forwardLines(child, 'temporal');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  let env: TestWorkflowEnvironment | undefined;
  while (!env) {
    if (child.exitCode !== null) throw new Error(`the Temporal dev server exited with ${child.exitCode}`);
    let candidate: TestWorkflowEnvironment | undefined;
    try {
      candidate = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
      // Ready when it answers for the namespace.
      await candidate.client.workflowService.describeNamespace({ namespace: 'default' });
      env = candidate;
    } catch (error) {
      await candidate?.teardown().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`the Temporal dev server did not come up at ${address}: ${(error as Error).message}`);
      await sleep(300);
    }
  }
  return {
    env,
    pid: child.pid!,
    stop: () => stopChild(child, exited),
  };
}

/** SIGTERM, and SIGKILL if the process has not exited 15 seconds later. */
async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
}


/** A child's output on our stderr, line by line and labelled; stdout is for results. */
function forwardLines(child: ChildProcess, label: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) process.stderr.write(`[${label}] ${line}\n`);
    });
  }
}

export interface BenchWorker {
  child: ChildProcess;
  pid: number;
  /** Resident set size now, from /proc/<pid>/status (VmRSS), in MiB; NaN when the process is gone. */
  rssMiB(): Promise<number>;
  /** The kernel's high-water mark of the resident set (VmHWM), in MiB. */
  peakRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The worker (bench/worker-entry.ts) as one node process (tsx loaded with --import, no wrapper process),
 * configured like `npm run worker` except for the scripted model and the bench catalog.
 */
export async function startBenchWorker(world: BenchWorld, scenarios: Scenario[], name = 'worker', extraEnv: Record<string, string> = {}): Promise<BenchWorker> {
  const { bundle } = await prepareEnvironment();
  const scenariosFile = path.join(world.dataDir, `${name}-scenarios.json`);
  const readyFile = path.join(world.dataDir, `${name}.ready`);
  await fs.writeFile(scenariosFile, JSON.stringify(scenarios));
  // CR_BENCH_WORKER_NODE_OPTIONS: extra node flags for the worker, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeFlags = (process.env.CR_BENCH_WORKER_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'worker-entry.ts')], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CR_SCENARIOS_FILE: scenariosFile,
      CR_TEMPORAL_ADDRESS: world.env.address,
      CR_NAMESPACE: world.env.namespace ?? 'default',
      CR_TASK_QUEUE: world.taskQueue,
      CR_DATA_DIR: path.join(world.dataDir, 'worker'),
      CR_CATALOG: world.catalogPath,
      CR_FORGE_TOKEN: world.forgeToken,
      CR_PREVIEW_DIR: world.previewServer.dir,
      CR_PREVIEW_URL: world.previewServer.url,
      CR_TEST_WORKFLOW_BUNDLE: bundle,
      CR_READY_FILE: readyFile,
      TEMPORAL_LOG_LEVEL: process.env.TEMPORAL_LOG_LEVEL ?? 'WARN',
      ...extraEnv,
    },
  });
  forwardLines(child, name);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 90_000;
  while (!(await fs.stat(readyFile).then(() => true, () => false))) {
    if (child.exitCode !== null) throw new Error(`worker process ${name} exited with ${child.exitCode} before it was ready`);
    if (Date.now() > deadline) throw new Error(`worker process ${name} did not become ready`);
    await sleep(100);
  }
  const pid = child.pid!;
  const status = async (field: string): Promise<number> => {
    const text = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  };
  return {
    child,
    pid,
    rssMiB: () => status('VmRSS'),
    peakRssMiB: () => status('VmHWM'),
    stop: track(() => stopChild(child, exited)),
  };
}

/** Samples a worker's resident set periodically; the peak of the samples and the kernel's own high-water mark. */
/**
 * The workers as production runs them (`npm start`, docker-compose): the runs in a workflow worker of their
 * own (WORKER_ROLES=workflows), their steps in one activity worker with the agent, work and quick roles.
 */
export async function startProductionWorkers(world: BenchWorld, scenarios: Scenario[], name: string): Promise<{ workflows: BenchWorker; steps: BenchWorker }> {
  const workflows = await startBenchWorker(world, scenarios, `${name}-workflow-worker`, { WORKER_ROLES: 'workflows' });
  const steps = await startBenchWorker(world, scenarios, `${name}-activity-worker`, { WORKER_ROLES: 'agent,work,quick' });
  return { workflows, steps };
}

export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly samples: { at: number; mib: number }[] = [];
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly worker: BenchWorker, private readonly everyMs = 250) {}

  start(): void {
    this.timer = setInterval(() => {
      this.pending = this.worker.rssMiB().then((mib) => {
        if (Number.isFinite(mib)) this.samples.push({ at: Date.now(), mib });
      });
    }, this.everyMs);
  }

  async stop(): Promise<{ peakSampledMiB: number; lastMiB: number; highWaterMiB: number; samples: number }> {
    if (this.timer) clearInterval(this.timer);
    await this.pending;
    const highWaterMiB = await this.worker.peakRssMiB();
    return {
      peakSampledMiB: this.samples.length ? Math.max(...this.samples.map((s) => s.mib)) : Number.NaN,
      lastMiB: this.samples.at(-1)?.mib ?? Number.NaN,
      highWaterMiB,
      samples: this.samples.length,
    };
  }
}

/** CPU seconds a process used so far (user + system), and what its exited, reaped children used. */
export async function cpuSeconds(pid: number | 'self'): Promise<{ own: number; children: number }> {
  const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which is in parentheses and may contain spaces).
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
  const tick = 100; // USER_HZ (getconf CLK_TCK) on Linux
  const [utime, stime, cutime, cstime] = [fields[11], fields[12], fields[13], fields[14]].map((v) => (v ?? Number.NaN) / tick);
  return { own: utime! + stime!, children: cutime! + cstime! };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
}
