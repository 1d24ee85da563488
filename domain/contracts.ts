// The public contract of the `changeRequest` workflow: its input, its signals and the state its query
// returns. Pure module: validated at the edge (gateway, CLI, IM adapters) and again inside the workflow.
import { z } from 'zod';
import { BudgetPatchSchema, type BudgetDimension, type BudgetLimits, type Spend } from './budget';
import { PLATFORM_NAMES } from './platforms';
import type { ContextIntake } from './brief';
import { PersonSchema, RepoIdSchema, type Catalog, type ReleaseBump } from './catalog-schema';

export const WORKFLOW_TYPE = 'changeRequest';

export const PHASES = [
  'intake',
  'gathering',
  'proposing',
  'awaiting_confirmation',
  'editing',
  'awaiting_budget',
  'checking',
  'previewing',
  'awaiting_review',
  'publishing',
  'tracking',
  'done',
  'cancelled',
  'failed',
] as const;
export type Phase = (typeof PHASES)[number];
export const TERMINAL_PHASES: readonly Phase[] = ['done', 'cancelled', 'failed'];

export const AutonomySchema = z.enum(['fixed', 'guided', 'free']);
export type Autonomy = z.infer<typeof AutonomySchema>;

export const TextSchema = z.string().trim().min(1, 'must not be empty').max(20_000, 'at most 20,000 characters');
export const IdempotencyKeySchema = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');
export const RepoListSchema = z
  .array(RepoIdSchema)
  .min(1, 'name at least one repository')
  .max(50)
  .refine((repos) => new Set(repos).size === repos.length, 'names a repository twice');

export const ConversationRefSchema = z.object({
  platform: z.enum(PLATFORM_NAMES),
  /** Channel or chat id on the platform. */
  channel: z.string().min(1).max(200),
  /** Thread (Slack thread_ts, Lark root message id, web chat thread id). */
  thread: z.string().min(1).max(200).optional(),
});
export type ConversationRef = z.infer<typeof ConversationRefSchema>;

/** Lower limits than the catalog's for this run (raising them takes an `extendBudget` from a decider). */
export const BudgetOverridesSchema = z.object({ perStep: BudgetPatchSchema.optional(), perRun: BudgetPatchSchema.optional() }).strict();
export type BudgetOverrides = z.infer<typeof BudgetOverridesSchema>;

export const ChangeRequestInputSchema = z
  .object({
    requirement: TextSchema,
    requester: PersonSchema,
    conversation: ConversationRefSchema.default({ platform: 'cli', channel: 'terminal' }),
    /** Omitted: the catalog's policy.defaultAutonomy. */
    autonomy: AutonomySchema.optional(),
    /** Required for the `fixed` preset; ignored otherwise. */
    repos: RepoListSchema.optional(),
    budget: BudgetOverridesSchema.optional(),
  })
  .superRefine((input, ctx) => {
    if (input.autonomy === 'fixed' && !input.repos) {
      ctx.addIssue({ code: 'custom', path: ['repos'], message: 'the fixed preset needs the list of repositories' });
    }
  });
export type ChangeRequestInput = z.input<typeof ChangeRequestInputSchema>;
export type ParsedChangeRequestInput = z.output<typeof ChangeRequestInputSchema>;

// ---- human inputs (signals): defined once, in human-inputs.ts ----
export type { SignalName, SignalPayload } from './human-inputs';
import type { SignalName } from './human-inputs';

/**
 * The most a running agent step may have spent, recorded by the step itself before each model call (its
 * spending so far plus the worst case of that call), so a worker that dies mid-step can never make the
 * run forget what it spent: the retried attempt starts from here. Not a human input.
 */
export const StepSpendSchema = z.object({
  key: z.string().min(1).max(200),
  spend: z.object({
    turns: z.number().min(0),
    inputTokens: z.number().min(0),
    outputTokens: z.number().min(0),
    cacheReadTokens: z.number().min(0),
    cacheWriteTokens: z.number().min(0),
    costUsd: z.number().min(0),
    wallTimeMs: z.number().min(0),
  }),
});
export type StepSpend = z.infer<typeof StepSpendSchema>;

