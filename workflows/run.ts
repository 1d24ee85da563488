// A run's state and the handful of ways it changes. Everything here is deterministic workflow code:
// time comes from the workflow clock (Date.now() inside a workflow is the task's time).
import * as wf from '@temporalio/workflow';
import { afterTheRunSettles } from './settled';
import { type Catalog, type CatalogRepo, type Policy, findRepo, reposInScope } from '../domain/catalog-schema';
import {
  AgentProgressSchema,
  StepSpendSchema,
  type CheckRun,
  type ParsedChangeRequestInput,
  type Phase,
  type PreviewRecord,
  type PublishRecord,
  type RepoProgress,
  type Round,
  type RoundKind,
  type RunState,
  type SignalName,
  type SignalPayload,
  type StepUsage,
  type Transcript,
} from '../domain/contracts';
import { SA_AUTONOMY, SA_COST_USD, SA_PHASE, SA_REPOS, SA_REQUESTER } from '../domain/search-attributes';
import {
  addSpend,
  extend,
  limitsFrom,
  minLimits,
  noSpend,
  remaining,
  subtractLimits,
  sumLimits,
  tighten,
  type BudgetDimension,
  type BudgetLimits,
  type Spend,
} from '../domain/budget';
import type { StepLimits } from '../domain/budget';
import { buildSummary, mergeOrderOf, type Narrative } from '../domain/summary';
import type { BumpRangesResult, EditResult, TrackedPullRequest } from '../domain/activity-contracts';
import { planReleases } from '../domain/change-set';
import { agentProgressSignal, HUMAN_SIGNALS, inputVerdictQuery, pullRequestsChangedSignal, stateQuery, stepSpendQuery, stepSpendSignal, transcriptQuery } from './definitions';
import { applyInput, emptyInbox, judgeInput, type PendingInputs } from './human-inputs';
import { resolveInput } from '../domain/human-inputs';
import { emptyIntake } from '../domain/brief';

const KEPT_INPUT_RECORDS = 200;
/** Transcripts are kept for the latest rounds only; older ones remain in earlier histories. */
const KEPT_TRANSCRIPTS = 30;

/** Everything a run needs to continue as new without losing anything. */
export interface RunSnapshot {
  state: RunState;
  catalog: Catalog;
  processedKeys: string[];
  inbox: PendingInputs;
  transcripts: Transcript[];
}

export class Run {
  /** A webhook said a pull request changed: tracking looks now (workflows/tracking.ts). */
  lookAtPullRequestsNow = false;
  /** Budget set aside for steps that are running now, so parallel steps cannot overspend the run together. */
  private readonly reservations = new Map<string, BudgetLimits>();
  private budgetOverrides: ParsedChangeRequestInput['budget'];
  /**
   * Set once at the start (behind `patched('integrated-change-sets')`): runs recorded before change sets
   * existed keep checking every repository against released packages.
   */
  changeSetsAvailable = false;
  /**
   * Set once at the start (behind `patched('context-intake')`): runs recorded before context intake keep
   * working from the requirement as typed.
   */
  readsContext = false;
  /**
   * Set once at the start (behind `patched('side-paths-read-settled-state')`): the card keeper and the
   * preview expiry wait for the run to settle before deciding (workflows/settled.ts). Runs recorded before
   * decided from the state as it was when they woke.
   */
  sidePathsSettle = false;

  /** What a side path awaits before it reads the shared state (nothing for runs recorded before). */
  async settled(): Promise<void> {
    if (this.sidePathsSettle) await afterTheRunSettles();
  }

  private constructor(
    readonly state: RunState,
    public catalog: Catalog | null,
    private readonly processedKeys: Set<string>,
    readonly inbox: PendingInputs,
    private readonly transcripts: Transcript[],
  ) {}

