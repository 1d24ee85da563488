// The change-request workflow: one requirement from intake to pull requests. The path is fixed; the
// model's freedom is confined to two activities (proposing repositories, editing one repository).
import * as wf from '@temporalio/workflow';
import { approvalsNeeded } from '../domain/approvals';
import {
  hasNewReviewComments,
  ChangeRequestInputSchema,
  type ChangeRequestInput,
  type CheckResult,
  type PreviewRecord,
  type PreviewUpstream,
  type PublishRecord,
  type Round,
} from '../domain/contracts';
import { dependencyOrder } from '../domain/dependency-order';
import { changeSetOf, packageNameOf, sameUpstreams, upstreamsOf, upstreamVersionsOf } from '../domain/change-set';
import { modelChoiceFor, previewReferences, resolvePreviewEnv } from '../domain/catalog-schema';
import { changesSinceSummary, mergeOrderOf, oneLine, plainNarrative, renderSummaryMarkdown } from '../domain/summary';
import { activitiesFor, type RunActivities } from './activity-stubs';
import { inDependencyOrder } from './dependency-scheduler';
import { repoProblems } from './human-inputs';
import { Run, type RunSnapshot } from './run';
import { budgetedStep } from './budgeted-step';
import { CardKeeper } from './card-keeper';
import { interruptible, RunStopped, waitForPeople } from './waiting';
import { contextToGather, gatherContext, refreshApiShapes } from './context-intake';
import { trackUntilDecided } from './tracking';
import { renderBrief } from '../domain/brief';

export interface RunOutcome {
  phase: 'done' | 'cancelled' | 'failed';
  reason: string;
  pullRequests: { repo: string; url: string }[];
}


