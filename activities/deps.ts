// Everything activities need from the process that runs them, passed in explicitly so tests and the
// worker wire the same code with different parts.
import type { Catalog } from '../shared/catalog-schema';
import type { AgentProgress } from '../shared/contracts';
import type { PriceTable } from './agent/budget';
import type { ModelProvider } from './agent/model';
import type { Redactor } from './agent/redact';
import type { Remote } from './git/repository';
import type { Notifier } from './notify';

export interface ActivityDeps {
  /** Reads and validates the catalog (a fresh snapshot for each new run). */
  loadCatalog(): Promise<Catalog>;
  /** Scratch space (workspaces) and local records; never the only copy of anything. */
  dataDir: string;
  models: ModelProvider;
  /** Prices per model name, for money budgets; a model without a price cannot run. */
  prices: PriceTable;
  /** Most output tokens one model call may ask for (the budget may allow fewer). */
  maxTokensPerCall: number;
  /** Masks the service's secrets (and anything shaped like a token) in prompts, transcripts and logs. */
  redact: Redactor;
  /** Token for git over HTTPS and for the forge's REST API (GitHub token, or the local forge's). */
  forgeToken?: string;
  /** Sends an activity's progress to its run so the `state` query shows it. Best effort. */
  reportProgress(runId: string, progress: AgentProgress): Promise<void>;
  notifier: Notifier;
  /** Minimum time between two progress reports of one activity (the last step is always reported). */
  progressIntervalMs: number;
}

export function remoteOf(deps: ActivityDeps, url: string): Remote {
  return { url, token: deps.forgeToken };
}
