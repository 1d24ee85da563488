// Inputs and results of every activity: the workflow's only way to reach the outside world.
import type { Card } from '../shared/card';
import type { Catalog, CatalogRepo } from '../shared/catalog-schema';
import type {
  CardRef,
  CheckResult,
  CombinedSummary,
  CommitRecord,
  ConversationRef,
  DiffStat,
  FileChange,
  Proposal,
  PreviewRecord,
  PullRequestRef,
  RoundKind,
  StepUsage,
  Transcript,
} from '../shared/contracts';
import type { StepLimits } from './agent/budget';

export interface ProposeRequest {
  runId: string;
  requirement: string;
  context: string[];
  /** Catalog entries the requester may target; the proposer sees nothing else. */
  repos: CatalogRepo[];
  /** Catalog ids outside the requester's scope: never shown to the model, only used to explain a drop. */
  outOfScope: string[];
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
}

export interface EditRequest {
  runId: string;
  requester: string;
  requirement: string;
  context: string[];
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
  limits: StepLimits;
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
  keyHunks: string[];
  testRisks: string[];
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

export interface NarrativeRequest {
  runId: string;
  round: number;
  requirement: string;
  feedback: string[];
  repos: { id: string; role: string; files: string[]; checksPassed: boolean | null; agentNotes: string }[];
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
}

export interface RemovePreviewsRequest {
  runId: string;
  previews: { repo: CatalogRepo; record: PreviewRecord }[];
}

export type CatalogSnapshot = Catalog;