  static begin(input: ParsedChangeRequestInput, runId: string): Run {
    const now = Date.now();
    const state: RunState = {
      runId,
      version: 1,
      cardVersion: 1,
      card: null,
      phase: 'intake',
      phaseHistory: [{ phase: 'intake', at: now }],
      request: {
        requirement: input.requirement,
        requester: input.requester,
        conversation: input.conversation,
        autonomy: input.autonomy ?? 'guided',
        createdAt: now,
      },
      scope: [],
      catalogRepos: [],
      proposal: null,
      confirmed: [],
      repos: {},
      rounds: [],
      context: [],
      intake: emptyIntake(),
      feedback: [],
      summary: null,
      releaseChoices: {},
      previews: [],
      // Real limits arrive with the catalog snapshot (adoptCatalog); nothing is spent before that.
      budget: { perStep: zeroLimits(), perRun: zeroLimits(), used: noSpend(), steps: [], inFlight: {}, exhausted: null },
      waiting: null,
      inputs: [],
      transcripts: [],
      lastError: null,
      outcome: null,
      generation: 0,
    };
    const run = new Run(state, null, new Set(), emptyInbox(), []);
    run.budgetOverrides = input.budget;
    return run;
  }

  static resume(snapshot: RunSnapshot): Run {
    const run = new Run(withCurrentFields(snapshot.state), snapshot.catalog, new Set(snapshot.processedKeys), snapshot.inbox, snapshot.transcripts);
    run.state.generation += 1;
    run.touch();
    return run;
  }

  snapshot(): RunSnapshot {
    return { state: this.state, catalog: this.catalog!, processedKeys: [...this.processedKeys], inbox: this.inbox, transcripts: this.transcripts };
  }

  get policy(): Policy {
    return this.catalog!.policy;
  }

  /** Whether dependents are installed, checked and previewed against the run's in-flight packages. */
  get integrates(): boolean {
    return this.changeSetsAvailable && this.catalog?.policy.integrateChangeSets === true;
  }

  catalogRepo(id: string): CatalogRepo {
    const repo = findRepo(this.catalog!, id);
    if (!repo) throw new Error(`repository ${id} is not in the catalog snapshot`);
    return repo;
  }

  repo(id: string): RepoProgress {
    return this.state.repos[id]!;
  }

  // ---- signal and query handlers ----

  listen(): void {
    wf.setHandler(stateQuery, () => this.state);
    wf.setHandler(transcriptQuery, (id: string) => this.transcripts.find((t) => t.id === id) ?? null);
    wf.setHandler(inputVerdictQuery, (key: string) => this.state.inputs.find((r) => r.key === key) ?? null);
    for (const [name, definition] of Object.entries(HUMAN_SIGNALS)) {
      wf.setHandler(definition, (payload: unknown) => this.receive(name as SignalName, payload));
    }
    wf.setHandler(stepSpendQuery, (key: string) => this.state.budget.inFlight[key] ?? null);
    wf.setHandler(stepSpendSignal, (payload: unknown) => {
      const parsed = StepSpendSchema.safeParse(payload);
      // Only for a step that is running: a late report after it settled must not resurrect it.
      if (!parsed.success || !this.reservations.has(parsed.data.key)) return;
      this.state.budget.inFlight[parsed.data.key] = parsed.data.spend;
      this.touch();
    });
    wf.setHandler(pullRequestsChangedSignal, () => {
      this.lookAtPullRequestsNow = true;
    });
    wf.setHandler(agentProgressSignal, (payload: unknown) => {
      const parsed = AgentProgressSchema.safeParse(payload);
      if (!parsed.success) return;
      const progress = parsed.data;
      if (progress.repo && this.state.repos[progress.repo]) this.repo(progress.repo).progress = progress;
      this.touch();
    });
  }

  private receive(sent: SignalName, payload: unknown): void {
    const signal = resolveInput(sent, this.state.phase);
    const raw = (payload ?? {}) as { key?: unknown; by?: unknown };
    const key = typeof raw.key === 'string' ? raw.key.trim() : '';
    if (key && this.processedKeys.has(key)) return; // a repeated key changes nothing
    const by = typeof raw.by === 'string' && raw.by.trim() ? raw.by.trim() : '(unknown)';
    const now = Date.now();
    const context = this.catalog ? { state: this.state, catalog: this.catalog, inbox: this.inbox, now } : null;
    const judgement = context
      ? judgeInput(signal, payload, context)
      : { outcome: 'refused' as const, reason: 'the run is still starting; try again in a moment' };
    if (key) this.processedKeys.add(key);
    this.state.inputs.push({
      key: key || '(none)',
      signal,
      by,
      at: now,
      outcome: judgement.outcome,
      ...(judgement.outcome === 'refused' ? { reason: judgement.reason } : {}),
    });
    if (this.state.inputs.length > KEPT_INPUT_RECORDS) this.state.inputs.splice(0, this.state.inputs.length - KEPT_INPUT_RECORDS);
    if (judgement.outcome === 'accepted' && context) applyInput(judgement.input, context);
    this.touch();
  }

