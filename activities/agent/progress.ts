// After every agent step: heartbeat (carrying what was spent, so a retry cannot reset it) and, at most
// every progressIntervalMs, a progress report to the run so people see the agent working.
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { noSpending, type Spending } from './budget';
import type { LoopStep } from './loop';

export interface AgentHeartbeat {
  spent: Spending;
}

/** Spending recorded by an earlier attempt of this activity, if any. */
export function carriedSpending(): Spending {
  const details = Context.current().info.heartbeatDetails as AgentHeartbeat | undefined;
  return details?.spent ?? noSpending();
}

export function stepReporter(deps: ActivityDeps, runId: string, what: { step: string; repo?: string; round: number }) {
  let lastReport = 0;
  return async (step: LoopStep, spent: Spending, force = false): Promise<void> => {
    Context.current().heartbeat({ spent } satisfies AgentHeartbeat);
    const now = Date.now();
    if (!force && now - lastReport < deps.progressIntervalMs) return;
    lastReport = now;
    const lastTool = step.toolCalls[step.toolCalls.length - 1];
    await deps
      .reportProgress(runId, {
        ...what,
        turn: spent.turns,
        inputTokens: spent.inputTokens,
        outputTokens: spent.outputTokens,
        lastTool: lastTool ? `${lastTool.name}${lastTool.isError ? ' (refused)' : ''}` : undefined,
        at: now,
      })
      .catch((error: unknown) => Context.current().log.warn('progress report failed', { error: String(error) }));
  };
}