/** Progress an editing or proposing activity reports about itself (not a human input). */
export const AgentProgressSchema = z.object({
  step: z.string().min(1).max(200),
  repo: RepoIdSchema.optional(),
  round: z.number().int().min(0),
  turn: z.number().int().min(0),
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  costUsd: z.number().min(0),
  lastTool: z.string().max(200).optional(),
  at: z.number().int(),
});
export type AgentProgress = z.infer<typeof AgentProgressSchema>;

// ---- state, returned whole by the `state` query ----

export interface ProposedRepo {
  id: string;
  reason: string;
  confidence: number;
}

export interface Proposal {
  repos: ProposedRepo[];
  questions: string[];
  /** What code dropped or changed from the model's answer, and why. */
  notes: string[];
}

/** A question the proposal asked: open until someone answers it in the thread or sets it aside. */
export interface QuestionRecord {
  n: number;
  text: string;
  askedAt: number;
  answer: { by: string; text: string; at: number; how: 'reply' | 'not needed' } | null;
}

export type CheckStatus = 'passed' | 'failed' | 'timed_out' | 'error';

export interface CheckResult {
  name: string;
  command: string;
  kind: 'install' | 'check';
  status: CheckStatus;
  exitCode: number | null;
  durationMs: number;
  /** Last part of the combined output, enough to see why it failed. */
  outputTail: string;
  /** Install only: restored from this worker's install cache instead of run. */
  fromCache?: boolean;
  /** Ran without the sandbox (REPO_SANDBOX=off): the summary flags it. */
  unconfined?: true;
  /** Something a reviewer should weigh (the Node.js asked for could not be had): the summary lists it. */
  risk?: string;
}

export interface CheckRun {
  round: number;
  sha: string;
  passed: boolean;
  results: CheckResult[];
  /** The packages of repositories this one depends on, and which version of each it was checked against. */
  against: UpstreamVersion[];
}

// ---- the change set: in-flight packages and what dependents were installed against ----

/** A package of this run, published as a prerelease, as a dependent installs it. */
export interface ChangeSetPackage {
  /** The package's repository. */
  repo: string;
  name: string;
  /** The run's prerelease, e.g. 1.4.0-cr.ab12cd34.2. */
  version: string;
  round: number;
  sha: string;
}

/** One upstream package of a dependent: the run's prerelease it was installed with, or the released one. */
export interface UpstreamVersion {
  repo: string;
  name: string;
  source: 'run' | 'released';
  /** The run's prerelease (source 'run'); null when the dependent's own range decides (released). */
  version: string | null;
  /** What was found installed afterwards (node_modules/<name>/package.json); null when it is not installed. */
  installed?: string | null;
  /** Why this is not the package's newest change in the run, e.g. "round 2 could not be published". */
  note?: string;
}

/** A package repository's round published (or not) to the registry. */
export interface PublishRecord {
  repo: string;
  round: number;
  sha: string;
  name: string | null;
  version: string | null;
  distTag: string;
  /** The version in package.json on the default branch (what is released today), when it could be read. */
  releasedVersion: string | null;
  /** The version in package.json at the published commit (an agent may have bumped it). */
  headVersion: string | null;
  status: 'published' | 'failed';
  /** A retry found this commit already published under this version and published nothing. */
  reused: boolean;
  /** Build and publish output (its end), most useful when it failed. */
  output: string;
  at: number;
}

/** What approving a change plans: each package released after its PR merges, dependents bumped to it. */
export interface ReleasePlanStep {
  repo: string;
  /** For a package: the release its merged PR needs. */
  release: { name: string; version: string; bump: ReleaseBump | 'as-committed'; from: string | null; by: string | null } | null;
  /** For a dependent: the upstream releases its branch depends on (never a prerelease). */
  needs: { repo: string; name: string; range: string }[];
}

export interface CommitRecord {
  round: number;
  sha: string;
  message: string;
  files: string[];
}

export interface DiffStat {
  files: number;
  insertions: number;
  deletions: number;
}

export interface FileChange {
  path: string;
  change: 'added' | 'modified' | 'deleted';
  insertions: number;
  deletions: number;
}

export interface CardRef {
  channel: string;
  messageId: string;
  /** The card version this message shows. */
  shows: number;
}