  // ---- state changes made by the workflow ----

  /** Every change bumps the version (cards and clients use it to spot stale views) and the UI's details. */
  touch(): void {
    this.state.version += 1;
    wf.setCurrentDetails(this.details());
  }

  setPhase(phase: Phase): void {
    if (this.state.phase === phase) return;
    this.state.phase = phase;
    this.state.phaseHistory.push({ phase, at: Date.now() });
    wf.upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    this.decisionChanged();
  }

  /** What people decide on changed: cards showing the old version are now out of date. */
  decisionChanged(): void {
    this.state.cardVersion += 1;
    this.touch();
  }

  adoptCatalog(catalog: Catalog): void {
    this.catalog = catalog;
    this.state.scope = reposInScope(catalog, this.state.request.requester);
    this.state.catalogRepos = catalog.repositories.map((r) => ({ id: r.id, role: r.role, description: r.description, dependsOn: r.dependsOn, url: r.url }));
    this.state.budget.perStep = tighten(limitsFrom(catalog.policy.budget.perStep), this.budgetOverrides?.perStep);
    this.state.budget.perRun = tighten(limitsFrom(catalog.policy.budget.perRun), this.budgetOverrides?.perRun);
    wf.upsertSearchAttributes([
      { key: SA_REQUESTER, value: this.state.request.requester },
      { key: SA_AUTONOMY, value: this.state.request.autonomy },
    ]);
    this.touch();
  }

  confirm(repos: string[]): void {
    this.state.confirmed = repos;
    for (const id of repos) {
      this.state.repos[id] ??= {
        id,
        role: this.catalogRepo(id).role,
        branch: `change-request/${this.state.runId}`,
        baseBranch: this.catalogRepo(id).defaultBranch,
        baseSha: null,
        headSha: null,
        status: 'pending',
        commits: [],
        files: [],
        diffStat: { files: 0, insertions: 0, deletions: 0 },
        diffPreview: '',
        keyHunks: [],
        testRisks: [],
        checks: [],
        publishes: [],
        rangeBump: null,
        agentNotes: '',
        progress: null,
        spend: noSpend(),
        stoppedBy: null,
        pr: null,
        error: null,
      };
    }
    wf.upsertSearchAttributes([{ key: SA_REPOS, value: repos }]);
    this.touch();
  }

  beginRound(kind: RoundKind, repos: string[], reason: string, by: string | null): Round {
    const round: Round = { n: this.state.rounds.length + 1, kind, repos, reason, by, startedAt: Date.now(), endedAt: null };
    this.state.rounds.push(round);
    this.touch();
    return round;
  }

  endRound(round: Round): void {
    round.endedAt = Date.now();
    this.touch();
  }

  priorFixRounds(repo: string, before: number): number {
    return this.state.rounds.filter((r) => r.kind === 'fix' && r.n < before && r.repos.includes(repo)).length;
  }

  // ---- budget: reserve before a step, settle after it ----

  /** The limits a step may use: its own, and a share of the run's remainder set aside for it. */
  reserveBudget(key: string): StepLimits {
    const budget = this.state.budget;
    const runLeft = remaining(budget.perRun, budget.used);
    const alreadyReserved = sumLimits([...this.reservations.values()]);
    const reserved = minLimits(budget.perStep, subtractLimits(runLeft, alreadyReserved));
    this.reservations.set(key, reserved);
    return { step: budget.perStep, run: reserved };
  }

  /** What a running step recorded it may have spent (null: nothing yet). */
  inFlightSpend(key: string): Spend | null {
    return this.state.budget.inFlight[key] ?? null;
  }

