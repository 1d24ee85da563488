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
} from '../../shared/budget';
import type { BudgetStop } from '../../shared/contracts';
import type { Usage } from './model';

/** US dollars per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

export type PriceTable = Record<string, ModelPrice>;

const OPUS: ModelPrice = { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 };
const SONNET: ModelPrice = { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 };
const HAIKU: ModelPrice = { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 };

/**
 * Anthropic's list prices (5-minute cache writes) for the models this service has been run with; check
 * them against anthropic.com/pricing. MODEL_PRICES (a JSON file) adds models or overrides entries.
 */
export const DEFAULT_PRICES: PriceTable = {
  'claude-opus-5': OPUS,
  'claude-opus-4-8': OPUS,
  'claude-opus-4-7': OPUS,
  'claude-opus-4-6': OPUS,
  'claude-opus-4-5': OPUS,
  'claude-sonnet-4-6': SONNET,
  'claude-sonnet-4-5': SONNET,
  'claude-haiku-4-5': HAIKU,
  'scripted demo model': { input: 0, output: 0, cacheWrite: 0, cacheRead: 0 },
};

export function costOf(usage: Usage, price: ModelPrice): number {
  return roundUsd(
    (usage.inputTokens * price.input + usage.outputTokens * price.output + usage.cacheWriteTokens * price.cacheWrite + usage.cacheReadTokens * price.cacheRead) / 1e6,
  );
}

export function spendOf(usage: Usage, price: ModelPrice): Spend {
  return { ...noSpend(), turns: 1, ...usage, costUsd: costOf(usage, price) };
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
