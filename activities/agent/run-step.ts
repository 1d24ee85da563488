// What proposing and editing share around the loop: the model and its price, carried spending,
// the transcript, and failures that still report what the attempt spent.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Spend } from '../../domain/budget';
import type { ModelChoice } from '../../domain/catalog-schema';
import type { StepUsage, Transcript } from '../../domain/contracts';
import type { ActivityDeps } from '../deps';
import type { StepLimits } from '../../domain/budget';
import { runAgentLoop, type LoopOutcome } from './loop';
import { ModelUnavailableError, type AgentTask } from './model';
import { recordedSpending, stepRecorder, type AgentHeartbeat } from './progress';
import { heartbeat } from '../heartbeat';
import type { ToolRegistry } from './tools/registry';

export interface StepRun<Final> {
  outcome: LoopOutcome<Final>;
  usage: StepUsage;
  transcript: Transcript;
}

export interface StepSpec<Final> {
  task: AgentTask;
  label: string;
  repo: string | null;
  round: number;
  system: string;
  prompt: string;
  tools: ToolRegistry<Final>;
  limits: StepLimits;
  /** The catalog's model and effort for this step (unset: the worker's model and the model's default). */
  model: ModelChoice;
  /** The run's ledger entry for this step (see ActivityDeps.spendLedger). */
  spendKey: string;
  nudgeIfNoFinal?: string;
  /** The transcript's id (default: the repository, or "proposal", and the round). */
  transcriptId?: string;
}

/**
 * What an attempt reports when it fails: its spending, so the run's total stays true (see
 * spendingOfFailure), and its transcript, so an operator can read what the agent did before it failed.
 */
export interface FailureDetails {
  spent: Spend;
  transcript?: Transcript;
}

export async function runAgentStep<Final>(deps: ActivityDeps, runId: string, spec: StepSpec<Final>): Promise<StepRun<Final>> {
  const model = deps.models.forTask(spec.task, spec.model);
  const price = deps.prices[model.name];
  if (!price) {
    throw new ModelUnavailableError(`No price is configured for the model "${model.name}", so its budget cannot be enforced; add it to MODEL_PRICES.`);
  }
  const recorder = stepRecorder(deps, runId, { step: spec.label, ...(spec.repo ? { repo: spec.repo } : {}), round: spec.round });
  let spent = await recordedSpending(deps, runId, spec.spendKey);
  try {
    const outcome = await runAgentLoop({
      model,
      price,
      system: spec.system,
      prompt: deps.redact(spec.prompt),
      tools: spec.tools,
      limits: spec.limits,
      spent,
      maxTokensPerCall: deps.maxTokensPerCall,
      redact: deps.redact,
      nudgeIfNoFinal: spec.nudgeIfNoFinal,
      signal: Context.current().cancellationSignal,
      // In the run before the call: a worker that dies with the answer cannot lose what the call cost.
      beforeCall: (worstCase) => deps.spendLedger.record(runId, spec.spendKey, worstCase),
      onStep: async (entry, nowSpent) => {
        spent = nowSpent;
        await recorder.onStep(entry, nowSpent);
      },
    });
    heartbeat({ spent: outcome.spent } satisfies AgentHeartbeat);
    const stoppedBy = outcome.kind === 'limit' ? outcome.stop : null;
    return {
      outcome,
      usage: { step: spec.label, repo: spec.repo, round: spec.round, model: model.name, spend: outcome.spent, stoppedBy },
      transcript: transcriptOf(outcome.kind === 'limit' ? `stopped: ${outcome.stop.message}` : outcome.kind === 'final' ? 'finished' : 'ended without a final answer'),
    };
  } catch (error) {
    // The attempt ends here knowing what it spent: the ledger's worst case for a call that failed is
    // corrected, so a retry after a refused connection does not count a call that was never answered.
    if (!Context.current().cancellationSignal.aborted) await deps.spendLedger.record(runId, spec.spendKey, spent).catch(() => undefined);
    throw failureWithSpending(error, spent, deps.redact, transcriptOf);
  }

  function transcriptOf(outcome: string): Transcript {
    return { id: spec.transcriptId ?? `${spec.repo ?? 'proposal'}-r${spec.round}`, step: spec.label, repo: spec.repo, round: spec.round, model: model.name, entries: recorder.entries, outcome };
  }
}

function failureWithSpending(error: unknown, spent: Spend, redact: (text: string) => string, transcriptOf: (outcome: string) => Transcript): unknown {
  if (error instanceof CancelledFailure || Context.current().cancellationSignal.aborted) return error;
  const nonRetryable = error instanceof ModelUnavailableError || (error instanceof ApplicationFailure && error.nonRetryable === true);
  const message = redact(error instanceof Error ? error.message : String(error));
  const type = error instanceof ApplicationFailure ? (error.type ?? 'Error') : error instanceof Error ? error.name : 'Error';
  return ApplicationFailure.create({ message, type, nonRetryable, details: [{ spent, transcript: transcriptOf(`failed: ${message}`) } satisfies FailureDetails] });
}
