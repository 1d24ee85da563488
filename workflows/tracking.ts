// After the pull requests open, the run follows them until each is merged or closed (or until the catalog's
// tracking time is up): it looks at them with backoff while nothing changes, shows what it saw on the card,
// and takes a repository's preview down once its pull request is decided. Merging stays with people.
import * as wf from '@temporalio/workflow';
import semver from 'semver';
import { mergeOrderOf } from '../domain/summary';
import type { RunActivities } from './activity-stubs';
import type { Run } from './run';
import { interruptible, RunStopped } from './waiting';

export interface TrackingHooks {
  /** Takes down the previews of repositories whose pull requests were decided. */
  removePreviews(repos: readonly string[]): Promise<void>;
  /** Continues as new between looks when the history is long (tracking can last weeks). */
  continueAsNewIfLong(): Promise<void>;
  /** Writes every open pull request's body again from the current summary. */
  rewritePullRequestBodies(): Promise<void>;
  /** A feedback round on the pull requests' new review comments, asked for by `by`; it pushes to their branches. */
  workOnReviewComments(by: string): Promise<void>;
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
    // Cleared before the look: news that comes during it makes another look right after.
    run.lookAtPullRequestsNow = false;
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
    const released = await interruptible(run, () => followReleases(run, acts, hooks));
    wait = changed || released ? policy.trackPullRequestsEvery : Math.min(wait * 2, policy.trackPullRequestsAtMostEvery);
    if (open().length === 0) return 'decided';
    await hooks.continueAsNewIfLong();
    tracking.nextLookAt = Math.min(Date.now() + wait, tracking.until);
    run.touch();
    await wf.condition(() => run.inbox.cancellation !== null || Boolean(run.inbox.reviewRound) || run.lookAtPullRequestsNow, Math.max(1, tracking.nextLookAt - Date.now()));
    // A webhook's news is looked at now, and the waits start short again.
    if (run.lookAtPullRequestsNow) wait = policy.trackPullRequestsEvery;
    if (run.inbox.cancellation) throw new RunStopped(run.inbox.cancellation.reason, run.inbox.cancellation.by);
    const asked = run.inbox.reviewRound;
    if (asked) {
      await hooks.workOnReviewComments(asked.by);
      run.inbox.reviewRound = null;
      run.setPhase('tracking');
      wait = policy.trackPullRequestsEvery;
    }
  }
}

/**
 * A dependent's pull request waits for the release its upstream's merged pull request leads to. Once that
 * release is on the registry, the dependent is checked again against it (its branch moved to the release
 * first when the release is outside the planned range), and every pull request body says so. Returns
 * whether anything new was learned.
 */
async function followReleases(run: Run, acts: RunActivities, hooks: TrackingHooks): Promise<boolean> {
  const tracking = run.state.tracking!;
  const follows = (tracking.releases ??= []);
  const plan = run.releasePlan();
  let learned = false;
  for (const step of plan) {
    const dependent = run.repo(step.repo);
    if (dependent.pr?.state !== 'open') continue;
    for (const need of step.needs) {
      if (run.repo(need.repo).pr?.state !== 'merged') continue;
      const planned = plan.find((s) => s.repo === need.repo)?.release?.version;
      if (!planned) continue;
      let follow = follows.find((f) => f.dependent === step.repo && f.name === need.name);
      if (!follow) {
        follow = { dependent: step.repo, upstream: need.repo, name: need.name, range: need.range, planned, released: null, movedTo: null, check: null };
        follows.push(follow);
        learned = true;
      }
      if (follow.check) continue;
      const found = await acts.quick.findRelease
        .executeWithOptions({ ...acts.publishOptions, summary: `look for ${need.name} ${planned} on the registry` }, [{ runId: run.state.runId, name: need.name, atLeast: planned }])
        .catch((error: unknown) => {
          if (wf.isCancellation(error)) throw error;
          run.recordError(`${need.name}: the registry could not be asked for its release: ${error instanceof Error ? error.message : String(error)}; asking again later`);
          return null;
        });
      if (!found?.version) continue;
      follow.released = found.version;
      if (!semver.satisfies(found.version, need.range)) {
        // Released as another version than planned (a major instead of a minor): the branch follows it.
        follow.movedTo = `^${found.version}`;
        const moved = await acts.publish.bumpDependencyRanges.executeWithOptions({ ...acts.publishOptions, summary: `depend on the release ${need.name}@${found.version} · ${step.repo}` }, [
          { runId: run.state.runId, requester: run.state.request.requester, repo: run.catalogRepo(step.repo), branch: dependent.branch, baseSha: dependent.baseSha!, round: run.state.rounds.at(-1)?.n ?? 0, ranges: [{ name: need.name, range: follow.movedTo }] },
        ]);
        run.applyRangeBump(moved);
      }
      const outcome = await acts.checks.runChecks.executeWithOptions({ ...acts.checkOptions, summary: `checks ${step.repo} against the released ${need.name}@${found.version}` }, [
        { runId: run.state.runId, repo: run.catalogRepo(step.repo), branch: dependent.branch, sha: dependent.headSha!, changeSet: [], upstreamPackages: [need.name] },
      ]);
      follow.check = { sha: outcome.sha, passed: outcome.passed, failing: outcome.results.filter((r) => r.status !== 'passed').map((r) => r.name), installed: outcome.installed?.[need.name] ?? null, at: Date.now() };
      learned = true;
    }
  }
  if (learned) {
    run.refreshSummary();
    await hooks.rewritePullRequestBodies();
    run.decisionChanged();
  }
  return learned;
}
