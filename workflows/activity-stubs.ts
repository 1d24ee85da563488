// How the workflow calls activities: timeouts and retry policies per kind of step. Options are read from
// the run's policy (the catalog snapshot) when each step starts.
import * as wf from '@temporalio/workflow';
import type { ActivityInterfaceFor, ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Run } from './run';
import { ACTIVITY_ROLES, taskQueueFor, type ActivityRole } from './task-queues';

/** Failures no retry can fix: the model is unavailable for this requirement, or the catalog is broken. */
const NON_RETRYABLE = ['ModelUnavailableError', 'CatalogError', 'BranchMovedError'];

export function activitiesFor(run: Run) {
  const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE };
  const proxy = routedByRole({ startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 5 } });
  return {
    quick: proxy,
    agent: proxy,
    checks: proxy,
    publish: proxy,
    previews: proxy,
    /** Proposing and editing: long, heartbeating after every step, a few attempts (spending carries over). */
    get agentOptions(): ActivityOptions {
      return {
        startToCloseTimeout: '30 minutes',
        heartbeatTimeout: run.policy.activityHeartbeatTimeout,
        retry: { ...retry, maximumAttempts: 3 },
        // A cancelled run reports "cancelled" only once its agent has really stopped (nothing pushed after).
        cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      };
    },
    get checkOptions(): ActivityOptions {
      return { startToCloseTimeout: '1 hour', heartbeatTimeout: run.policy.activityHeartbeatTimeout, retry: { ...retry, maximumAttempts: 3 } };
    },
    /** Pull requests: quick calls, heartbeating so a dead worker's attempt is retried within seconds. */
    get publishOptions(): ActivityOptions {
      return { startToCloseTimeout: '5 minutes', heartbeatTimeout: run.policy.activityHeartbeatTimeout, retry: { ...retry, maximumAttempts: 5 } };
    },
    /** Builds and deploys can be long and silent; they heartbeat on a timer. */
    get previewOptions(): ActivityOptions {
      return { startToCloseTimeout: '30 minutes', heartbeatTimeout: run.policy.activityHeartbeatTimeout, retry: { ...retry, maximumAttempts: 3 } };
    },
    /**
     * Chat posts: an API call answers in about a second, so an attempt lost with its worker is retried
     * after 15 seconds rather than leaving the thread's card out of date for a minute.
     */
    get notifyOptions(): ActivityOptions {
      return { startToCloseTimeout: '15 seconds', retry: { ...retry, maximumAttempts: 10 } };
    },
  };
}

/**
 * Activities that each go to their role's task queue (workflows/task-queues.ts); options given per call
 * are merged over these defaults by the SDK, so the queue stays. The queues are named after the run's own,
 * so every deployment (and every test world) keeps its steps to its own workers.
 */
function routedByRole(defaults: ActivityOptions): ActivityInterfaceFor<Activities> {
  const base = wf.workflowInfo().taskQueue;
  const byRole = new Map<ActivityRole, ActivityInterfaceFor<Activities>>();
  const proxyFor = (role: ActivityRole) => {
    let proxy = byRole.get(role);
    if (!proxy) byRole.set(role, (proxy = wf.proxyActivities<Activities>({ ...defaults, taskQueue: taskQueueFor(base, role) })));
    return proxy;
  };
  return new Proxy({} as ActivityInterfaceFor<Activities>, {
    get: (_, name) => {
      const role = typeof name === 'string' ? ACTIVITY_ROLES[name as keyof Activities] : undefined;
      if (!role) throw new TypeError(`No worker role is defined for the activity ${String(name)} (workflows/task-queues.ts)`);
      return proxyFor(role)[name as keyof Activities];
    },
  });
}

export type RunActivities = ReturnType<typeof activitiesFor>;
