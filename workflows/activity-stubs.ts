// How the workflow calls activities: timeouts and retry policies per kind of step. Options are read from
// the run's policy (the catalog snapshot) when each step starts.
import * as wf from '@temporalio/workflow';
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Run } from './run';

/** Failures no retry can fix: the model is unavailable for this requirement, or the catalog is broken. */
const NON_RETRYABLE = ['ModelUnavailableError', 'CatalogError', 'BranchMovedError'];

export function activitiesFor(run: Run) {
  const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE };
  const proxy = wf.proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 5 } });
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

export type RunActivities = ReturnType<typeof activitiesFor>;
