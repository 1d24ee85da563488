// Builds a worker for the change-request task queue: the workflow bundle plus activities bound to their
// dependencies. Shared by `npm start`, the standalone worker process and the tests.
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { ActivityDeps } from '../activities/deps';
import { agentProgressSignal, stepSpendQuery, stepSpendSignal } from '../workflows/definitions';

export const WORKFLOWS_PATH = require.resolve('../workflows');

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
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

export async function createChangeRequestWorker(setup: WorkerSetup): Promise<Worker> {
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace,
    taskQueue: setup.taskQueue,
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(setup.deps),
    ...(setup.identity ? { identity: setup.identity } : {}),
    // Agent and check activities wait on models and commands, not on this CPU.
    maxConcurrentActivityTaskExecutions: 20,
    maxCachedWorkflows: setup.maxCachedWorkflows ?? DEFAULT_WORKFLOW_CACHE_SIZE,
    shutdownGraceTime: '10 seconds',
    // Heartbeats carry cancellation back to activities; sending them at least every second lets an agent
    // stop within a step of a cancel instead of after most of a heartbeat timeout.
    maxHeartbeatThrottleInterval: '1 second',
  });
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


/** Warnings and errors only: the SDK's info lines (bundler statistics, state changes) drown what matters. */
export function quietSdkLogs(): void {
  Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN') });
}
