// The one bounded agent loop, used for proposing repositories and for editing one repository:
// check the budget, ask the model, run the tools it asked for, record the step. Nothing else.
import { addSpend, type Spend } from '../../shared/budget';
import type { BudgetStop, TranscriptEntry } from '../../shared/contracts';
import { planCall, spendOf, type ModelPrice, type StepLimits } from './budget';
import { worstCaseAfterCall } from './spend-ledger';
import type { ContentBlock, Message, Model } from './model';
import type { Redactor } from './redact';
import type { ToolRegistry } from './tools/registry';

export type LoopOutcome<Final> =
  | { kind: 'final'; value: Final; spent: Spend }
  | { kind: 'ended'; text: string; spent: Spend }
  | { kind: 'limit'; stop: BudgetStop; spent: Spend };

export interface LoopOptions<Final> {
  model: Model;
  price: ModelPrice;
  system: string;
  prompt: string;
  tools: ToolRegistry<Final>;
  limits: StepLimits;
  /** Spending carried over from an earlier attempt of the same step, so a retry cannot reset it. */
  spent: Spend;
  maxTokensPerCall: number;
  redact: Redactor;
  /** Said once when the model stops without calling a final tool (e.g. the proposer answering in prose). */
  nudgeIfNoFinal?: string;
  signal?: AbortSignal;
  /** Awaited before each model call with the most the step will have spent once it is answered. */
  beforeCall?(worstCase: Spend): Promise<void>;
  onStep(entry: TranscriptEntry, spent: Spend): Promise<void>;
}

export async function runAgentLoop<Final>(options: LoopOptions<Final>): Promise<LoopOutcome<Final>> {
  const { model, tools, limits, signal, redact } = options;
  const messages: Message[] = [{ role: 'user', content: [{ type: 'text', text: options.prompt }] }];
  const startedAt = Date.now();
  const carriedWallTime = options.spent.wallTimeMs;
  const clock = (spend: Spend): Spend => ({ ...spend, wallTimeMs: carriedWallTime + (Date.now() - startedAt) });
  let spent = clock(options.spent);
  let nudge = options.nudgeIfNoFinal;
  let estimatedInput = tokensIn(options.system + JSON.stringify(tools.specs()) + options.prompt);

  for (let turn = spent.turns + 1; ; turn++) {
    const plan = planCall(spent, limits, options.price, estimatedInput, options.maxTokensPerCall);
    if (plan.kind === 'stop') return { kind: 'limit', stop: plan.stop, spent };
    signal?.throwIfAborted();

    const request = { system: options.system, messages, tools: tools.specs(), maxTokens: plan.maxTokens };
    await options.beforeCall?.(worstCaseAfterCall(spent, options.price, estimatedInput, plan.maxTokens));
    const callSignal = signal ? AbortSignal.any([signal, AbortSignal.timeout(plan.timeoutMs)]) : AbortSignal.timeout(plan.timeoutMs);
    let response;
    try {
      response = await model.complete(request, callSignal);
    } catch (error) {
      signal?.throwIfAborted(); // a cancel is a cancel, not a budget stop
      if (callSignal.aborted) return { kind: 'limit', stop: { scope: 'step', dimensions: ['wallTimeMs'], message: 'wall time ran out during a model call' }, spent: clock(spent) };
      throw error;
    }
    const turnSpend = spendOf(response.usage, options.price);
    spent = clock(addSpend(spent, turnSpend));
    messages.push({ role: 'assistant', content: response.content });

    const entry: TranscriptEntry = {
      turn,
      at: Date.now(),
      request: { messages: request.messages.length, tools: request.tools.length },
      text: clip(redact(textOf(response.content)), 4000),
      toolCalls: [],
      usage: response.usage,
      costUsd: turnSpend.costUsd,
    };
    const results: ContentBlock[] = [];
    let final: { value: Final } | undefined;
    for (const call of response.content) {
      if (call.type !== 'tool_use') continue;
      signal?.throwIfAborted();
      const result = await tools.call(call.name, call.input, signal);
      const text = redact(result.text);
      entry.toolCalls.push({ name: call.name, input: clip(redact(JSON.stringify(call.input)), 2000), result: clip(text, 2000), isError: result.isError });
      results.push({ type: 'tool_result', toolUseId: call.id, content: text, isError: result.isError });
      final ??= result.final;
    }
    spent = clock(spent);
    await options.onStep(entry, spent);

    if (final) return { kind: 'final', value: final.value, spent };
    if (results.length === 0) {
      if (!nudge) return { kind: 'ended', text: entry.text, spent };
      results.push({ type: 'text', text: nudge });
      nudge = undefined;
    }
    messages.push({ role: 'user', content: results });
    const readSoFar = response.usage.inputTokens + response.usage.cacheReadTokens + response.usage.cacheWriteTokens;
    estimatedInput = readSoFar + response.usage.outputTokens + tokensIn(JSON.stringify(results));
  }
}

/** Transcripts live in workflow history: keep each field short, saying what was cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

function textOf(content: ContentBlock[]): string {
  return content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');
}

/** A rough count (about four characters a token), only used to plan the next call. */
function tokensIn(text: string): number {
  return Math.ceil(text.length / 4);
}
