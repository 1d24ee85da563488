// What autonomy may cost: limits per step (one proposal, one repository's edit round) and per run, in
// turns, tokens, money and wall time. Pure, so the workflow and the activities share the arithmetic.
import { z } from 'zod';
import type { BudgetStop } from './contracts';
import { DurationMsSchema } from './duration';

export const BUDGET_DIMENSIONS = ['turns', 'inputTokens', 'outputTokens', 'costUsd', 'wallTimeMs'] as const;
export type BudgetDimension = (typeof BUDGET_DIMENSIONS)[number];

export type BudgetLimits = Record<BudgetDimension, number>;

export const BudgetLimitsSchema = z.object({
  turns: z.number().int().positive(),
  inputTokens: z.number().int().positive(),
  outputTokens: z.number().int().positive(),
  costUsd: z.number().nonnegative(),
  /** "20m", "2h" … in YAML; milliseconds once parsed. */
  wallTime: DurationMsSchema,
});

/** A partial set of limits: an override that may only lower the catalog's, or an extension to add. */
export const BudgetPatchSchema = BudgetLimitsSchema.partial().strict();
export type BudgetPatch = z.infer<typeof BudgetPatchSchema>;

export function limitsFrom(parsed: z.infer<typeof BudgetLimitsSchema>): BudgetLimits {
  return { turns: parsed.turns, inputTokens: parsed.inputTokens, outputTokens: parsed.outputTokens, costUsd: parsed.costUsd, wallTimeMs: parsed.wallTime };
}

function patchValue(patch: BudgetPatch, dimension: BudgetDimension): number | undefined {
  return dimension === 'wallTimeMs' ? patch.wallTime : patch[dimension];
}

/** The lower of each limit: a requester may tighten the catalog's budget, never loosen it. */
export function tighten(limits: BudgetLimits, patch: BudgetPatch | undefined): BudgetLimits {
  if (!patch) return limits;
  const out = { ...limits };
  for (const d of BUDGET_DIMENSIONS) {
    const value = patchValue(patch, d);
    if (value !== undefined) out[d] = Math.min(out[d], value);
  }
  return out;
}

/** Adds an extension; with an empty one, doubles the dimensions that ran out. */
export function extend(limits: BudgetLimits, patch: BudgetPatch, exhausted: readonly BudgetDimension[]): BudgetLimits {
  const out = { ...limits };
  const given = BUDGET_DIMENSIONS.filter((d) => patchValue(patch, d) !== undefined);
  if (given.length === 0) {
    for (const d of exhausted) out[d] = limits[d] * 2;
    return out;
  }
  for (const d of given) out[d] += patchValue(patch, d)!;
  return out;
}

export interface Spend {
  turns: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  wallTimeMs: number;
}

export function noSpend(): Spend {
  return { turns: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0, wallTimeMs: 0 };
}

export function addSpend(a: Spend, b: Spend): Spend {
  return {
    turns: a.turns + b.turns,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    costUsd: roundUsd(a.costUsd + b.costUsd),
    wallTimeMs: a.wallTimeMs + b.wallTimeMs,
  };
}

/** The larger of two records of the same step's spending, field by field (null: nothing recorded). */
export function maxSpend(a: Spend, b: Spend | null | undefined): Spend {
  if (!b) return a;
  return {
    turns: Math.max(a.turns, b.turns),
    inputTokens: Math.max(a.inputTokens, b.inputTokens),
    outputTokens: Math.max(a.outputTokens, b.outputTokens),
    cacheReadTokens: Math.max(a.cacheReadTokens, b.cacheReadTokens),
    cacheWriteTokens: Math.max(a.cacheWriteTokens, b.cacheWriteTokens),
    costUsd: Math.max(a.costUsd, b.costUsd),
    wallTimeMs: Math.max(a.wallTimeMs, b.wallTimeMs),
  };
}

export function roundUsd(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/** Input tokens as limits count them: every token the model read, cached or not. */
export function inputTokensOf(spend: Spend): number {
  return spend.inputTokens + spend.cacheReadTokens + spend.cacheWriteTokens;
}

export function spentOn(spend: Spend, dimension: BudgetDimension): number {
  switch (dimension) {
    case 'inputTokens':
      return inputTokensOf(spend);
    case 'turns':
    case 'outputTokens':
    case 'costUsd':
    case 'wallTimeMs':
      return spend[dimension];
  }
}

/** What is left of `limits` after `spend` (never below zero). */
export function remaining(limits: BudgetLimits, spend: Spend): BudgetLimits {
  const out = { ...limits };
  for (const d of BUDGET_DIMENSIONS) out[d] = Math.max(0, limits[d] - spentOn(spend, d));
  return out;
}

/** `a − b` per dimension, never below zero. */
export function subtractLimits(a: BudgetLimits, b: BudgetLimits): BudgetLimits {
  const out = { ...a };
  for (const d of BUDGET_DIMENSIONS) out[d] = Math.max(0, a[d] - b[d]);
  return out;
}

export function minLimits(a: BudgetLimits, b: BudgetLimits): BudgetLimits {
  const out = { ...a };
  for (const d of BUDGET_DIMENSIONS) out[d] = Math.min(a[d], b[d]);
  return out;
}

export function sumLimits(all: readonly BudgetLimits[]): BudgetLimits {
  const out: BudgetLimits = { turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, wallTimeMs: 0 };
  for (const limits of all) for (const d of BUDGET_DIMENSIONS) out[d] += limits[d];
  return out;
}

export function exhaustedDimensions(limits: BudgetLimits, spend: Spend): BudgetDimension[] {
  return BUDGET_DIMENSIONS.filter((d) => spentOn(spend, d) >= limits[d]);
}

export function describeDimension(dimension: BudgetDimension, value: number): string {
  switch (dimension) {
    case 'turns':
      return `${value} turns`;
    case 'inputTokens':
      return `${value} input tokens`;
    case 'outputTokens':
      return `${value} output tokens`;
    case 'costUsd':
      return `$${value.toFixed(2)}`;
    case 'wallTimeMs':
      return `${Math.round(value / 1000)}s of agent time`;
  }
}

// ---- a step's budget, enforced by the agent loop before every model call ----

/** What the plan needs of a model's price (USD per million tokens). */
export interface CallPrice {
  input: number;
  output: number;
  cacheWrite: number;
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
export function planCall(spent: Spend, limits: StepLimits, price: CallPrice, estimatedInputTokens: number, maxTokensPerCall: number): CallPlan {
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
