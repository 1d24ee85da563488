// Runs an agent activity inside the run's budget: reserve before, settle after, and count what a step
// spent even when it failed for good (from its failure details or its last heartbeat).
import * as wf from '@temporalio/workflow';
import { noSpend, type Spend } from '../shared/budget';
import type { StepUsage } from '../shared/contracts';
import type { StepLimits } from '../activities/agent/budget';
import type { Run } from './run';

export async function budgetedStep<T extends { usage: StepUsage }>(
  run: Run,
  step: { key: string; label: string; repo: string | null; round: number },
  call: (limits: StepLimits) => Promise<T>,
): Promise<T> {
  const limits = run.reserveBudget(step.key);
  try {
    const result = await call(limits);
    run.settleBudget(step.key, result.usage);
    return result;
  } catch (error) {
    const spend = spendingOfFailure(error);
    run.settleBudget(step.key, { step: `${step.label} (failed)`, repo: step.repo, round: step.round, model: 'unknown', spend, stoppedBy: null });
    throw error;
  }
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
