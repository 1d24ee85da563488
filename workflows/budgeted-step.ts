// Runs an agent activity inside the run's budget: reserve before, settle after, and count what a step
// spent even when it failed for good (from its failure details or its last heartbeat).
import * as wf from '@temporalio/workflow';
import { maxSpend, noSpend, type Spend } from '../domain/budget';
import type { StepUsage, Transcript } from '../domain/contracts';
import type { StepLimits } from '../domain/budget';
import type { Run } from './run';

export async function budgetedStep<T extends { usage: StepUsage }>(
  run: Run,
  step: { key: string; label: string; repo: string | null; round: number },
  call: (budget: { limits: StepLimits; spendKey: string }) => Promise<T>,
): Promise<T> {
  const limits = run.reserveBudget(step.key);
  try {
    const result = await call({ limits, spendKey: step.key });
    run.settleBudget(step.key, result.usage);
    return result;
  } catch (error) {
    // The most the step may have spent: what its attempts reported, or what it recorded before its last call.
    const spend = maxSpend(spendingOfFailure(error), run.inFlightSpend(step.key));
    const transcript = transcriptOfFailure(error);
    run.settleBudget(step.key, { step: `${step.label} (failed)`, repo: step.repo, round: step.round, model: transcript?.model ?? 'unknown', spend, stoppedBy: null });
    run.recordTranscript(transcript);
    throw error;
  }
}

/** The transcript a failed attempt sent with its failure (what the agent did before it failed), if any. */
export function transcriptOfFailure(error: unknown): Transcript | null {
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof wf.ApplicationFailure) {
      const details = current.details?.[0] as { transcript?: Transcript } | undefined;
      if (details?.transcript) return details.transcript;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** What a failed agent activity reported having spent: in its failure details, or in its last heartbeat. */
export function spendingOfFailure(error: unknown): Spend {
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof wf.ApplicationFailure) {
      const details = current.details?.[0] as { spent?: Spend } | undefined;
      if (details?.spent) return { ...noSpend(), ...details.spent };
    }
    if (current instanceof wf.TimeoutFailure) {
      const heartbeat = current.lastHeartbeatDetails as { spent?: Spend } | undefined;
      if (heartbeat?.spent) return { ...noSpend(), ...heartbeat.spent };
    }
    current = (current as { cause?: unknown }).cause;
  }
  return noSpend();
}
