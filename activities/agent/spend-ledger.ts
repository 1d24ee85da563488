// Spend that survives a crash: before each model call the step records, in its run, the most it will have
// spent once the call is answered (what it spent so far, plus the call's worst case: every input token
// written to the cache at the dearest rate and every allowed output token). Awaited, so the record is in
// the run's history before the call is made. A worker killed after the API answered, before anything else
// was recorded, cannot make the run forget a call: the retried attempt starts from the record, and any
// number of crashes can never spend past the budget. The figure errs high and is corrected by the next
// record (before the next call) or by the step's result.
import { addSpend, noSpend, roundUsd, type Spend } from '../../domain/budget';
import type { ModelPrice } from './pricing';

/** The spend a step will have reached at most once a call with this input estimate and max_tokens is answered. */
export function worstCaseAfterCall(spent: Spend, price: ModelPrice, estimatedInputTokens: number, maxTokens: number): Spend {
  const dearestInput = Math.max(price.input, price.cacheWrite, (price as { cacheWrite1h?: number }).cacheWrite1h ?? 0);
  const call: Spend = {
    ...noSpend(),
    turns: 1,
    inputTokens: estimatedInputTokens,
    outputTokens: maxTokens,
    costUsd: roundUsd((estimatedInputTokens * dearestInput + maxTokens * price.output) / 1e6),
  };
  return addSpend(spent, call);
}