  /** Records what a step spent (all its attempts) and frees what it had reserved. */
  settleBudget(key: string, usage: StepUsage): void {
    this.reservations.delete(key);
    delete this.state.budget.inFlight[key];
    this.state.budget.used = addSpend(this.state.budget.used, usage.spend);
    this.state.budget.steps.push(usage);
    if (usage.repo && this.state.repos[usage.repo]) {
      const repo = this.repo(usage.repo);
      repo.spend = addSpend(repo.spend, usage.spend);
    }
    wf.upsertSearchAttributes([{ key: SA_COST_USD, value: this.state.budget.used.costUsd }]);
    this.touch();
  }

  extendBudget(decision: SignalPayload<'extendBudget'>, stops: NonNullable<RunState['budget']['exhausted']>['stops']): void {
    const budget = this.state.budget;
    const exhausted = (scope: 'step' | 'run'): BudgetDimension[] => [...new Set(stops.filter((s) => s.scope === scope).flatMap((s) => s.dimensions))];
    budget.perStep = extend(budget.perStep, decision.perStep ?? {}, decision.perStep ? [] : exhausted('step'));
    budget.perRun = extend(budget.perRun, decision.perRun ?? {}, decision.perRun ? [] : exhausted('run'));
    this.touch();
  }

  recordTranscript(transcript: Transcript | null): void {
    if (!transcript) return;
    const existing = this.transcripts.findIndex((t) => t.id === transcript.id);
    if (existing >= 0) this.transcripts.splice(existing, 1);
    this.transcripts.push(transcript);
    if (this.transcripts.length > KEPT_TRANSCRIPTS) this.transcripts.splice(0, this.transcripts.length - KEPT_TRANSCRIPTS);
    this.state.transcripts = this.transcripts.map((t) => ({ id: t.id, step: t.step, repo: t.repo, round: t.round, turns: t.entries.length }));
    this.touch();
  }

  applyEdit(result: EditResult): void {
    const repo = this.repo(result.repo);
    repo.baseSha = result.baseSha;
    repo.headSha = result.headSha;
    if (result.commit && !repo.commits.some((c) => c.sha === result.commit!.sha)) repo.commits.push(result.commit);
    repo.files = result.files;
    repo.diffStat = result.diffStat;
    repo.diffPreview = result.diffPreview;
    repo.keyHunks = result.keyHunks;
    repo.testRisks = result.testRisks;
    repo.agentNotes = result.agentNotes;
    if (result.agentNotes.trim()) repo.notes = [...(repo.notes ?? []).filter((n) => n.round !== result.round), { round: result.round, text: result.agentNotes }];
    repo.status = 'edited';
    repo.progress = null;
    repo.stoppedBy = result.usage.stoppedBy;
    this.recordTranscript(result.transcript);
  }

  recordPublish(id: string, record: PublishRecord): void {
    const repo = this.repo(id);
    repo.publishes = [...repo.publishes.filter((p) => p.round !== record.round), record];
    if (record.status === 'failed') this.recordError(`${id}: round ${record.round} could not be published to the registry; its dependents use ${repo.publishes.some((p) => p.status === 'published') ? 'its last prerelease of this run' : 'the released version'}`, id);
    this.touch();
  }

  /** A dependency range bump committed on a dependent's branch when the PRs are opened. */
  applyRangeBump(result: BumpRangesResult): void {
    const repo = this.repo(result.repo);
    if (result.commit) repo.rangeBump = result.commit;
    repo.headSha = result.headSha;
    repo.files = result.files;
    repo.diffStat = result.diffStat;
    repo.diffPreview = result.diffPreview;
    this.touch();
  }

  applyChecks(id: string, run: CheckRun): void {
    const repo = this.repo(id);
    repo.checks.push(run);
    repo.status = run.passed ? 'checks_passed' : 'checks_failed';
    this.touch();
  }

  summarize(narrative: Narrative): void {
    this.state.summary = buildSummary(this.state, narrative, this.releasePlan());
    this.decisionChanged();
  }

  /** Rebuilds the summary from the current state (e.g. with PR links), keeping its narrative. */
  refreshSummary(): void {
    const previous = this.state.summary;
    if (!previous) return;
    this.state.summary = { ...buildSummary(this.state, { text: previous.narrative, by: previous.narrativeBy }, this.releasePlan()), sincePrevious: previous.sincePrevious };
    this.touch();
  }

