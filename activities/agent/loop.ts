// The one bounded agent loop, used for proposing repositories and for editing one repository:
// check limits, ask the model, run the tools it asked for, record the step. Nothing else.
import type { ContentBlock, Message, Model, Usage } from './model';
import type { ToolRegistry } from './tools/registry';
import { addUsage, limitReachedBeforeCall, type Limits, type Spending } from './budget';

export interface LoopStep {
  turn: number;
  usage: Usage;
  text: string;
  toolCalls: { name: string; input: unknown; result: string; isError: boolean }[];
}

export type LoopOutcome<Final> =
  | { kind: 'final'; value: Final; spent: Spending }
  | { kind: 'ended'; text: string; spent: Spending }
  | { kind: 'limit'; reason: string; spent: Spending };

export interface LoopOptions<Final> {
  model: Model;
  system: string;
  prompt: string;
  tools: ToolRegistry<Final>;
  limits: Limits;
  /** Spending carried over from an earlier attempt of the same step, so a retry cannot reset it. */
  spent: Spending;
  maxTokensPerCall: number;
  signal?: AbortSignal;
  onStep(step: LoopStep, spent: Spending): Promise<void>;
}

export async function runAgentLoop<Final>(options: LoopOptions<Final>): Promise<LoopOutcome<Final>> {
  const { model, tools, limits, signal } = options;
  const messages: Message[] = [{ role: 'user', content: [{ type: 'text', text: options.prompt }] }];
  let spent = options.spent;
  for (let turn = spent.turns + 1; ; turn++) {
    const reason = limitReachedBeforeCall(spent, limits);
    if (reason) return { kind: 'limit', reason, spent };
    signal?.throwIfAborted();

    const response = await model.complete(
      { system: options.system, messages, tools: tools.specs(), maxTokens: options.maxTokensPerCall },
      signal,
    );
    spent = addUsage(spent, response.usage);
    messages.push({ role: 'assistant', content: response.content });

    const step: LoopStep = { turn, usage: response.usage, text: textOf(response.content), toolCalls: [] };
    const results: ContentBlock[] = [];
    let final: { value: Final } | undefined;
    for (const call of response.content) {
      if (call.type !== 'tool_use') continue;
      signal?.throwIfAborted();
      const result = await tools.call(call.name, call.input, signal);
      step.toolCalls.push({ name: call.name, input: call.input, result: result.text, isError: result.isError });
      results.push({ type: 'tool_result', toolUseId: call.id, content: result.text, isError: result.isError });
      final ??= result.final;
    }
    await options.onStep(step, spent);

    if (final) return { kind: 'final', value: final.value, spent };
    if (results.length === 0) return { kind: 'ended', text: step.text, spent };
    messages.push({ role: 'user', content: results });
  }
}

function textOf(content: ContentBlock[]): string {
  return content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');
}
