// The one bounded agent loop, used for proposing repositories and for editing one repository:
// check the budget, ask the model, run the tools it asked for, record the step. Nothing else.
import { addSpend, type Spend } from '../../domain/budget';
import type { BudgetStop, TranscriptEntry } from '../../domain/contracts';
import { planCall, type StepLimits } from '../../domain/budget';
import { spendOf, type ModelPrice } from './pricing';
import { worstCaseAfterCall } from './spend-ledger';
import { ContextWindowExceededError, type ContentBlock, type Message, type Model, type ModelResponse } from './model';
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
      if (error instanceof ContextWindowExceededError) return { kind: 'limit', stop: { scope: 'step', dimensions: ['inputTokens'], message: error.message }, spent: clock(spent) };
      throw error;
    }
    const turnSpend = spendOf(response.usage, options.price);
    spent = clock(addSpend(spent, turnSpend));
    // Exactly as received, thinking blocks included: the API refuses a conversation whose thinking changed.
    messages.push({ role: 'assistant', content: response.content });

    const thinking = thinkingOf(response.content);
    const entry: TranscriptEntry = {
      turn,
      at: Date.now(),
      request: { messages: request.messages.length, tools: request.tools.length },
      text: clip(redact(textOf(response.content)), 4000),
      ...(thinking ? { thinking: clip(redact(thinking), 2000) } : {}),
      ...(UNUSUAL_STOPS.has(response.stopReason) ? { stopReason: response.stopReason } : {}),
      toolCalls: [],
      usage: { inputTokens: response.usage.inputTokens, outputTokens: response.usage.outputTokens, cacheReadTokens: response.usage.cacheReadTokens, cacheWriteTokens: response.usage.cacheWriteTokens },
      costUsd: turnSpend.costUsd,
    };
    const ending = endingOf<Final>(response, entry.text, spent);
    if (ending) {
      await options.onStep(entry, spent);
      return ending;
    }
    // A turn cut off at max_tokens may end in a tool call whose input is incomplete: none of its calls run.
    const cutOff = response.stopReason === 'max_tokens';
    const results: ContentBlock[] = [];
    let final: { value: Final } | undefined;
    for (const call of response.content) {
      if (call.type !== 'tool_use') continue;
      signal?.throwIfAborted();
      const result = cutOff ? { text: CUT_OFF_CALL, isError: true, final: undefined } : await tools.call(call.name, call.input, signal);
      const text = redact(result.text);
      entry.toolCalls.push({ name: call.name, input: clip(redact(JSON.stringify(call.input)), 2000), result: clip(text, 2000), isError: result.isError });
      results.push({ type: 'tool_result', toolUseId: call.id, content: text, isError: result.isError });
      final ??= result.final;
    }
    spent = clock(spent);
    await options.onStep(entry, spent);

    if (final) return { kind: 'final', value: final.value, spent };
    // A paused turn continues when the conversation is sent back as it is.
    if (response.stopReason === 'pause_turn' && results.length === 0) continue;
    if (results.length === 0) {
      if (cutOff) results.push({ type: 'text', text: CUT_OFF_TURN });
      else if (!nudge) return { kind: 'ended', text: entry.text, spent };
      else {
        results.push({ type: 'text', text: nudge });
        nudge = undefined;
      }
    }
    messages.push({ role: 'user', content: results });
    const readSoFar = response.usage.inputTokens + response.usage.cacheReadTokens + response.usage.cacheWriteTokens;
    estimatedInput = readSoFar + response.usage.outputTokens + tokensIn(JSON.stringify(results));
  }
}

const UNUSUAL_STOPS = new Set<ModelResponse['stopReason']>(['max_tokens', 'refusal', 'pause_turn', 'model_context_window_exceeded', 'stop_sequence', 'other']);
const CUT_OFF_CALL = 'Not run: your answer reached the output limit, so this call may be incomplete. Call it again with a shorter input (e.g. write a large file in parts).';
const CUT_OFF_TURN = 'Your answer reached the output limit and was cut off. Continue in shorter steps.';

/** Answers that end the step whatever else they hold: unknown content, a refusal, or a conversation the model can no longer read. */
function endingOf<Final>({ stopReason, unknownBlocks }: ModelResponse, text: string, spent: Spend): Exclude<LoopOutcome<Final>, { kind: 'final' }> | null {
  if (unknownBlocks?.length) return { kind: 'ended', text: `The model answered with content this service cannot handle (${unknownBlocks.join(', ')}); the step ended and its work so far is kept.`, spent };
  if (stopReason === 'refusal') return { kind: 'ended', text: `The model declined to continue (refusal).${text ? ` It said: ${text}` : ''}`, spent };
  if (stopReason === 'model_context_window_exceeded') {
    return { kind: 'limit', stop: { scope: 'step', dimensions: ['inputTokens'], message: "the conversation outgrew the model's context window" }, spent };
  }
  return null;
}

/** Transcripts live in workflow history: keep each field short, saying what was cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

function textOf(content: ContentBlock[]): string {
  return content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');
}

function thinkingOf(content: ContentBlock[]): string {
  return content.flatMap((c) => (c.type === 'thinking' && c.thinking.trim() ? [c.thinking.trim()] : [])).join('\n');
}

/** A rough count (about four characters a token), only used to plan the next call. */
function tokensIn(text: string): number {
  return Math.ceil(text.length / 4);
}
