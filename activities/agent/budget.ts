// What a step may spend and what it has spent. Limits are checked before every model call, so no call
// starts once a limit has been reached.
import type { Usage } from './model';

export interface Limits {
  maxTurns: number;
}

export interface Spending {
  turns: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export function noSpending(): Spending {
  return { turns: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
}

export function addUsage(spent: Spending, usage: Usage): Spending {
  return {
    turns: spent.turns + 1,
    inputTokens: spent.inputTokens + usage.inputTokens,
    outputTokens: spent.outputTokens + usage.outputTokens,
    cacheReadTokens: spent.cacheReadTokens + usage.cacheReadTokens,
    cacheWriteTokens: spent.cacheWriteTokens + usage.cacheWriteTokens,
  };
}

/** Why the loop must stop before its next model call, or undefined if it may go on. */
export function limitReachedBeforeCall(spent: Spending, limits: Limits): string | undefined {
  if (spent.turns >= limits.maxTurns) return `turn limit reached (${spent.turns} of ${limits.maxTurns} turns)`;
  return undefined;
}