export interface PullRequestRef {
  number: number;
  url: string;
  state: 'open' | 'closed' | 'merged';
  /** True when this run found it already open and updated it. */
  reused: boolean;
  /** What tracking last saw (absent before the first look): */
  /** the head commit's combined CI status, null when it has none; */
  ci?: 'success' | 'failure' | 'pending' | null;
  /** the review decision (the latest review of each reviewer), null when nobody decided; */
  review?: 'approved' | 'changes_requested' | null;
  /** how many review comments it has; */
  reviewComments?: number;
  /** when it was last looked at, and why it could not be, if it could not. */
  checkedAt?: number;
  trackingError?: string | null;
  /** The review comments a feedback round already worked on (by id). */
  addressedComments?: string[];
}

/** An open pull request with review comments no feedback round has worked on yet. */
export function hasNewReviewComments(pr: PullRequestRef | null): boolean {
  return pr !== null && pr.state === 'open' && (pr.reviewComments ?? 0) > (pr.addressedComments?.length ?? 0);
}

/** After the pull requests open: the run follows them until each is merged or closed, or until `until`. */
export interface TrackingState {
  since: number;
  until: number;
  /** How many times the pull requests were looked at, and when next. */
  looks: number;
  nextLookAt: number | null;
  /** Dependents whose upstream package's pull request merged: its release, once published, and their checks against it. */
  releases?: ReleaseFollowUp[];
}

/** A dependent's open pull request after the package it waits for merged: checked again against the real release. */
export interface ReleaseFollowUp {
  dependent: string;
  upstream: string;
  name: string;
  /** The range the dependent's branch depends on (the planned release), and the planned version. */
  range: string;
  planned: string;
  /** The first released version at or after the planned one, once the registry has it. */
  released: string | null;
  /** Set when the release was outside the range, so the branch was moved to `^released` first. */
  movedTo: string | null;
  check: { sha: string; passed: boolean; failing: string[]; installed: string | null; at: number } | null;
}

export interface Screenshot {
  url: string;
  width: number;
  height: number;
  bytes: number;
}

export interface PreviewRecord {
  repo: string;
  round: number;
  sha: string;
  kind: 'static' | 'command' | 'service';
  status: 'ready' | 'failed' | 'removed';
  url: string | null;
  screenshot: Screenshot | null;
  /** Build or deploy output (its end), most useful when it failed. */
  output: string;
  deployedAt: number;
  expiresAt: number;
  /** What the preview runs with: upstream packages installed, upstream previews it was pointed at. */
  upstream: PreviewUpstream;
  /** The page that shows the run's previews as one change set (the preview server's), when there is one. */
  changeSetUrl?: string | null;
  /** A service's root address, which `${preview:<repo>}` resolves to, when `url` is a page inside it. */
  rootUrl?: string | null;
  /** The same page on the preview's own origin (http://<repo>--<run>.localhost:<port>/…): what people open. */
  originUrl?: string | null;
  /** Set when the preview is degraded: what is wrong with the page (HTTP errors, console errors, a blank screen). */
  problems?: string[];
}

/** The address people open: the preview's own origin when it has one. */
export function previewAddress(preview: Pick<PreviewRecord, 'url' | 'originUrl'>): string | null {
  return preview.originUrl ?? preview.url;
}

/** A preview that answers but whose page showed problems (previews/screenshot checks). */
export function isDegraded(preview: Pick<PreviewRecord, 'status' | 'problems'>): boolean {
  return preview.status === 'ready' && (preview.problems?.length ?? 0) > 0;
}

export interface PreviewUpstream {
  packages: UpstreamVersion[];
  previews: { repo: string; sha: string; url: string; variable: string }[];
  /** Environment variables left unset because the preview they refer to does not exist in this run. */
  unresolved: string[];
}

export type RepoStatus =
  | 'pending'
  | 'editing'
  | 'edited'
  | 'publishing_prerelease'
  | 'checking'
  | 'checks_passed'
  | 'checks_failed'
  | 'publishing'
  | 'published'
  | 'failed';

/** What a repository's change is against its base: made by an edit round, kept per repository, summarised. */
export interface RepoChange {
  /** Cumulative against the base. */
  files: FileChange[];
  diffStat: DiffStat;
  /** A shortened unified diff against the base, for people and for dependent repositories' prompts. */
  diffPreview: string;
  /** The few hunks that say the most about the change (no lock files, no tests). */
  keyHunks: string[];
  /** Deleted, skipped or weakened tests: always shown to the reviewer. */
  testRisks: string[];
}

