// The workflow ↔ activities contract: the input and result of every activity, the workflow's only way to
// reach the outside world. Types only (the activities implement them in activities/).
import type { Card } from './card';
import type { Catalog, CatalogRepo, ModelChoice } from './catalog-schema';
import type {
  CardRef,
  ChangeSetPackage,
  CheckResult,
  CombinedSummary,
  CommitRecord,
  ConversationRef,
  DiffStat,
  FileChange,
  Proposal,
  PreviewRecord,
  PreviewUpstream,
  PublishRecord,
  PullRequestRef,
  RoundKind,
  StepUsage,
  Transcript,
  RepoChange,
} from './contracts';
import type { StepLimits } from './budget';
import type { ApiOperationShape, ContextSource, RequirementBrief, SourceVia, UnreadableSource } from './brief';

/**
 * One pass of context intake: read the new links (code), then let the model extract the brief from every
 * source the run has, opening further links from those pages within the allow-list and the step budget.
 */
export interface GatherRequest {
  runId: string;
  requirement: string;
  /** Everything added to the thread so far, in order. */
  context: string[];
  /** Links not read yet, and where each came from. */
  links: { url: string; via: SourceVia }[];
  /** Sources the run read in earlier passes (their texts are in the source store). */
  known: ContextSource[];
  previousBrief: RequirementBrief | null;
  /** Context added since the previous brief: corrections or new facts the new brief must reflect. */
  corrections: string[];
  /** The catalog's context.allowHosts (the service adds its own forge and demo pages). */
  allowHosts: string[];
  /** Most further links the model may open in this pass. */
  maxOpenedLinks: number;
  /** Api repositories' own definitions (catalog `openapi`) the run has not read yet: read at their default branch. */
  apiSpecs?: RepoSpecRef[];
  model: ModelChoice;
  spendKey: string;
  limits: StepLimits;
}

/** An api repository's definition file, as the catalog names it. */
export interface RepoSpecRef {
  repo: string;
  /** Its clone URL. */
  url: string;
  defaultBranch: string;
  path: string;
}

/** Re-reading a definition this run edited, for the brief's operations from it. */
export interface RepoSpecRequest {
  runId: string;
  spec: RepoSpecRef;
  branch: string;
  sha: string;
  operations: ApiOperationShape[];
}

export interface GatherResult {
  /** Sources read in this pass, numbered after the known ones. */
  sources: ContextSource[];
  unreadable: UnreadableSource[];
  /** Null when no brief could be made (no readable source, or the model's answer did not stand); see note. */
  brief: RequirementBrief | null;
  /** The brief's API operations with their exact shapes, rendered by code from the specs. */
  operations: ApiOperationShape[];
  note: string | null;
  usage: StepUsage;
  transcript: Transcript | null;
}

export interface ProposeRequest {
  runId: string;
  requirement: string;
  context: string[];
  /** The requirement brief (Markdown), when the run extracted one from its sources. */
  brief?: string | null;
  /** Catalog entries the requester may target; the proposer sees nothing else. */
  repos: CatalogRepo[];
  /** Catalog ids outside the requester's scope: never shown to the model, only used to explain a drop. */
  outOfScope: string[];
  /** The model and effort the catalog chose for this step (unset fields: the worker's defaults). */
  model: ModelChoice;
  /** The run's ledger entry for this step: what it may have spent is recorded there before every model call. */
  spendKey: string;
  limits: StepLimits;
}

export interface ProposeResult {
  proposal: Proposal;
  usage: StepUsage;
  transcript: Transcript;
}

export interface UpstreamChange {
  repo: string;
  agentNotes: string;
  diffPreview: string;
  /** How this repository consumes the upstream as a package: its name and the prerelease installs use. */
  consumedAs: { name: string; version: string | null } | null;
}

export interface EditRequest {
  runId: string;
  requester: string;
  requirement: string;
  context: string[];
  /** The requirement brief (Markdown), when the run extracted one from its sources. */
  brief?: string | null;
  repo: CatalogRepo;
  branch: string;
  round: { n: number; kind: RoundKind; priorFixRounds: number };
  /** The feedback that started this round (feedback rounds only). */
  feedback: string | null;
  /** Feedback on this repository from earlier rounds, which still applies. */
  earlierFeedback: string[];
  /** Failing checks of the previous round, for fix rounds. */
  failures: CheckResult[];
  /** Changes already made in this run to repositories this one depends on. */
  upstream: UpstreamChange[];
  /** Commits the workflow knows are on the work branch; sizes the shallow clone. */
  knownCommits: number;
  /** In-flight packages this repository's installs use instead of the released ones (run_command's install too). */
  changeSet: ChangeSetPackage[];
  /** The model and effort the catalog chose for this step (unset fields: the worker's defaults). */
  model: ModelChoice;
  /** The run's ledger entry for this step: what it may have spent is recorded there before every model call. */
  spendKey: string;
  limits: StepLimits;
}

export interface EditResult extends RepoChange {
  repo: string;
  round: number;
  commit: CommitRecord | null;
  baseSha: string;
  headSha: string;
  agentNotes: string;
  /** What this step spent (over all its attempts); `usage.stoppedBy` says if a budget stopped it. */
  usage: StepUsage;
  /** Null when a retry found the round already pushed by an attempt that then died. */
  transcript: Transcript | null;
}

