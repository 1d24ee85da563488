// Enforcing a step's budget inside the loop: before every model call, stop if a limit has been reached
// or if the call itself could cross one; otherwise size the call (max output tokens) to what is left.
import {
  BUDGET_DIMENSIONS,
  describeDimension,
  noSpend,
  roundUsd,
  spentOn,
  type BudgetDimension,
  type BudgetLimits,
  type Spend,
} from '../../domain/budget';
import type { BudgetStop } from '../../domain/contracts';
import type { ModelPrice } from './lineup';
import type { Usage } from './model';

export { DEFAULT_PRICES, type ModelPrice, type PriceTable } from './lineup';

/** Cache writes are priced by lifetime: `cacheWrite1hTokens` of `cacheWriteTokens` at the 1-hour rate. */
export function costOf(usage: Usage, price: ModelPrice): number {
  const longWrites = Math.min(usage.cacheWrite1hTokens ?? 0, usage.cacheWriteTokens);
  // Without a 1-hour price: Anthropic's ratio, 2× input for an hour against 1.25× for five minutes.
  const writes = (usage.cacheWriteTokens - longWrites) * price.cacheWrite + longWrites * (price.cacheWrite1h ?? price.cacheWrite * 1.6);
  return roundUsd((usage.inputTokens * price.input + usage.outputTokens * price.output + writes + usage.cacheReadTokens * price.cacheRead) / 1e6);
}

export function spendOf(usage: Usage, price: ModelPrice): Spend {
  const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens } = usage;
  return { ...noSpend(), turns: 1, inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, costUsd: costOf(usage, price) };
}

/** The limits a step runs under: its own, and what the run reserved for it of the run's remainder. */
export interface StepLimits {
  step: BudgetLimits;
  run: BudgetLimits;
}

/** Below this many output tokens a call cannot do useful work; stop instead. */
const MIN_USEFUL_OUTPUT_TOKENS = 256;

export type CallPlan = { kind: 'call'; maxTokens: number; timeoutMs: number } | { kind: 'stop'; stop: BudgetStop };

/**
 * Decides, before a model call, whether it may start and how large it may be. `estimatedInputTokens` is
 * what the next request will read (the previous request plus what was added since).
 */
export function planCall(spent: Spend, limits: StepLimits, price: ModelPrice, estimatedInputTokens: number, maxTokensPerCall: number): CallPlan {
  const effective = (d: BudgetDimension) => Math.min(limits.step[d], limits.run[d]);
  const scopeOf = (dims: BudgetDimension[]): 'step' | 'run' => (dims.some((d) => limits.run[d] < limits.step[d]) ? 'run' : 'step');
  const stop = (dimensions: BudgetDimension[], why: string): CallPlan => ({ kind: 'stop', stop: { scope: scopeOf(dimensions), dimensions, message: why } });

  const reached = BUDGET_DIMENSIONS.filter((d) => spentOn(spent, d) >= effective(d));
  if (reached.length > 0) {
    const scope = scopeOf(reached);
    return stop(reached, `${scope} budget reached: ${reached.map((d) => `${describeDimension(d, spentOn(spent, d))} of ${describeDimension(d, effective(d))}`).join(', ')}`);
  }
  const inputLeft = effective('inputTokens') - spentOn(spent, 'inputTokens');
  if (estimatedInputTokens > inputLeft) {
    return stop(['inputTokens'], `the next call would read about ${estimatedInputTokens} input tokens; only ${inputLeft} are left`);
  }
  // Priced as if nothing were cached yet (cache writes cost the most), so the estimate errs high.
  const moneyLeft = effective('costUsd') - spent.costUsd;
  const inputCost = (estimatedInputTokens * Math.max(price.input, price.cacheWrite)) / 1e6;
  const affordableOutput = price.output > 0 ? Math.floor(((moneyLeft - inputCost) * 1e6) / price.output) : Number.POSITIVE_INFINITY;
  const outputLeft = effective('outputTokens') - spent.outputTokens;
  const maxTokens = Math.min(maxTokensPerCall, outputLeft, affordableOutput);
  if (maxTokens < Math.min(MIN_USEFUL_OUTPUT_TOKENS, maxTokensPerCall)) {
    const dimension: BudgetDimension = affordableOutput < outputLeft ? 'costUsd' : 'outputTokens';
    return stop([dimension], dimension === 'costUsd'
      ? `the next call could cost more than the $${moneyLeft.toFixed(4)} left`
      : `only ${outputLeft} output tokens are left, too few for another call`);
  }
  const timeoutMs = effective('wallTimeMs') - spent.wallTimeMs;
  return { kind: 'call', maxTokens, timeoutMs };
}