export interface RepoProgress extends RepoChange {
  id: string;
  role: 'app' | 'package' | 'api';
  branch: string;
  baseBranch: string;
  /** The default branch's commit the work branch started from. */
  baseSha: string | null;
  headSha: string | null;
  status: RepoStatus;
  commits: CommitRecord[];
  checks: CheckRun[];
  /** Package repositories: each round's publish to the registry. */
  publishes: PublishRecord[];
  /** Dependents: the commit made when the PRs opened that points its ranges at the planned releases (not a round's). */
  rangeBump: CommitRecord | null;
  /** The agent's own account of its last round. */
  agentNotes: string;
  /** Its account of every round that edited this repository, oldest first (absent in older runs). */
  notes?: { round: number; text: string }[];
  progress: AgentProgress | null;
  /** What this repository's agent steps have spent, over all rounds. */
  spend: Spend;
  /** Set when the last edit stopped at a budget limit, until someone decides what to do. */
  stoppedBy: BudgetStop | null;
  pr: PullRequestRef | null;
  error: string | null;
}

export interface BudgetStop {
  scope: 'step' | 'run';
  dimensions: BudgetDimension[];
  message: string;
}

/** `continue` picks up where an edit stopped at its budget, after the budget was extended. */
export type RoundKind = 'initial' | 'fix' | 'feedback' | 'continue';

export interface Round {
  n: number;
  kind: RoundKind;
  repos: string[];
  /** The feedback that started a feedback round, or the failing checks that started a fix round. */
  reason: string;
  by: string | null;
  startedAt: number;
  endedAt: number | null;
}

export interface InputRecord {
  key: string;
  signal: SignalName | 'start';
  by: string;
  at: number;
  outcome: 'accepted' | 'refused';
  reason?: string;
}

export interface WaitingFor {
  what: 'confirmation' | 'review' | 'budget';
  since: number;
  remindAt: number;
  expiresAt: number;
  remindedAt: number | null;
}

export interface StepUsage {
  step: string;
  repo: string | null;
  round: number;
  model: string;
  spend: Spend;
  stoppedBy: BudgetStop | null;
}

export interface BudgetState {
  perStep: BudgetLimits;
  perRun: BudgetLimits;
  /** Everything the run's agent steps spent (including attempts that failed). */
  used: Spend;
  steps: StepUsage[];
  /** Steps running now: the most each may have spent so far, recorded before each of its model calls. */
  inFlight: Record<string, Spend>;
  /** The budget question the run is waiting on, if any. */
  exhausted: { repos: string[]; stops: BudgetStop[] } | null;
}

/** One model turn as an operator reads it later: what was asked, what came back, what it cost. */
export interface TranscriptEntry {
  turn: number;
  at: number;
  request: { messages: number; tools: number };
  text: string;
  /** The model's summarized thinking, where the newest models also put what they say between tool calls. */
  thinking?: string;
  /** Why the model stopped, when it was not a plain end of turn or a tool call (max_tokens, refusal, …). */
  stopReason?: string;
  toolCalls: { name: string; input: string; result: string; isError: boolean }[];
  usage: { inputTokens: number; outputTokens: number; cacheReadTokens: number; cacheWriteTokens: number };
  costUsd: number;
}

export interface Transcript {
  id: string;
  step: string;
  repo: string | null;
  round: number;
  model: string;
  entries: TranscriptEntry[];
  outcome: string;
}

export interface TranscriptRef {
  id: string;
  step: string;
  repo: string | null;
  round: number;
  turns: number;
}

export interface SummaryRepo extends Omit<RepoChange, 'testRisks'> {
  /** Earlier rounds' agent notes, shortened (their first sentence and any caution), oldest first. */
  earlierNotes?: { round: number; text: string }[];
  id: string;
  role: 'app' | 'package' | 'api';
  branch: string;
  checksPassed: boolean | null;
  checks: CheckResult[];
  /** The upstream package versions the last checks ran against. */
  checkedAgainst: UpstreamVersion[];
  /** The latest prerelease of this package (package repositories). */
  published: PublishRecord | null;
  agentNotes: string;
  preview: PreviewRecord | null;
  spend: Spend;
  pr: PullRequestRef | null;
}

