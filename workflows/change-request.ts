// The change-request workflow: one requirement from intake to pull requests. The path is fixed; the
// model's freedom is confined to two activities (proposing repositories, editing one repository).
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CatalogRepo } from '../shared/catalog-schema';
import {
  ChangeRequestInputSchema,
  type ChangeRequestInput,
  type CheckResult,
  type PreviewRecord,
  type Round,
  type RunState,
} from '../shared/contracts';
import { dependenciesWithin, dependencyOrder } from '../shared/dependency-order';
import { mergeOrderOf, oneLine, plainNarrative, renderSummaryMarkdown } from '../shared/summary';
import { activitiesFor, type RunActivities } from './activity-stubs';
import { inDependencyOrder } from './dependency-scheduler';
import { repoProblems } from './human-inputs';
import { Run, type RunSnapshot } from './run';
import { budgetedStep } from './budgeted-step';
import { CardKeeper } from './card-keeper';
import { interruptible, RunStopped, waitForPeople } from './waiting';

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
      await chooseRepositories(run, acts, parsed.data.repos);
      await editUntilChecksSettle(run, acts, run.beginRound('initial', run.state.confirmed, 'first edit of the confirmed repositories', null));
      await presentChanges(run, acts);
    }
    await reviewUntilApproved(run, acts);
    await publish(run, acts);
    return await finish(run, acts, card, 'done', describePublished(run), null);
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
    budgetedStep(run, { key: 'propose', label: 'propose repositories', repo: null, round: 0 }, (limits) =>
      acts.agent.proposeRepositories.executeWithOptions(
        { ...acts.agentOptions, summary: 'propose repositories' },
        [{
          runId: run.state.runId,
          requirement: run.state.request.requirement,
          context: run.state.context.map((c) => c.text),
          repos: inScope,
          outOfScope: run.catalog!.repositories.filter((r) => !run.state.scope.includes(r.id)).map((r) => r.id),
          limits,
        }],
      ),
    ),
  );
  // Code has the last word: only catalog repositories in the requester's scope survive.
  const repos = proposed.proposal.repos.filter((r) => run.state.scope.includes(r.id));
  run.state.proposal = { ...proposed.proposal, repos };
  run.recordTranscript(proposed.transcript);

  if (autonomy === 'free' && repos.length > 0) {
    run.confirm(dependencyOrder(repos.map((r) => r.id), (id) => run.catalogRepo(id).dependsOn));
    return;
  }
  run.setPhase('awaiting_confirmation');
  await waitForPeople(run, acts, 'confirmation', () => run.inbox.confirmation !== null);
  run.confirm(run.inbox.confirmation!.repos);
}

/** Edit, check, and while checks fail and fix rounds remain, edit the failing repositories again. */
async function editUntilChecksSettle(run: Run, acts: RunActivities, first: Round): Promise<void> {
  let round = first;
  for (let fixRounds = 0; ; fixRounds++) {
    await interruptible(run, () => editRound(run, acts, round));
    await settleExhaustedBudgets(run, acts);
    await interruptible(run, () => checkRound(run, acts, round));
    run.endRound(round);
    const failing = round.repos.filter((id) => run.repo(id).status === 'checks_failed');
    if (failing.length === 0 || fixRounds >= run.policy.maxFixRounds) return;
    round = run.beginRound('fix', failing, `checks failed in ${failing.join(', ')}`, null);
  }
}

