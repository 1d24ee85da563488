// A run's state and the handful of ways it changes. Everything here is deterministic workflow code:
// time comes from the workflow clock (Date.now() inside a workflow is the task's time).
import * as wf from '@temporalio/workflow';
import { type Catalog, type CatalogRepo, type Policy, findRepo, reposInScope } from '../shared/catalog-schema';
import {
  AgentProgressSchema,
  type CheckRun,
  type ParsedChangeRequestInput,
  type Phase,
  type RepoProgress,
  type Round,
  type RoundKind,
  type RunState,
  type SignalName,
  type StepUsage,
} from '../shared/contracts';
import { SA_AUTONOMY, SA_PHASE, SA_REPOS, SA_REQUESTER } from '../shared/search-attributes';
import { buildSummary } from '../shared/summary';
import type { EditResult } from '../activities/types';
import { agentProgressSignal, HUMAN_SIGNALS, stateQuery } from './definitions';
import { emptyInbox, judgeInput, type AcceptedInput, type PendingInputs } from './human-inputs';

const KEPT_INPUT_RECORDS = 200;

/** Everything a run needs to continue as new without losing anything. */
export interface RunSnapshot {
  state: RunState;
  catalog: Catalog;
  processedKeys: string[];
  inbox: PendingInputs;
}

export class Run {
  private constructor(
    readonly state: RunState,
    public catalog: Catalog | null,
    private readonly processedKeys: Set<string>,
    readonly inbox: PendingInputs,
  ) {}

  static begin(input: ParsedChangeRequestInput, runId: string): Run {
    const now = Date.now();
    const state: RunState = {
      runId,
      version: 1,
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
      feedback: [],
      summary: null,
      budget: { maxTurnsPerStep: input.budget?.maxTurnsPerStep ?? 0, used: { turns: 0, inputTokens: 0, outputTokens: 0 }, steps: [] },
      waiting: null,
      inputs: [],
      lastError: null,
      outcome: null,
      generation: 0,
    };
    return new Run(state, null, new Set(), emptyInbox());
  }

  static resume(snapshot: RunSnapshot): Run {
    const run = new Run(snapshot.state, snapshot.catalog, new Set(snapshot.processedKeys), snapshot.inbox);
    run.state.generation += 1;
    run.touch();
    return run;
  }

  snapshot(): RunSnapshot {
    return { state: this.state, catalog: this.catalog!, processedKeys: [...this.processedKeys], inbox: this.inbox };
  }

  get policy(): Policy {
    return this.catalog!.policy;
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
    for (const [name, definition] of Object.entries(HUMAN_SIGNALS)) {
      wf.setHandler(definition, (payload: unknown) => this.receive(name as SignalName, payload));
    }
    wf.setHandler(agentProgressSignal, (payload: unknown) => {
      const parsed = AgentProgressSchema.safeParse(payload);
      if (!parsed.success) return;
      const progress = parsed.data;
      if (progress.repo && this.state.repos[progress.repo]) this.repo(progress.repo).progress = progress;
      this.touch();
    });
  }

  private receive(signal: SignalName, payload: unknown): void {
    const raw = (payload ?? {}) as { key?: unknown; by?: unknown };
    const key = typeof raw.key === 'string' ? raw.key.trim() : '';
    if (key && this.processedKeys.has(key)) return; // a repeated key changes nothing
    const by = typeof raw.by === 'string' && raw.by.trim() ? raw.by.trim() : '(unknown)';
    const judgement = this.catalog
      ? judgeInput(signal, payload, this.state, this.catalog, this.inbox)
      : { outcome: 'refused' as const, reason: 'the run is still starting; try again in a moment' };
    if (key) this.processedKeys.add(key);
    this.state.inputs.push({
      key: key || '(none)',
      signal,
      by,
      at: Date.now(),
      outcome: judgement.outcome,
      ...(judgement.outcome === 'refused' ? { reason: judgement.reason } : {}),
    });
    if (this.state.inputs.length > KEPT_INPUT_RECORDS) this.state.inputs.splice(0, this.state.inputs.length - KEPT_INPUT_RECORDS);
    if (judgement.outcome === 'accepted') this.apply(judgement.input);
    this.touch();
  }

  private apply(input: AcceptedInput): void {
    const now = Date.now();
    switch (input.signal) {
      case 'confirmRepos':
        this.inbox.confirmation = { by: input.payload.by, repos: input.payload.repos };
        break;
      case 'feedback':
        this.inbox.feedback.push({ by: input.payload.by, text: input.payload.text, repos: input.payload.repos ?? null, at: now });
        break;
      case 'addContext':
        this.state.context.push({ by: input.payload.by, text: input.payload.text, at: now });
        break;
      case 'approve':
        this.inbox.approval = { by: input.payload.by };
        break;
      case 'cancel':
        this.inbox.cancellation = { by: input.payload.by, reason: input.payload.reason ?? 'cancelled by a person' };
        break;
    }
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
    this.touch();
  }

  adoptCatalog(catalog: Catalog): void {
    this.catalog = catalog;
    this.state.scope = reposInScope(catalog, this.state.request.requester);
    this.state.catalogRepos = catalog.repositories.map((r) => ({ id: r.id, role: r.role, description: r.description, dependsOn: r.dependsOn }));
    if (!this.state.budget.maxTurnsPerStep) this.state.budget.maxTurnsPerStep = catalog.policy.maxTurnsPerStep;
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
        checks: [],
        agentNotes: '',
        progress: null,
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

  recordUsage(usage: StepUsage): void {
    const used = this.state.budget.used;
    used.turns += usage.turns;
    used.inputTokens += usage.inputTokens;
    used.outputTokens += usage.outputTokens;
    this.state.budget.steps.push(usage);
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
    repo.agentNotes = result.agentNotes;
    repo.status = 'edited';
    repo.progress = null;
    this.recordUsage(result.usage);
  }

  applyChecks(id: string, run: CheckRun): void {
    const repo = this.repo(id);
    repo.checks.push(run);
    repo.status = run.passed ? 'checks_passed' : 'checks_failed';
    this.touch();
  }

  summarize(): void {
    this.state.summary = buildSummary(this.state);
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