export interface CombinedSummary {
  round: number;
  requirement: string;
  /** What changed and why, in a few sentences: written by one bounded model call, or plainly assembled. */
  narrative: string;
  narrativeBy: 'model' | 'plain';
  spent: Spend;
  repos: SummaryRepo[];
  /** Packages before the apps that depend on them. */
  mergeOrder: string[];
  /** Releases the merged package PRs need, and the ranges the dependents' branches depend on. */
  releasePlan: ReleasePlanStep[];
  /** Every agent step of the run so far: its model and what it cost. */
  steps: StepUsage[];
  risks: string[];
  /** What changed since the previous summary (after a feedback or fix round). */
  sincePrevious: string[];
  /** The requirement brief's acceptance criteria and the pages they come from (absent: no brief). */
  brief?: SummaryBrief | null;
  /** The proposal's questions and how each was answered (absent: none asked). */
  questions?: QuestionRecord[];
  /** After upstream pull requests merged: their releases and the dependents' checks against them. */
  releases?: ReleaseFollowUp[];
}

export interface SummaryBrief {
  version: number;
  goal: string;
  criteria: { text: string; source: string | null }[];
  sources: { id: string; title: string; url: string }[];
}

/** Approvals one review needs when owners other than the requester must approve each changed repository. */
export interface ApprovalsNeeded {
  needed: { repo: string; owners: string[] }[];
  given: { by: string; at: number; repos: string[] }[];
}

export interface RunState {
  runId: string;
  /** Increases on every change; clients use it to notice that something moved. */
  version: number;
  /** Increases when what a person decides on changes (phase, proposal, summary): cards carry it, and an
   * input from a card with an older one is refused as out of date. */
  cardVersion: number;
  /** Where the run's card lives on the conversation's platform (Slack, Lark), once posted. */
  card: CardRef | null;
  phase: Phase;
  phaseHistory: { phase: Phase; at: number }[];
  request: {
    requirement: string;
    requester: string;
    conversation: ConversationRef;
    autonomy: Autonomy;
    createdAt: number;
  };
  /** Repositories the requester may target (from the catalog snapshot). */
  scope: string[];
  /** `url` (the clone URL) is absent in runs that adopted their catalog before it was kept here. */
  catalogRepos: { id: string; role: 'app' | 'package' | 'api'; description: string; dependsOn: string[]; url?: string }[];
  proposal: Proposal | null;
  confirmed: string[];
  repos: Record<string, RepoProgress>;
  rounds: Round[];
  context: { by: string; text: string; at: number }[];
  /** The proposal's questions and their answers (absent in runs from before questions were kept). */
  questions?: QuestionRecord[];
  /** The pages the requirement and the thread link, read and stored by hash, and the brief extracted from them. */
  intake: ContextIntake;
  feedback: { by: string; text: string; at: number; repos: string[]; round: number | null }[];
  summary: CombinedSummary | null;
  /**
   * Under `deciders: owners-not-requester`, while the run awaits review: who may approve each changed
   * repository, and the approvals given so far (cleared by a feedback round). Absent otherwise.
   */
  approvals?: ApprovalsNeeded | null;
  /** Releases an owner chose on approval instead of the catalog's (package repository → bump). */
  releaseChoices: Record<string, { bump: ReleaseBump; by: string }>;
  /** The latest preview of each repository that has one. */
  /** Following the pull requests after they opened (absent in runs from before tracking existed). */
  tracking?: TrackingState | null;
  previews: PreviewRecord[];
  budget: BudgetState;
  waiting: WaitingFor | null;
  inputs: InputRecord[];
  /** Agent transcripts of this run, read with the `transcript` query by id. */
  transcripts: TranscriptRef[];
  lastError: { message: string; at: number; phase: Phase; repo?: string } | null;
  outcome: { phase: 'done' | 'cancelled' | 'failed'; reason: string; by: string | null; at: number } | null;
  /** How many times this run has continued as new. */
  generation: number;
}

export type CatalogSnapshot = Catalog;
