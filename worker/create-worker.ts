// Builds the workers of a process: one per role it serves (workflows/task-queues.ts). Production runs a
// role per process (`npm run worker -- --role agent`, docker-compose); `npm start`, the tests and the
// benchmarks start whichever roles they need. Every worker of a build joins the same Worker Deployment
// version when versioning is on, so a run and its steps stay on the code that started them.
import os from 'node:os';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogEntry, type State, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type Activities } from '../activities';
import type { ActivityDeps } from '../activities/deps';
import { agentProgressSignal, stepSpendQuery, stepSpendSignal } from '../workflows/definitions';
import { ACTIVITY_ROLES, taskQueueFor, WORKER_ROLES, type ActivityRole, type WorkerRole } from '../workflows/task-queues';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** The Worker Deployment version this build's workers belong to (README: Deploying). */
export interface WorkerVersion {
  deploymentName: string;
  buildId: string;
}

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  /** The runs' task queue; activity roles poll theirs next to it (taskQueueFor). */
  taskQueue: string;
  /** The roles this process serves; all of them unless said. */
  roles?: readonly WorkerRole[];
  /** What the activities use; needed when any activity role is served. */
  deps?: ActivityDeps;
  /** Steps of a role this process runs at once; DEFAULT_CONCURRENCY otherwise. */
  concurrency?: Partial<Record<ActivityRole, number>>;
  /** Worker Versioning: runs start PINNED to this version. Null or absent: unversioned (tests, replays). */
  version?: WorkerVersion | null;
  /** A pre-built bundle (tests build one for all their workers); otherwise the workflows are bundled here. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  /** Workflows kept in memory between tasks (WORKFLOW_CACHE_SIZE); see DEFAULT_WORKFLOW_CACHE_SIZE. */
  maxCachedWorkflows?: number;
}

/**
 * Most runs spend their life parked, waiting for people; each cached one holds about 2 MB of workflow
 * state in this process. Past this many, the least recently used are evicted and replayed from history
 * when they next move (tens of events: milliseconds). With 1,000 runs open this halves the worker's
 * memory (docs/benchmarks.md); what remains grows slowly with every run the worker has loaded.
 */
export const DEFAULT_WORKFLOW_CACHE_SIZE = 100;

/**
 * Steps at once per process. Agent steps wait on the model, and each holds a clone; repository work uses
 * the CPU and disk, but most of a check is waiting on installs and child processes, so a few per core;
 * quick calls are network round trips.
 */
export const DEFAULT_CONCURRENCY: Record<ActivityRole, number> = {
  agent: 10,
  work: Math.max(4, os.availableParallelism()),
  quick: 50,
};

/** The workers of one process, run and stopped together. */
export class ChangeRequestWorkers {
  constructor(readonly workers: readonly { role: WorkerRole; worker: Worker }[]) {}

  /** Runs every worker until all have stopped; when one fails, the others are shut down and it rethrows. */
  async run(): Promise<void> {
    const runs = this.workers.map(({ worker }) => worker.run());
    try {
      await Promise.all(runs);
    } catch (error) {
      this.shutdown();
      await Promise.allSettled(runs);
      throw error;
    }
  }

  shutdown(): void {
    // The SDK already drains a worker on SIGINT/SIGTERM; asking twice is an error.
    for (const { worker } of this.workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  }

  /** RUNNING while every worker is; otherwise the state of the first that is not. */
  getState(): State {
    return this.workers.find(({ worker }) => worker.getState() !== 'RUNNING')?.worker.getState() ?? 'RUNNING';
  }
}

export async function createChangeRequestWorker(setup: WorkerSetup): Promise<ChangeRequestWorkers> {
  const roles = setup.roles ?? WORKER_ROLES;
  const activities = roles.some((role) => role !== 'workflows') ? createActivities(requireDeps(setup)) : null;
  const common = {
    connection: setup.connection,
    namespace: setup.namespace,
    shutdownGraceTime: '10 seconds',
    ...(setup.version
      ? { workerDeploymentOptions: { version: setup.version, useWorkerVersioning: true as const, defaultVersioningBehavior: 'PINNED' as const } }
      : {}),
  } satisfies Partial<WorkerOptions>;
  const workers = await Promise.all(
    roles.map(async (role) => {
      const identity = setup.identity ? `${setup.identity}/${role}` : undefined;
      const options: WorkerOptions =
        role === 'workflows'
          ? {
              ...common,
              taskQueue: taskQueueFor(setup.taskQueue, role),
              ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
              maxCachedWorkflows: setup.maxCachedWorkflows ?? DEFAULT_WORKFLOW_CACHE_SIZE,
            }
          : {
              ...common,
              taskQueue: taskQueueFor(setup.taskQueue, role),
              activities: activitiesOf(activities!, role),
              maxConcurrentActivityTaskExecutions: setup.concurrency?.[role] ?? DEFAULT_CONCURRENCY[role],
              // Heartbeats carry cancellation back to activities; sending them at least every second lets an
              // agent stop within a step of a cancel instead of after most of a heartbeat timeout.
              maxHeartbeatThrottleInterval: '1 second',
            };
      return { role, worker: await Worker.create({ ...options, ...(identity ? { identity } : {}) }) };
    }),
  );
  return new ChangeRequestWorkers(workers);
}

function requireDeps(setup: WorkerSetup): ActivityDeps {
  if (!setup.deps) throw new Error('the activity roles need their dependencies (WorkerSetup.deps)');
  return setup.deps;
}

/** The activities of one role, by the one table that assigns them (ACTIVITY_ROLES). */
function activitiesOf(all: Activities, role: ActivityRole): Partial<Activities> {
  return Object.fromEntries(Object.entries(all).filter(([name]) => ACTIVITY_ROLES[name as keyof Activities] === role));
}

/** Progress reports travel as a signal to the run, so the `state` query shows them. */
export function progressReporterVia(client: Client): ActivityDeps['reportProgress'] {
  return async (runId, progress) => {
    await client.workflow.getHandle(runId).signal(agentProgressSignal, progress);
  };
}

/** The run's spend ledger through its `stepSpend` signal and query (see ActivityDeps.spendLedger). */
export function spendLedgerVia(client: Client): ActivityDeps['spendLedger'] {
  return {
    read: (runId, key) => client.workflow.getHandle(runId).query(stepSpendQuery, key),
    record: async (runId, key, spend) => {
      await client.workflow.getHandle(runId).signal(stepSpendSignal, { key, spend });
    },
  };
}


/**
 * Warnings and errors only: the SDK's info lines (bundler statistics, state changes) drown what matters.
 * A worker of one role is told, as a warning, that it polls nothing of the other kinds; that is the design.
 */
export function quietSdkLogs(): void {
  const expected = /^No (workflows|activities|Nexus services) registered/;
  const write = (entry: LogEntry) => {
    if (expected.test(entry.message)) return;
    const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    console.error(`${at} [${entry.level}] ${entry.message}`, ...(entry.meta && Object.keys(entry.meta).length ? [entry.meta] : []));
  };
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN', write) });
  } catch {
    // The process already has its runtime (a worker started first, as in a test); it keeps that one's logger.
  }
}
