// Waiting for people (with a reminder and an expiry), stopping work when someone cancels, and
// continuing as new before the history grows large.
import * as wf from '@temporalio/workflow';
import type { WaitingFor } from '../domain/contracts';
import type { RunActivities } from './activity-stubs';
import type { Run } from './run';

/** A person (or the expiry timer) stopped the run. */
export class RunStopped extends Error {
  constructor(readonly reason: string, readonly by: string | null) {
    super(reason);
  }
}

/**
 * Waits until `ready()`; reminds the conversation once when the reminder time passes, and at the expiry
 * either cancels the run or (onExpiry 'proceed') returns false so the run goes on without an answer.
 * Deadlines are kept in state, so a run that continued as new keeps its clock.
 */
export async function waitForPeople(
  run: Run,
  acts: RunActivities,
  what: WaitingFor['what'],
  ready: () => boolean,
  options: { onExpiry?: 'cancel' | 'proceed'; stillWaiting?: () => boolean } = {},
): Promise<boolean> {
  const policy = run.policy;
  // A budget question is as urgent as a confirmation: the work is paused until someone answers.
  const [remindAfter, expireAfter] = what === 'review'
    ? [policy.remindToReviewAfter, policy.expireUnreviewedAfter]
    : [policy.remindToConfirmAfter, policy.expireUnconfirmedAfter];
  if (run.state.waiting?.what !== what) {
    const since = Date.now();
    run.state.waiting = { what, since, remindAt: since + remindAfter, expiresAt: since + expireAfter, remindedAt: null };
    run.touch();
  }
  const waiting = run.state.waiting!;
  const settled = () => ready() || run.inbox.cancellation !== null;

  if (waiting.remindedAt === null && waiting.remindAt < waiting.expiresAt) {
    if (!(await wf.condition(settled, Math.max(1, waiting.remindAt - Date.now())))) {
      waiting.remindedAt = Date.now();
      run.touch();
      await acts.quick.notifyConversation.executeWithOptions(acts.notifyOptions, [{
        runId: run.state.runId,
        conversation: run.state.request.conversation,
        key: `${run.state.runId}/remind/${what}/${waiting.since}`,
        text: `Reminder: this change request is waiting for your ${what}. It will be cancelled at ${new Date(waiting.expiresAt).toISOString()} if nobody responds.`,
      }]);
    }
  }
  const answered = await wf.condition(settled, Math.max(1, waiting.expiresAt - Date.now()));
  // Woken for something else than the answer (e.g. context to read): the wait and its clock go on after it.
  if (!(answered && options.stillWaiting?.())) {
    run.state.waiting = null;
    run.touch();
  }
  if (!answered && (options.onExpiry ?? 'cancel') === 'cancel') throw new RunStopped(`expired: nobody responded to the ${what} request in time`, null);
  throwIfCancelled(run);
  return answered;
}

function throwIfCancelled(run: Run): void {
  const cancellation = run.inbox.cancellation;
  if (cancellation) throw new RunStopped(cancellation.reason, cancellation.by);
}

/** Runs active work (agent, checks) so that an accepted `cancel` stops it at once. */
export async function interruptible<T>(run: Run, work: () => Promise<T>): Promise<T> {
  throwIfCancelled(run);
  const scope = new wf.CancellationScope();
  void wf.condition(() => run.inbox.cancellation !== null).then(() => scope.cancel());
  try {
    return await scope.run(work);
  } catch (error) {
    if (wf.isCancellation(error)) throwIfCancelled(run);
    throw error;
  }
}