async function editRound(run: Run, acts: RunActivities, round: Round): Promise<void> {
  run.setPhase('editing');
  const dependsOn = (id: string) => run.catalogRepo(id).dependsOn;
  const failuresOf = (id: string): CheckResult[] => (run.repo(id).checks.at(-1)?.results ?? []).filter((c) => c.status !== 'passed');
  await inDependencyOrder(round.repos, dependsOn, run.policy.editConcurrency, async (id) => {
    const repo = run.repo(id);
    repo.status = 'editing';
    run.touch();
    const step = { key: `edit ${id} r${round.n}`, label: `edit ${id} round ${round.n}`, repo: id, round: round.n };
    const result = await budgetedStep(run, step, (limits) => acts.agent.editRepository.executeWithOptions(
      { ...acts.agentOptions, summary: `edit ${id} · round ${round.n} (${round.kind})` },
      [{
        runId: run.state.runId,
        requester: run.state.request.requester,
        requirement: run.state.request.requirement,
        context: run.state.context.map((c) => c.text),
        repo: run.catalogRepo(id),
        branch: repo.branch,
        round: { n: round.n, kind: round.kind, priorFixRounds: run.priorFixRounds(id, round.n) },
        feedback: round.kind === 'feedback' ? round.reason : null,
        earlierFeedback: run.state.feedback.filter((f) => f.repos.includes(id) && f.round !== round.n).map((f) => f.text),
        failures: round.kind === 'fix' ? failuresOf(id) : [],
        upstream: dependsOn(id)
          .map((dep) => run.state.repos[dep])
          .filter((dep) => dep !== undefined && dep.commits.length > 0)
          .map((dep) => ({ repo: dep!.id, agentNotes: dep!.agentNotes, diffPreview: dep!.diffPreview })),
        knownCommits: repo.commits.length,
        limits,
      }],
    ));
    run.applyEdit(result);
  });
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

/** Previews of every repository that has one and whose work branch moved since its last preview. */
async function deployPreviews(run: Run, acts: RunActivities): Promise<void> {
  const due = run.state.confirmed.filter((id) => {
    const repo = run.repo(id);
    const latest = run.state.previews.find((p) => p.repo === id);
    return run.catalogRepo(id).preview && repo.commits.length > 0 && repo.headSha && (!latest || latest.sha !== repo.headSha || latest.status === 'removed');
  });
  if (due.length === 0) return;
  run.setPhase('previewing');
  const round = run.state.rounds.at(-1)?.n ?? 0;
  await Promise.all(
    due.map(async (id) => {
      const repo = run.repo(id);
      const request = { runId: run.state.runId, repo: run.catalogRepo(id), branch: repo.branch, sha: repo.headSha!, round, lifetimeMs: run.policy.previewLifetime };
      const record = await acts.previews.deployPreview
        .executeWithOptions({ ...acts.previewOptions, summary: `preview ${id} · round ${round}` }, [request])
        // A preview that cannot be made is reported, never a reason to hold up the review.
        .catch((error: unknown): PreviewRecord => {
          if (wf.isCancellation(error)) throw error;
          const now = Date.now();
          return { repo: id, round, sha: repo.headSha!, kind: request.repo.preview!.kind, status: 'failed', url: null, screenshot: null, output: describeFailure(error), deployedAt: now, expiresAt: now };
        });
      run.recordPreview(record);
    }),
  );
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
      continue;
    }
    const changed = await wf.condition(() => {
      const nowLive = run.state.previews.filter((p) => p.status !== 'removed');
      return nowLive.length !== live.length || Math.min(...nowLive.map((p) => p.expiresAt)) !== next;
    }, Math.max(1, next - Date.now()));
    if (!changed) await removePreviews(run, acts, live.filter((p) => p.expiresAt <= Date.now()).map((p) => p.repo));
  }
}

async function checkRound(run: Run, acts: RunActivities, round: Round): Promise<void> {
  run.setPhase('checking');
  await Promise.all(
    round.repos.map(async (id) => {
      const repo = run.repo(id);
      if (repo.commits.length === 0 || !repo.headSha) return; // nothing pushed, nothing new to check
      repo.status = 'checking';
      run.touch();
      const outcome = await acts.checks.runChecks.executeWithOptions(
        { ...acts.checkOptions, summary: `checks ${id} · round ${round.n}` },
        [{ runId: run.state.runId, repo: run.catalogRepo(id), branch: repo.branch, sha: repo.headSha }],
      );
      run.applyChecks(id, { round: round.n, sha: outcome.sha, passed: outcome.passed, results: outcome.results });
    }),
  );
}

async function reviewUntilApproved(run: Run, acts: RunActivities): Promise<void> {
  for (;;) {
    await continueAsNewIfHistoryIsLong(run);
    run.setPhase('awaiting_review');
    await waitForPeople(run, acts, 'review', () => run.inbox.approval !== null || run.inbox.feedback.length > 0);
    if (run.inbox.feedback.length === 0) return; // approved

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
  const result = await budgetedStep(run, { key: `summarize r${round}`, label: 'write the summary', repo: null, round }, (limits) =>
    acts.agent.writeNarrative.executeWithOptions({ ...acts.agentOptions, summary: `write the summary · round ${round}` }, [{
      runId: run.state.runId,
      round,
      requirement: run.state.request.requirement,
      feedback: run.state.feedback.map((f) => f.text),
      repos: mergeOrderOf(run.state).map((id) => {
        const repo = run.repo(id);
        return { id, role: repo.role, files: repo.files.map((f) => f.path), checksPassed: repo.checks.at(-1)?.passed ?? null, agentNotes: repo.agentNotes };
      }),
      limits,
    }]),
  );
  run.summarize(result.text ? { text: result.text, by: 'model' } : { text: plainNarrative(run.state), by: 'plain' });
}

async function publish(run: Run, acts: RunActivities): Promise<void> {
  run.setPhase('publishing');
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