export interface CheckRequest {
  runId: string;
  repo: CatalogRepo;
  branch: string;
  sha: string;
  /** In-flight packages installed after the repository's own install, in the workspace only. */
  changeSet: ChangeSetPackage[];
  /** Upstream package names whose installed version the outcome reports (released ones included). */
  upstreamPackages: string[];
}

export interface CheckOutcome {
  sha: string;
  passed: boolean;
  results: CheckResult[];
  /** Per upstream package: the version found installed in node_modules after all installs (null: not installed). */
  installed: Record<string, string | null>;
}

/** Publishes one package repository at one commit as the run's prerelease for that round. */
export interface PublishRequest {
  runId: string;
  repo: CatalogRepo;
  branch: string;
  sha: string;
  /** The commit the work branch started from, to read the released version. */
  baseSha: string;
  round: number;
  /** In-flight packages this package itself depends on: installed for its build, pinned in what is published. */
  changeSet: ChangeSetPackage[];
}

export type PublishResult = PublishRecord;

/** Commits, on a dependent's work branch, dependency ranges that point at planned releases. */
export interface BumpRangesRequest {
  runId: string;
  /** Credited in the commit, like the rounds' commits. */
  requester: string;
  repo: CatalogRepo;
  branch: string;
  /** Where the work branch started: the result describes the whole change against it. */
  baseSha: string;
  round: number;
  ranges: { name: string; range: string }[];
}

export interface BumpRangesResult {
  repo: string;
  /** Null when the branch already had these ranges (a retried step) or the repository lists none of them. */
  commit: CommitRecord | null;
  headSha: string;
  /** Package names the repository's package.json does not list, so nothing was bumped for them. */
  notListed: string[];
  /** The branch's whole change against its base, with the bump. */
  files: FileChange[];
  diffStat: DiffStat;
  diffPreview: string;
}

export interface PullRequestRequest {
  runId: string;
  repo: CatalogRepo;
  branch: string;
  title: string;
  body: string;
}

export interface PullRequestOutcome {
  repo: string;
  pr: PullRequestRef | null;
  /** What went wrong and what a person can do about it. */
  error: string | null;
}

export interface ReleaseRequest {
  runId: string;
  name: string;
  /** The planned release: the first released version at or after it is the one looked for. */
  atLeast: string;
}

export interface ReleaseFound {
  name: string;
  version: string | null;
  /** Why there is nothing to look at (no registry configured), when that is the reason. */
  note: string | null;
}

/** What reviewers wrote on the pull requests: line comments and the bodies of their reviews. */
export interface ReviewFeedback {
  repo: string;
  number: number;
  comments: { id: string; by: string; text: string; path: string | null; line: number | null }[];
}

export interface TrackRequest {
  runId: string;
  pullRequests: { repo: CatalogRepo; number: number }[];
}

/** One pull request as tracking saw it; `error` when it could not be read (it is tried again later). */
export interface TrackedPullRequest {
  repo: string;
  number: number;
  state: 'open' | 'closed' | 'merged';
  headSha: string | null;
  ci: 'success' | 'failure' | 'pending' | null;
  review: 'approved' | 'changes_requested' | null;
  reviewComments: number;
  error: string | null;
}

export interface LinkRequest {
  runId: string;
  summary: CombinedSummary;
  pullRequests: { repo: CatalogRepo; number: number; url: string }[];
}

export interface NotifyRequest {
  runId: string;
  conversation: ConversationRef;
  /** Idempotency key: a retried activity posts nothing twice. */
  key: string;
  text: string;
}

export interface NarrativeRequest {
  runId: string;
  round: number;
  requirement: string;
  /** The requirement brief (Markdown), when the run extracted one from its sources. */
  brief?: string | null;
  feedback: string[];
  /** Each repository with its latest notes whole and its earlier rounds' notes, oldest first. */
  repos: { id: string; role: string; files: string[]; checksPassed: boolean | null; agentNotes: string; earlierNotes?: string[] }[];
  /** The narrative the previous summary had, to be rewritten for what changed since (absent: the first). */
  previousNarrative?: string | null;
  /** What changed since the previous summary, one line each. */
  sincePrevious?: string[];
  /** The model and effort the catalog chose for this step (unset fields: the worker's defaults). */
  model: ModelChoice;
  /** The run's ledger entry for this step: what it may have spent is recorded there before every model call. */
  spendKey: string;
  limits: StepLimits;
}

export interface NarrativeResult {
  /** Null when no narrative was written (no model, no budget, or the call failed: see note). */
  text: string | null;
  note: string | null;
  usage: StepUsage;
}

export interface PublishCardRequest {
  runId: string;
  conversation: ConversationRef;
  card: Card;
  /** Where the card already is, if it was posted before: then it is updated in place. */
  ref: CardRef | null;
}

export interface PreviewRequest {
  runId: string;
  repo: CatalogRepo;
  branch: string;
  sha: string;
  round: number;
  /** How long the preview should live; the run removes it earlier when it ends. */
  lifetimeMs: number;
  /** In-flight packages installed after the repository's own install. */
  changeSet: ChangeSetPackage[];
  /** The catalog's preview env with `${preview:<repo>}` resolved by the workflow. */
  env: Record<string, string>;
  /** Upstream packages and previews this preview runs with, recorded with it as given. */
  upstream: PreviewUpstream;
}

export interface RemovePreviewsRequest {
  runId: string;
  previews: { repo: CatalogRepo; record: PreviewRecord }[];
}

export type CatalogSnapshot = Catalog;
