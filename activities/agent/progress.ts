// After every agent step: heartbeat (carrying what was spent, so a retry cannot reset it), keep the
// transcript entry, and, at most every progressIntervalMs, tell the run how far the agent is.
import { Context } from '@temporalio/activity';
import { maxSpend, noSpend, type Spend } from '../../domain/budget';
import type { TranscriptEntry } from '../../domain/contracts';
import type { ActivityDeps } from '../deps';
import { heartbeat } from '../heartbeat';

export interface AgentHeartbeat {
  spent: Spend;
}

/** Spending an earlier attempt of this activity sent with its last heartbeat, if any. */
export function carriedSpending(): Spend {
  const details = Context.current().info.heartbeatDetails as AgentHeartbeat | undefined;
  return details?.spent ? { ...noSpend(), ...details.spent } : noSpend();
}

/**
 * What earlier attempts of this step spent, as far as anything recorded it: the run's ledger (written
 * before each model call, so it includes a call whose answer died with its worker) or the last heartbeat,
 * whichever says more. A run that cannot be asked (a test without one) leaves the heartbeat's figure.
 */
export async function recordedSpending(deps: Pick<ActivityDeps, 'spendLedger'>, runId: string, spendKey: string): Promise<Spend> {
  const ledger = await deps.spendLedger.read(runId, spendKey).catch(() => null);
  return maxSpend(carriedSpending(), ledger);
}

export function stepRecorder(deps: ActivityDeps, runId: string, what: { step: string; repo?: string; round: number }) {
  let lastReport = 0;
  const entries: TranscriptEntry[] = [];
  const onStep = async (entry: TranscriptEntry, spent: Spend): Promise<void> => {
    entries.push(entry);
    heartbeat({ spent } satisfies AgentHeartbeat);
    const now = Date.now();
    if (now - lastReport < deps.progressIntervalMs) return;
    lastReport = now;
    const lastTool = entry.toolCalls[entry.toolCalls.length - 1];
    await deps
      .reportProgress(runId, {
        ...what,
        turn: spent.turns,
        inputTokens: spent.inputTokens + spent.cacheReadTokens + spent.cacheWriteTokens,
        outputTokens: spent.outputTokens,
        costUsd: spent.costUsd,
        lastTool: lastTool ? `${lastTool.name}${lastTool.isError ? ' (refused)' : ''}` : undefined,
        at: now,
      })
      .catch((error: unknown) => Context.current().log.warn('progress report failed', { error: String(error) }));
  };
  return { onStep, entries };
}
