// Inputs and results of every activity: the workflow's only way to reach the outside world.
import type { Catalog, CatalogRepo } from '../shared/catalog-schema';
import type {
  CheckResult,
  CombinedSummary,
  CommitRecord,
  ConversationRef,
  DiffStat,
  FileChange,
  Proposal,
  PullRequestRef,
  RoundKind,
  StepUsage,
} from '../shared/contracts';

export interface ProposeRequest {
  runId: string;
  requirement: string;
  context: string[];
  /** Catalog entries the requester may target; the proposer sees nothing else. */
  repos: CatalogRepo[];
  /** Catalog ids outside the requester's scope: never shown to the model, only used to explain a drop. */
  outOfScope: string[];
  maxTurns: number;
}

export interface ProposeResult {
  proposal: Proposal;
  usage: StepUsage;
  model: string;
}

export interface UpstreamChange {
  repo: string;
  agentNotes: string;
  diffPreview: string;
}

export interface EditRequest {
  runId: string;
  requester: string;
  requirement: string;
  context: string[];
  repo: CatalogRepo;
  branch: string;
  round: { n: number; kind: RoundKind; priorFixRounds: number };
  feedback: string | null;
  /** Failing checks of the previous round, for fix rounds. */
  failures: CheckResult[];
  /** Changes already made in this run to repositories this one depends on. */
  upstream: UpstreamChange[];
  /** Commits the workflow knows are on the work branch; sizes the shallow clone. */
  knownCommits: number;
  maxTurns: number;
}

export interface EditResult {
  repo: string;
  round: number;
  commit: CommitRecord | null;
  baseSha: string;
  headSha: string;
  files: FileChange[];
  diffStat: DiffStat;
  diffPreview: string;
  agentNotes: string;
  usage: StepUsage;
  /** Why the loop stopped early (a limit), or null when the agent finished. */
  stoppedBy: string | null;
}

export interface CheckRequest {
  runId: string;
  repo: CatalogRepo;
  branch: string;
  sha: string;
}

export interface CheckOutcome {
  sha: string;
  passed: boolean;
  results: CheckResult[];
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

export type CatalogSnapshot = Catalog;
