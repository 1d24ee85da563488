// After the pull requests open, the run follows them until each is merged or closed (or until the catalog's
// tracking time is up): it looks at them with backoff while nothing changes, shows what it saw on the card,
// and takes a repository's preview down once its pull request is decided. Merging stays with people.
import * as wf from '@temporalio/workflow';
import { mergeOrderOf } from '../domain/summary';
import type { RunActivities } from './activity-stubs';
import type { Run } from './run';
import { interruptible, RunStopped } from './waiting';

export interface TrackingHooks {
  /** Takes down the previews of repositories whose pull requests were decided. */
  removePreviews(repos: readonly string[]): Promise<void>;
  /** Continues as new between looks when the history is long (tracking can last weeks). */
  continueAsNewIfLong(): Promise<void>;
}

/** Returns how tracking ended: every pull request decided, or the tracking time over with some still open. */
export async function trackUntilDecided(run: Run, acts: RunActivities, hooks: TrackingHooks): Promise<'decided' | 'expired'> {
  const open = () => mergeOrderOf(run.state).filter((id) => run.repo(id).pr?.state === 'open');
  if (open().length === 0) return 'decided';
  const policy = run.policy;
  run.state.tracking ??= { since: Date.now(), until: Date.now() + policy.trackPullRequestsFor, looks: 0, nextLookAt: null };
  const tracking = run.state.tracking;
  run.setPhase('tracking');
  let wait = policy.trackPullRequestsEvery;
  for (;;) {
    const pending = open();
    if (pending.length === 0) return 'decided';
    if (Date.now() >= tracking.until) return 'expired';
    const seen = await interruptible(run, () =>
      acts.publish.readPullRequests
        .executeWithOptions({ ...acts.publishOptions, summary: `look at the pull requests of ${pending.join(', ')}` }, [
          { runId: run.state.runId, pullRequests: pending.map((id) => ({ repo: run.catalogRepo(id), number: run.repo(id).pr!.number })) },
        ])
        // The host stayed down past the retries: say so and look again later, never end the run for it.
        .catch((error: unknown) => {
          if (wf.isCancellation(error)) throw error;
          run.recordError(`the pull requests could not be looked at: ${error instanceof Error ? error.message : String(error)}; trying again later`);
          return [];
        }),
    );
    const { decided, changed } = run.applyTracking(seen);
    if (decided.length > 0) await hooks.removePreviews(decided);
    wait = changed ? policy.trackPullRequestsEvery : Math.min(wait * 2, policy.trackPullRequestsAtMostEvery);
    if (open().length === 0) return 'decided';
    await hooks.continueAsNewIfLong();
    tracking.nextLookAt = Math.min(Date.now() + wait, tracking.until);
    run.touch();
    if (await wf.condition(() => run.inbox.cancellation !== null, Math.max(1, tracking.nextLookAt - Date.now()))) {
      throw new RunStopped(run.inbox.cancellation!.reason, run.inbox.cancellation!.by);
    }
  }
}
