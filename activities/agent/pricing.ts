// What model calls cost: a call's usage priced by its model's price table (lineup.ts).
import { noSpend, roundUsd, type Spend } from '../../domain/budget';
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