export async function changeRequest(input: ChangeRequestInput, resume?: RunSnapshot): Promise<RunOutcome> {
  const parsed = ChangeRequestInputSchema.safeParse(input);
  const run = resume
    ? Run.resume(resume)
    : Run.begin(parsed.success ? parsed.data : fallbackInput(input), wf.workflowInfo().workflowId);
  run.changeSetsAvailable = wf.patched('integrated-change-sets');
  run.readsContext = wf.patched('context-intake');
  run.sidePathsSettle = wf.patched('side-paths-read-settled-state');
  // Runs from before tracking end when their pull requests open; newer ones follow them until decided.
  const tracksPullRequests = wf.patched('track-pull-requests');
  run.listen();
  const acts = activitiesFor(run);
  // Beside the main path, for the whole run (a cancelled workflow cancels their waits, which is fine).
  const card = new CardKeeper(run, acts);
  card.keepUpdated().catch(() => undefined);
  expirePreviews(run, acts).catch(() => undefined);
  try {
    if (!resume) {
      if (!parsed.success) throw wf.ApplicationFailure.nonRetryable(`invalid start input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      await intake(run, acts, parsed.data.repos);
      await gatherContext(run, acts);
      await chooseRepositories(run, acts, parsed.data.repos);
      await editUntilChecksSettle(run, acts, run.beginRound('initial', run.state.confirmed, 'first edit of the confirmed repositories', null));
      await presentChanges(run, acts);
    }
    // A run that continued as new while tracking goes on tracking; any other goes on from the review.
    if (run.state.phase !== 'tracking') {
      await reviewUntilApproved(run, acts);
      await publish(run, acts);
    }
    if (!tracksPullRequests) return await finish(run, acts, card, 'done', describePublished(run), null);
    const ended = await trackUntilDecided(run, acts, {
      removePreviews: (repos) => removePreviews(run, acts, repos),
      continueAsNewIfLong: () => continueAsNewIfHistoryIsLong(run),
      rewritePullRequestBodies: () => rewritePullRequestBodies(run, acts),
      workOnReviewComments: (by) => workOnReviewComments(run, acts, by),
    });
    return await finish(run, acts, card, 'done', describeDecided(run, ended), null);
  } catch (error) {
    if (error instanceof RunStopped) return finish(run, acts, card, 'cancelled', error.reason, error.by);
    if (wf.isCancellation(error)) {
      const by = run.inbox.cancellation?.by ?? null;
      return finish(run, acts, card, 'cancelled', run.inbox.cancellation?.reason ?? 'cancelled by an operator', by);
    }
    if (error instanceof wf.ContinueAsNew) throw error;
    const reason = describeFailure(error);
    run.recordError(reason);
    await cleanUp(run, acts);
    run.end('failed', reason, null);
    await wf.CancellationScope.nonCancellable(() => card.showFinal());
    throw wf.ApplicationFailure.nonRetryable(reason, 'ChangeRequestFailed');
  }
}

// ---- the path, step by step ----

async function intake(run: Run, acts: RunActivities, fixedRepos: string[] | undefined): Promise<void> {
  run.adoptCatalog(await acts.quick.loadCatalog());
  if (run.state.scope.length === 0) throw wf.ApplicationFailure.nonRetryable(`${run.state.request.requester} may not target any repository in the catalog`);
  if (run.state.request.autonomy === 'fixed') {
    const problem = repoProblems(fixedRepos ?? [], run.state, run.catalog!);
    if (problem) throw wf.ApplicationFailure.nonRetryable(`cannot start: ${problem}`);
  }
}

async function chooseRepositories(run: Run, acts: RunActivities, fixedRepos: string[] | undefined): Promise<void> {
  const { autonomy } = run.state.request;
  if (autonomy === 'fixed') {
    run.confirm(fixedRepos!); // the user already chose; no proposal, no confirmation wait
    return;
  }
  run.setPhase('proposing');
  const inScope = run.catalog!.repositories.filter((r) => run.state.scope.includes(r.id));
  const proposed = await interruptible(run, () =>
    budgetedStep(run, { key: 'propose', label: 'propose repositories', repo: null, round: 0 }, ({ limits, spendKey }) =>
      acts.agent.proposeRepositories.executeWithOptions(
        { ...acts.agentOptions, summary: 'propose repositories' },
        [{
          runId: run.state.runId,
          requirement: run.state.request.requirement,
          context: run.state.context.map((c) => c.text),
          brief: briefOf(run),
          repos: inScope,
          outOfScope: run.catalog!.repositories.filter((r) => !run.state.scope.includes(r.id)).map((r) => r.id),
          model: modelChoiceFor(run.catalog!, 'propose', null),
          spendKey,
          limits,
        }],
      ),
    ),
  );
  // Code has the last word: only catalog repositories in the requester's scope survive.
  const repos = proposed.proposal.repos.filter((r) => run.state.scope.includes(r.id));
  run.state.proposal = { ...proposed.proposal, repos };
  run.askQuestions(proposed.proposal.questions);
  run.recordTranscript(proposed.transcript);

  if (autonomy === 'free' && repos.length > 0) {
    run.confirm(dependencyOrder(repos.map((r) => r.id), (id) => run.catalogRepo(id).dependsOn));
    return;
  }
  run.setPhase('awaiting_confirmation');
  // Context added while the proposal waits (a link, a correction of the brief) is read at once, so the
  // card people confirm on shows the brief the edits will use.
  for (;;) {
    await waitForPeople(run, acts, 'confirmation', () => run.inbox.confirmation !== null || contextToGather(run), { stillWaiting: () => run.inbox.confirmation === null });
    if (run.inbox.confirmation) break;
    await interruptible(run, () => gatherContext(run, acts));
  }
  run.confirm(run.inbox.confirmation!.repos);
}

/**
 * Edit, check, and while checks fail and fix rounds remain, edit the failing repositories again. A dependent
 * that fails while a package it installs from this run fails too gets no fix round of its own: it is
 * checked again against the package's fix, which is the likelier cause.
 */
async function editUntilChecksSettle(run: Run, acts: RunActivities, first: Round): Promise<void> {
  let round = first;
  for (let fixRounds = 0; ; fixRounds++) {
    await interruptible(run, () => editRound(run, acts, round));
    await settleExhaustedBudgets(run, acts);
    const checked = await interruptible(run, () => checkRound(run, acts, round));
    run.endRound(round);
    const failing = checked.filter((id) => run.repo(id).status === 'checks_failed');
    if (failing.length === 0 || fixRounds >= run.policy.maxFixRounds) return;
    const waiting = run.integrates ? failing.filter((id) => upstreamsOf(run.catalog!, id).some((dep) => failing.includes(dep))) : [];
    const toFix = failing.filter((id) => !waiting.includes(id));
    const reason = `checks failed in ${toFix.join(', ')}${waiting.length ? ` (${waiting.join(', ')} will be checked again against ${waiting.length === 1 ? 'its' : 'their'} upstream fix)` : ''}`;
    round = run.beginRound('fix', toFix, reason, null);
  }
}

async function editRound(run: Run, acts: RunActivities, round: Round): Promise<void> {
  if (contextToGather(run)) await gatherContext(run, acts);
  run.setPhase('editing');
  const dependsOn = (id: string) => run.catalogRepo(id).dependsOn;
  const failuresOf = (id: string): CheckResult[] => (run.repo(id).checks.at(-1)?.results ?? []).filter((c) => c.status !== 'passed');
  await inDependencyOrder(round.repos, dependsOn, run.policy.editConcurrency, async (id) => {
    const repo = run.repo(id);
    repo.status = 'editing';
    run.touch();
    const step = { key: `edit ${id} r${round.n}`, label: `edit ${id} round ${round.n}`, repo: id, round: round.n };
    const result = await budgetedStep(run, step, ({ limits, spendKey }) => acts.agent.editRepository.executeWithOptions(
      { ...acts.agentOptions, summary: `edit ${id} · round ${round.n} (${round.kind})` },
      [{
        runId: run.state.runId,
        requester: run.state.request.requester,
        requirement: run.state.request.requirement,
        context: contextWithAnswers(run),
        brief: briefOf(run),
        repo: run.catalogRepo(id),
        branch: repo.branch,
        round: { n: round.n, kind: round.kind, priorFixRounds: run.priorFixRounds(id, round.n) },
        feedback: round.kind === 'feedback' ? round.reason : null,
        earlierFeedback: run.state.feedback.filter((f) => f.repos.includes(id) && f.round !== round.n).map((f) => f.text),
        failures: round.kind === 'fix' ? failuresOf(id) : [],
        upstream: dependsOn(id)
          .map((dep) => run.state.repos[dep])
          .filter((dep) => dep !== undefined && dep.commits.length > 0)
          .map((dep) => ({ repo: dep!.id, agentNotes: dep!.agentNotes, diffPreview: dep!.diffPreview, consumedAs: consumedAs(run, id, dep!.id) })),
        knownCommits: repo.commits.length,
        changeSet: run.integrates ? changeSetOf(run.state, run.catalog!, id) : [],
        model: modelChoiceFor(run.catalog!, round.kind === 'fix' ? 'fix' : 'edit', id),
        spendKey,
        limits,
      }],
    ));
    run.applyEdit(result);
    // An api repository whose definition this edit changed: the apps edited after it get the new shapes.
    if (result.commit) await refreshApiShapes(run, acts, id, result.commit.files);
    // The package's round is complete once published: its dependents' edits and checks come after it.
    if (run.integrates && result.commit && run.catalogRepo(id).publish) await publishPrerelease(run, acts, id, round.n);
  });
}

/** How `id` consumes `dep` as a package, if it does: the name, and the prerelease its installs will use. */
function consumedAs(run: Run, id: string, dep: string): { name: string; version: string | null } | null {
  if (!run.integrates || !run.catalogRepo(dep).publish) return null;
  const name = packageNameOf(run.catalogRepo(dep), run.repo(dep).publishes);
  if (!name) return null;
  return { name, version: changeSetOf(run.state, run.catalog!, id).find((p) => p.repo === dep)?.version ?? null };
}

/**
 * Publishes a package repository's newly committed round as this run's prerelease. A package that cannot
 * be built or published is reported for that repository; its dependents use the last prerelease of the
 * run (or the released version), which the summary states. It never fails the run.
 */
async function publishPrerelease(run: Run, acts: RunActivities, id: string, round: number): Promise<void> {
  const repo = run.repo(id);
  repo.status = 'publishing_prerelease';
  run.touch();
  const request = { runId: run.state.runId, repo: run.catalogRepo(id), branch: repo.branch, sha: repo.headSha!, baseSha: repo.baseSha!, round, changeSet: changeSetOf(run.state, run.catalog!, id) };
  const record = await acts.checks.publishPackage
    .executeWithOptions({ ...acts.checkOptions, summary: `publish ${id} · round ${round}` }, [request])
    .catch((error: unknown): PublishRecord => {
      if (wf.isCancellation(error)) throw error;
      return { repo: id, round, sha: request.sha, name: null, version: null, distTag: '', releasedVersion: null, headVersion: null, status: 'failed', reused: false, output: describeFailure(error), at: Date.now() };
    });
  repo.status = 'edited';
  run.recordPublish(id, record);
}

/**
 * When edits stopped at a budget limit, the requester decides: extend the budget and let the agent
 * continue (a `continue` round for those repositories), or go on to review the partial work.
 */
async function settleExhaustedBudgets(run: Run, acts: RunActivities): Promise<void> {
  for (;;) {
    const stopped = run.state.confirmed.filter((id) => run.repo(id).stoppedBy !== null);
    if (stopped.length === 0) return;
    const stops = stopped.map((id) => run.repo(id).stoppedBy!);
    run.state.budget.exhausted = { repos: stopped, stops };
    run.setPhase('awaiting_budget');
    const answered = await waitForPeople(run, acts, 'budget', () => run.inbox.budgetDecision !== null, { onExpiry: 'proceed' });
    const decision = run.inbox.budgetDecision;
    run.inbox.budgetDecision = null;
    run.state.budget.exhausted = null;
    for (const id of stopped) run.repo(id).stoppedBy = null;
    run.touch();
    if (!answered || !decision || decision.decision === 'continue') return; // review the partial work
    run.extendBudget(decision, stops);
    const round = run.beginRound('continue', stopped, `budget extended by ${decision.by}`, decision.by);
    await interruptible(run, () => editRound(run, acts, round));
    run.endRound(round);
  }
}

/**
 * Previews of every repository that has one and whose work branch moved since its last preview, or whose
 * upstream changed (a package prerelease it installs, a preview it points at): one change set, deployed
 * in dependency order so an app's preview can be pointed at its API's preview of the same run.
 */
async function deployPreviews(run: Run, acts: RunActivities): Promise<void> {
  const withPreview = run.state.confirmed.filter((id) => run.catalogRepo(id).preview && run.repo(id).commits.length > 0 && run.repo(id).headSha);
  const round = run.state.rounds.at(-1)?.n ?? 0;
  const requestFor = (id: string) => {
    const repo = run.repo(id);
    const catalogRepo = run.catalogRepo(id);
    const upstream = run.integrates ? previewUpstream(run, id) : { packages: [], previews: [], unresolved: [] };
    const env = run.integrates ? resolvePreviewEnv(catalogRepo.preview!.env ?? {}, (ref) => previewRoot(run, ref)).env : {};
    return { runId: run.state.runId, repo: catalogRepo, branch: repo.branch, sha: repo.headSha!, round, lifetimeMs: run.policy.previewLifetime, changeSet: run.integrates ? changeSetOf(run.state, run.catalog!, id) : [], env, upstream };
  };
  const isDue = (id: string, request: ReturnType<typeof requestFor>) => {
    const latest = run.state.previews.find((p) => p.repo === id);
    if (!latest || latest.status === 'removed' || latest.sha !== run.repo(id).headSha) return true;
    return run.integrates && !samePreviewUpstream(latest.upstream, request.upstream);
  };
  let started = false;
  const deploy = async (id: string) => {
    const request = requestFor(id); // after its upstream previews, so it points at their addresses
    if (!isDue(id, request)) return;
    if (!started) run.setPhase('previewing');
    started = true;
    const record = await acts.previews.deployPreview
      .executeWithOptions({ ...acts.previewOptions, summary: `preview ${id} · round ${round}` }, [request])
      // A preview that cannot be made is reported, never a reason to hold up the review.
      .catch((error: unknown): PreviewRecord => {
        if (wf.isCancellation(error)) throw error;
        const now = Date.now();
        return { repo: id, round, sha: request.sha, kind: request.repo.preview!.kind, status: 'failed', url: null, screenshot: null, output: describeFailure(error), deployedAt: now, expiresAt: now, upstream: request.upstream };
      });
    run.recordPreview(record);
  };
  if (run.integrates) {
    await inDependencyOrder(withPreview, (id) => previewDependencies(run, id), withPreview.length || 1, deploy);
  } else {
    const due = withPreview.filter((id) => isDue(id, requestFor(id)));
    if (due.length === 0) return;
    await Promise.all(due.map(deploy));
  }
}

function readyPreview(run: Run, repo: string): PreviewRecord | undefined {
  return run.state.previews.find((p) => p.repo === repo && p.status === 'ready' && p.url);
}

/** What `${preview:<repo>}` becomes: the preview's root address (a service's, not the page reviewers open). */
function previewRoot(run: Run, repo: string): string | null {
  const preview = readyPreview(run, repo);
  return preview ? (preview.rootUrl ?? preview.url) : null;
}

/** The repositories whose previews `id`'s preview points at (its `${preview:…}` references). */
function previewDependencies(run: Run, id: string): string[] {
  return [...new Set(Object.values(run.catalogRepo(id).preview?.env ?? {}).flatMap(previewReferences))];
}

/** What `id`'s preview runs with: the run's packages it installs, and the upstream previews it points at. */
function previewUpstream(run: Run, id: string): PreviewUpstream {
  const env = run.catalogRepo(id).preview?.env ?? {};
  const previews: PreviewUpstream['previews'] = [];
  for (const [variable, value] of Object.entries(env)) {
    for (const ref of previewReferences(value)) {
      const preview = readyPreview(run, ref);
      if (preview) previews.push({ repo: ref, sha: preview.sha, url: previewRoot(run, ref)!, variable });
    }
  }
  const unresolved = resolvePreviewEnv(env, (ref) => previewRoot(run, ref)).unresolved;
  return { packages: upstreamVersionsOf(run.state, run.catalog!, id), previews, unresolved };
}

function samePreviewUpstream(a: PreviewUpstream, b: PreviewUpstream): boolean {
  const previews = (u: PreviewUpstream) => u.previews.map((p) => `${p.variable}=${p.repo}@${p.sha}`).sort().join(',');
  return sameUpstreams(a.packages, b.packages) && previews(a) === previews(b) && a.unresolved.join(',') === b.unresolved.join(',');
}

/** Takes previews down: when the run ends, and when one outlives the policy's lifetime. */
async function removePreviews(run: Run, acts: RunActivities, repos: readonly string[]): Promise<void> {
  const live = run.state.previews.filter((p) => repos.includes(p.repo) && p.status !== 'removed');
  if (live.length === 0) return;
  await acts.previews.removePreviews
    .executeWithOptions({ ...acts.previewOptions, summary: `remove previews of ${live.map((p) => p.repo).join(', ')}` }, [
      { runId: run.state.runId, previews: live.map((record) => ({ repo: run.catalogRepo(record.repo), record })) },
    ])
    .then(
      () => run.markPreviewsRemoved(live.map((p) => p.repo)),
      (error: unknown) => run.recordError(`previews could not all be removed: ${describeFailure(error)}`),
    );
}

/** Runs beside the main path for the whole run: removes each preview when its lifetime is over. */
async function expirePreviews(run: Run, acts: RunActivities): Promise<never> {
  for (;;) {
    const live = run.state.previews.filter((p) => p.status !== 'removed');
    const next = live.length ? Math.min(...live.map((p) => p.expiresAt)) : null;
    if (next === null) {
      await wf.condition(() => run.state.previews.some((p) => p.status !== 'removed'));
      await run.settled();
      continue;
    }
    const changed = await wf.condition(() => {
      const nowLive = run.state.previews.filter((p) => p.status !== 'removed');
      return nowLive.length !== live.length || Math.min(...nowLive.map((p) => p.expiresAt)) !== next;
    }, Math.max(1, next - Date.now()));
    await run.settled();
    if (!changed) await removePreviews(run, acts, live.filter((p) => p.expiresAt <= Date.now()).map((p) => p.repo));
  }
}

/**
 * Checks the round's repositories, and (with change sets) every other changed repository whose upstream
 * packages moved since its last check, e.g. the app after a fix round of the package it installs.
 * Returns the repositories checked.
 */
async function checkRound(run: Run, acts: RunActivities, round: Round): Promise<string[]> {
  run.setPhase('checking');
  const due = run.integrates ? [...round.repos, ...run.state.confirmed.filter((id) => !round.repos.includes(id) && upstreamMoved(run, id))] : round.repos;
  await Promise.all(
    due.map(async (id) => {
      const repo = run.repo(id);
      if (repo.commits.length === 0 || !repo.headSha) return; // nothing pushed, nothing new to check
      repo.status = 'checking';
      run.touch();
      // Recorded also when change sets are switched off: the released versions, said so.
      const against = run.changeSetsAvailable ? upstreamVersionsOf(run.state, run.catalog!, id) : [];
      const changeSet = run.integrates ? changeSetOf(run.state, run.catalog!, id) : [];
      const outcome = await acts.checks.runChecks.executeWithOptions(
        { ...acts.checkOptions, summary: `checks ${id} · round ${round.n}` },
        [{ runId: run.state.runId, repo: run.catalogRepo(id), branch: repo.branch, sha: repo.headSha, changeSet, upstreamPackages: against.map((a) => a.name) }],
      );
      const installed = outcome.installed ?? {};
      run.applyChecks(id, { round: round.n, sha: outcome.sha, passed: outcome.passed, results: outcome.results, against: against.map((a) => ({ ...a, installed: installed[a.name] ?? null })) });
    }),
  );
  return due;
}

/** A changed repository whose last check installed other upstream versions than it would now. */
function upstreamMoved(run: Run, id: string): boolean {
  const last = run.repo(id).checks.at(-1);
  return run.repo(id).commits.length > 0 && last !== undefined && !sameUpstreams(last.against, upstreamVersionsOf(run.state, run.catalog!, id));
}

async function reviewUntilApproved(run: Run, acts: RunActivities): Promise<void> {
  for (;;) {
    await continueAsNewIfHistoryIsLong(run);
    run.setPhase('awaiting_review');
    // Separation of duties: who must approve is settled when the review begins (kept across continue-as-new).
    if (run.policy.deciders === 'owners-not-requester') run.state.approvals ??= approvalsNeeded(run.state, run.catalog!);
    await waitForPeople(run, acts, 'review', () => run.inbox.approval !== null || run.inbox.feedback.length > 0);
    if (run.inbox.feedback.length === 0) return; // approved
    if (run.state.approvals) run.state.approvals = null; // the new round's changes need new approvals

    const items = run.inbox.feedback.splice(0);
    const named = items.some((f) => f.repos === null) ? run.state.confirmed : [...new Set(items.flatMap((f) => f.repos ?? []))];
    const repos = run.state.confirmed.filter((id) => named.includes(id));
    const text = items.map((f) => f.text).join('\n\n');
    const round = run.beginRound('feedback', repos, text, items.map((f) => f.by).join(', '));
    for (const f of items) run.state.feedback.push({ by: f.by, text: f.text, at: f.at, repos, round: round.n });
    await editUntilChecksSettle(run, acts, round);
    await presentChanges(run, acts);
  }
}

/** After a cycle of edits and checks: previews, then the combined summary with its narrative. */
async function presentChanges(run: Run, acts: RunActivities): Promise<void> {
  await interruptible(run, () => deployPreviews(run, acts));
  const round = run.state.rounds.at(-1)?.n ?? 0;
  const result = await budgetedStep(run, { key: `summarize r${round}`, label: 'write the summary', repo: null, round }, ({ limits, spendKey }) =>
    acts.agent.writeNarrative.executeWithOptions({ ...acts.agentOptions, summary: `write the summary · round ${round}` }, [{
      runId: run.state.runId,
      round,
      requirement: run.state.request.requirement,
      brief: briefOf(run),
      feedback: run.state.feedback.map((f) => f.text),
      repos: mergeOrderOf(run.state).map((id) => {
        const repo = run.repo(id);
        const earlierNotes = (repo.notes ?? []).slice(0, -1).map((n) => `round ${n.round}: ${n.text}`);
        return { id, role: repo.role, files: repo.files.map((f) => f.path), checksPassed: repo.checks.at(-1)?.passed ?? null, agentNotes: repo.agentNotes, earlierNotes };
      }),
      // After feedback the narrative is written again, told what it said and what changed since.
      previousNarrative: run.state.summary?.narrative ?? null,
      sincePrevious: run.state.summary ? changesSinceSummary(run.state) : [],
      model: modelChoiceFor(run.catalog!, 'summarize', null),
      spendKey,
      limits,
    }]),
  );
  run.summarize(result.text ? { text: result.text, by: 'model' } : { text: plainNarrative(run.state), by: 'plain' });
}

async function publish(run: Run, acts: RunActivities): Promise<void> {
  run.setPhase('publishing');
  if (run.integrates) await dependOnPlannedReleases(run, acts);
  const order = mergeOrderOf(run.state).filter((id) => run.repo(id).commits.length > 0);
  const title = oneLine(run.state.request.requirement, 72);
  const body = run.state.summary ? renderSummaryMarkdown(run.state.summary) : '';
  await Promise.all(
    order.map(async (id) => {
      const repo = run.repo(id);
      repo.status = 'publishing';
      run.touch();
      const outcome = await acts.publish.openPullRequest
        .executeWithOptions({ ...acts.publishOptions, summary: `pull request ${id}` }, [{ runId: run.state.runId, repo: run.catalogRepo(id), branch: repo.branch, title, body }])
        // Retries are spent (rate limits that did not lift): report it for this repository, open the others.
        .catch((error: unknown) => ({ repo: id, pr: null, error: `${id}: ${describeFailure(error)}; try again later (approve once more after the limit resets)` }));
      repo.pr = outcome.pr;
      repo.error = outcome.error;
      repo.status = outcome.pr ? 'published' : 'failed';
      if (outcome.error) run.recordError(outcome.error, id);
      run.touch();
    }),
  );
  run.refreshSummary();
  const opened = order.filter((id) => run.repo(id).pr).map((id) => ({ repo: run.catalogRepo(id), number: run.repo(id).pr!.number, url: run.repo(id).pr!.url }));
  if (opened.length > 1) {
    await acts.publish.linkPullRequests
      .executeWithOptions({ ...acts.publishOptions, summary: 'link sibling pull requests' }, [{ runId: run.state.runId, summary: run.state.summary!, pullRequests: opened }])
      .catch((error: unknown) => run.recordError(`the pull requests were opened but not all could be linked to each other: ${describeFailure(error)}`));
  }
}

/**
 * What reviewers wrote on the open pull requests, as one feedback round on those repositories: edited,
 * checked and previewed as any round, pushed to the pull requests' branches, and the bodies written again.
 */
async function workOnReviewComments(run: Run, acts: RunActivities, by: string): Promise<void> {
  const withComments = mergeOrderOf(run.state).filter((id) => hasNewReviewComments(run.repo(id).pr));
  if (withComments.length === 0) return;
  const feedback = await interruptible(run, () =>
    acts.publish.readReviewFeedback.executeWithOptions({ ...acts.publishOptions, summary: `read the review comments of ${withComments.join(', ')}` }, [
      { runId: run.state.runId, pullRequests: withComments.map((id) => ({ repo: run.catalogRepo(id), number: run.repo(id).pr!.number })) },
    ]),
  ).catch((error: unknown) => {
    if (error instanceof RunStopped || wf.isCancellation(error)) throw error;
    run.recordError(`the review comments could not be read: ${describeFailure(error)}`);
    return [];
  });
  const fresh = feedback.flatMap((f) => f.comments.filter((c) => !(run.repo(f.repo).pr!.addressedComments ?? []).includes(c.id)).map((c) => ({ ...c, repo: f.repo })));
  for (const f of feedback) run.repo(f.repo).pr!.addressedComments = f.comments.map((c) => c.id);
  if (fresh.length === 0) return run.touch();
  const repos = run.state.confirmed.filter((id) => fresh.some((c) => c.repo === id));
  const text = fresh.map((c) => `${c.by} on ${c.repo}${c.path ? ` ${c.path}${c.line ? `:${c.line}` : ''}` : ''}: ${c.text}`).join('\n');
  const round = run.beginRound('feedback', repos, `Review comments on the pull requests:\n${text}`, by);
  run.state.feedback.push({ by, text, at: Date.now(), repos, round: round.n });
  await editUntilChecksSettle(run, acts, round);
  await presentChanges(run, acts);
  await rewritePullRequestBodies(run, acts);
}

/** Every open pull request's body written again from the current summary (what tracking learned since). */
async function rewritePullRequestBodies(run: Run, acts: RunActivities): Promise<void> {
  const open = mergeOrderOf(run.state).filter((id) => run.repo(id).pr);
  if (open.length === 0 || !run.state.summary) return;
  const pullRequests = open.map((id) => ({ repo: run.catalogRepo(id), number: run.repo(id).pr!.number, url: run.repo(id).pr!.url }));
  await acts.publish.linkPullRequests
    .executeWithOptions({ ...acts.publishOptions, summary: 'update the pull requests with what changed since they opened' }, [{ runId: run.state.runId, summary: run.state.summary, pullRequests }])
    .catch((error: unknown) => {
      if (wf.isCancellation(error)) throw error;
      run.recordError(`the pull requests could not all be updated: ${describeFailure(error)}`);
    });
}

/**
 * The plan, carried out in code before the PRs open: each changed dependent's branch depends on the
 * planned release of every package it waits for (`^<release>`, never this run's prerelease).
 */
async function dependOnPlannedReleases(run: Run, acts: RunActivities): Promise<void> {
  const round = run.state.rounds.at(-1)?.n ?? 0;
  const steps = run.releasePlan().filter((step) => step.needs.length > 0 && run.repo(step.repo).commits.length > 0);
  await Promise.all(
    steps.map(async (step) => {
      const repo = run.repo(step.repo);
      const ranges = step.needs.map((n) => ({ name: n.name, range: n.range }));
      const result = await acts.publish.bumpDependencyRanges
        .executeWithOptions({ ...acts.publishOptions, summary: `depend on planned releases · ${step.repo}` }, [{ runId: run.state.runId, requester: run.state.request.requester, repo: run.catalogRepo(step.repo), branch: repo.branch, baseSha: repo.baseSha!, round, ranges }])
        .catch((error: unknown) => {
          if (wf.isCancellation(error)) throw error;
          run.recordError(`${step.repo}: its branch could not be moved to the planned releases (${ranges.map((r) => `${r.name} ${r.range}`).join(', ')}): ${describeFailure(error)}`, step.repo);
          return null;
        });
      if (result) run.applyRangeBump(result);
    }),
  );
  run.refreshSummary();
}

/** Between rounds, at a quiet point: hand the whole state and any pending inputs to a fresh run. */
async function continueAsNewIfHistoryIsLong(run: Run): Promise<void> {
  const info = wf.workflowInfo();
  if (!info.continueAsNewSuggested && info.historyLength < run.policy.continueAsNewAfterEvents) return;
  await wf.condition(wf.allHandlersFinished);
  const { request, confirmed } = run.state;
  const input: ChangeRequestInput = {
    requirement: request.requirement,
    requester: request.requester,
    conversation: request.conversation,
    autonomy: request.autonomy,
    repos: confirmed,
  };
  await wf.continueAsNew<typeof changeRequest>(input, run.snapshot());
}

// ---- endings ----

async function finish(run: Run, acts: RunActivities, card: CardKeeper, phase: 'done' | 'cancelled', reason: string, by: string | null): Promise<RunOutcome> {
  await cleanUp(run, acts);
  run.end(phase, reason, by);
  await wf.CancellationScope.nonCancellable(() => card.showFinal());
  const pullRequests = Object.values(run.state.repos).flatMap((r) => (r.pr ? [{ repo: r.id, url: r.pr.url }] : []));
  return { phase, reason, pullRequests };
}

/** What a run leaves behind when it ends, however it ends (even when an operator cancelled it). */
async function cleanUp(run: Run, acts: RunActivities): Promise<void> {
  await wf.CancellationScope.nonCancellable(() => removePreviews(run, acts, run.state.previews.map((p) => p.repo)));
}

/** How the pull requests ended: each merged or closed, or still open when tracking stopped. */
function describeDecided(run: Run, ended: 'decided' | 'expired'): string {
  const pulls = mergeOrderOf(run.state).flatMap((id) => (run.repo(id).pr ? [`${id} #${run.repo(id).pr!.number} ${run.repo(id).pr!.state}`] : []));
  if (pulls.length === 0) return describePublished(run);
  const list = pulls.join(', ');
  return ended === 'decided' ? `every pull request is decided: ${list}` : `tracking ended after ${Math.round(run.policy.trackPullRequestsFor / 86_400_000)} days with pull requests still open: ${list}`;
}

function describePublished(run: Run): string {
  const repos = Object.values(run.state.repos);
  const opened = repos.filter((r) => r.pr);
  const failed = repos.filter((r) => r.error);
  const parts = [`${opened.length} pull request${opened.length === 1 ? '' : 's'} opened or updated`];
  if (failed.length) parts.push(`${failed.length} could not be opened: ${failed.map((r) => r.error).join('; ')}`);
  const unchanged = repos.filter((r) => r.commits.length === 0).map((r) => r.id);
  if (unchanged.length) parts.push(`no changes in ${unchanged.join(', ')}`);
  return parts.join('; ');
}

/** What people added, and the proposal's questions with how they were answered, as the edits read them. */
function contextWithAnswers(run: Run): string[] {
  const answered = (run.state.questions ?? []).flatMap((q) =>
    !q.answer ? [] : [q.answer.how === 'not needed' ? `The proposal asked: "${q.text}" ${q.answer.by} said it is not needed.` : `The proposal asked: "${q.text}" ${q.answer.by} answered: "${q.answer.text}"`],
  );
  return [...run.state.context.map((c) => c.text), ...answered];
}

/** The run's requirement brief as the agent steps read it, beside the requirement as typed. */
function briefOf(run: Run): string | null {
  const record = run.state.intake.brief;
  return record ? renderBrief(record.brief, run.state.intake.sources, record.operations ?? []) : null;
}

/** The innermost readable message of a failure chain (activity failure → application failure → cause). */
function describeFailure(error: unknown): string {
  const messages: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof wf.ActivityFailure) messages.push(`step ${current.activityType} failed`);
    else if (current.message) messages.push(current.message);
    current = (current as { cause?: unknown }).cause;
  }
  const [first, ...rest] = messages;
  return [first, rest.at(-1)].filter((m, i, all) => m && all.indexOf(m) === i).join(': ') || 'unknown error';
}

/** Enough of an invalid start input to record who asked for what before failing the run readably. */
function fallbackInput(input: ChangeRequestInput): Parameters<typeof Run.begin>[0] {
  const raw = (input ?? {}) as Partial<Record<string, unknown>>;
  return {
    requirement: typeof raw.requirement === 'string' ? raw.requirement : '(invalid)',
    requester: typeof raw.requester === 'string' ? raw.requester : '(unknown)',
    conversation: { platform: 'cli', channel: 'unknown' },
    autonomy: 'guided',
  };
}