  /** The merge and release plan of the change set as it stands (empty when change sets are off). */
  releasePlan(): ReturnType<typeof planReleases> {
    if (!this.integrates) return [];
    return planReleases(this.state, this.catalog!, mergeOrderOf(this.state));
  }

  recordPreview(record: PreviewRecord): void {
    this.state.previews = [...this.state.previews.filter((p) => p.repo !== record.repo), record];
    this.decisionChanged();
  }

  /**
   * What tracking saw of the pull requests. Returns the repositories whose pull request was merged or closed
   * since the last look, and whether anything a person would notice changed (the wait shortens again then).
   */
  applyTracking(seen: readonly TrackedPullRequest[]): { decided: string[]; changed: boolean } {
    const decided: string[] = [];
    let changed = false;
    for (const look of seen) {
      const pr = this.state.repos[look.repo]?.pr;
      if (!pr || pr.number !== look.number) continue;
      const before = JSON.stringify([pr.state, pr.ci ?? null, pr.review ?? null, pr.reviewComments ?? 0, pr.trackingError ?? null]);
      pr.checkedAt = Date.now();
      pr.trackingError = look.error;
      if (!look.error) Object.assign(pr, { state: look.state, ci: look.ci, review: look.review, reviewComments: look.reviewComments });
      if (JSON.stringify([pr.state, pr.ci ?? null, pr.review ?? null, pr.reviewComments ?? 0, pr.trackingError ?? null]) !== before) changed = true;
      if (pr.state !== 'open') decided.push(look.repo);
    }
    if (this.state.tracking) this.state.tracking.looks += 1;
    if (changed) this.decisionChanged();
    else this.touch();
    return { decided, changed };
  }

  /**
   * The proposal's questions, kept open on the card until someone answers them or sets them aside. Not a
   * decision change of its own: the proposal they come with is (cards from before it would be refused
   * twice over otherwise, and recorded runs would judge their inputs differently).
   */
  askQuestions(questions: readonly string[]): void {
    this.state.questions = questions.map((text, i) => ({ n: i + 1, text, askedAt: Date.now(), answer: null }));
    this.touch();
  }

  markPreviewsRemoved(repos: readonly string[]): void {
    this.state.previews = this.state.previews.map((p) => (repos.includes(p.repo) ? { ...p, status: 'removed', url: null } : p));
    this.touch();
  }

  recordError(message: string, repo?: string): void {
    this.state.lastError = { message, at: Date.now(), phase: this.state.phase, ...(repo ? { repo } : {}) };
    this.touch();
  }

  end(phase: 'done' | 'cancelled' | 'failed', reason: string, by: string | null): void {
    this.state.waiting = null;
    this.state.outcome = { phase, reason, by, at: Date.now() };
    this.setPhase(phase);
  }

  /** One short Markdown block for the Temporal UI's "current details". */
  private details(): string {
    const s = this.state;
    const lines = [`**${s.phase}** · round ${s.rounds.length} · ${s.request.requester}`];
    for (const repo of Object.values(s.repos)) {
      const progress = repo.progress ? ` (turn ${repo.progress.turn}${repo.progress.lastTool ? `, ${repo.progress.lastTool}` : ''})` : '';
      lines.push(`- ${repo.id}: ${repo.status}${progress}${repo.pr ? ` · PR #${repo.pr.number}` : ''}`);
    }
    if (s.lastError) lines.push(`Last error: ${s.lastError.message}`);
    return lines.join('\n');
  }
}

/** A snapshot written by an older version of this workflow, completed with the fields added since. */
function withCurrentFields(state: RunState): RunState {
  state.releaseChoices ??= {};
  state.intake ??= emptyIntake();
  state.budget.inFlight ??= {};
  for (const repo of Object.values(state.repos)) {
    repo.publishes ??= [];
    repo.rangeBump ??= null;
    for (const check of repo.checks) check.against ??= [];
  }
  for (const preview of state.previews) preview.upstream ??= { packages: [], previews: [], unresolved: [] };
  if (state.summary) {
    state.summary.releasePlan ??= [];
    state.summary.steps ??= [];
    for (const repo of state.summary.repos) {
      repo.checkedAgainst ??= [];
      repo.published ??= null;
    }
  }
  return state;
}

function zeroLimits(): BudgetLimits {
  return { turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, wallTimeMs: 0 };
}
