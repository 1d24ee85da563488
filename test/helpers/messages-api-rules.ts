// The Messages API's documented request rules for the current Claude models, as the fake API enforces
// them. Written from the platform docs (model overview pages, the thinking and tool-use pages, Dec 2026),
// on purpose not from the adapter's lineup: a rule the adapter misunderstands must fail here.
//  - Sonnet 5 and later: manual extended thinking (`thinking.type: "enabled"`) and non-default
//    temperature, top_p or top_k are refused.
//  - Sonnet 5.5, Opus 5.5, Fable 5.x: forced tool use (`tool_choice` any or tool) is refused; thinking
//    cannot be disabled on Opus 5.5 and Fable; thinking blocks are bound to the model and to the unchanged
//    conversation before them.
//  - Haiku 4.5 knows only manual extended thinking: adaptive thinking and effort are refused.
//  - Every model: an assistant turn that carried thinking goes back exactly as it came (thinking and
//    redacted_thinking blocks complete, signature included, in order); thinking blocks take no
//    cache_control; at most 4 cache breakpoints; every tool_use is answered by a tool_result in the next
//    user message.
import { createHash } from 'node:crypto';

interface Family {
  adaptive: boolean;
  manualThinkingRefused: boolean;
  samplingRefused: boolean;
  forcedToolRefused: boolean;
  thinkingAlwaysOn: boolean;
  /** Thinking blocks are valid only for the model that wrote them, after the same conversation. */
  boundThinking: boolean;
}

const NEWEST: Family = { adaptive: true, manualThinkingRefused: true, samplingRefused: true, forcedToolRefused: true, thinkingAlwaysOn: false, boundThinking: true };
const FAMILIES: Record<string, Family> = {
  'claude-sonnet-5-5': NEWEST,
  'claude-opus-5-5': { ...NEWEST, thinkingAlwaysOn: true },
  'claude-fable-5-1': { ...NEWEST, thinkingAlwaysOn: true },
  'claude-sonnet-5': { adaptive: true, manualThinkingRefused: true, samplingRefused: true, forcedToolRefused: false, thinkingAlwaysOn: false, boundThinking: false },
  'claude-opus-5': { adaptive: true, manualThinkingRefused: false, samplingRefused: false, forcedToolRefused: false, thinkingAlwaysOn: false, boundThinking: false },
  'claude-sonnet-4-6': { adaptive: true, manualThinkingRefused: false, samplingRefused: false, forcedToolRefused: false, thinkingAlwaysOn: false, boundThinking: false },
  'claude-haiku-4-5': { adaptive: false, manualThinkingRefused: false, samplingRefused: false, forcedToolRefused: false, thinkingAlwaysOn: false, boundThinking: false },
};
const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'];

type Block = Record<string, unknown> & { type: string };
interface Body {
  model: string;
  max_tokens?: number;
  system?: unknown;
  tools?: unknown;
  messages: { role: string; content: Block[] | string }[];
  thinking?: { type: string };
  output_config?: { effort?: string };
  tool_choice?: { type: string };
  temperature?: number;
  top_p?: number;
  top_k?: number;
}

/** What the fake served: each answer, keyed by the model and the conversation it answered. */
export class ServedTurns {
  private readonly turns = new Map<string, { model: string; content: string }>();

  remember(body: Body, content: unknown[]): void {
    this.turns.set(prefixKey(body, body.messages.length), { model: body.model, content: canonical(content) });
  }

  /** The answer served after `messages[0..index)` of this request, if any. */
  answerAt(body: Body, index: number): { model: string; content: string } | undefined {
    return this.turns.get(prefixKey(body, index));
  }

  /** Was this exact content ever served, for any conversation? */
  everServed(content: unknown[]): { model: string } | undefined {
    const wanted = canonical(content);
    for (const turn of this.turns.values()) if (turn.content === wanted) return turn;
    return undefined;
  }
}

/** The message the API would answer with, or null when the request keeps every rule. */
export function brokenRule(body: Body, served: ServedTurns): string | null {
  const family = FAMILIES[body.model];
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  const thinkingType = body.thinking?.type;
  if (family) {
    if (thinkingType === 'enabled' && family.manualThinkingRefused) return `thinking.type.enabled is not supported for ${body.model}. Use thinking.type.adaptive and output_config.effort.`;
    if (thinkingType === 'adaptive' && !family.adaptive) return `thinking.type.adaptive is not supported for ${body.model}.`;
    if (body.output_config?.effort !== undefined && !family.adaptive) return `output_config.effort is not supported for ${body.model}.`;
    if (thinkingType === 'disabled' && family.thinkingAlwaysOn) return `thinking cannot be disabled for ${body.model}.`;
    if (family.samplingRefused) {
      for (const param of ['temperature', 'top_p', 'top_k'] as const) if (body[param] !== undefined) return `${param}: setting sampling parameters is not supported for ${body.model}.`;
    }
    if (family.forcedToolRefused && (body.tool_choice?.type === 'any' || body.tool_choice?.type === 'tool')) return `tool_choice.type "${body.tool_choice.type}" (forced tool use) is not supported for ${body.model}.`;
  }
  if (body.output_config?.effort !== undefined && !EFFORTS.includes(body.output_config.effort)) return `output_config.effort: Input should be ${EFFORTS.map((e) => `'${e}'`).join(', ')}`;
  if (countBreakpoints(body) > 4) return 'A maximum of 4 blocks with cache_control may be provided.';

  for (const [index, message] of body.messages.entries()) {
    const content = typeof message.content === 'string' ? [] : message.content;
    for (const [blockIndex, block] of content.entries()) {
      if ((block.type === 'thinking' || block.type === 'redacted_thinking') && 'cache_control' in block) return `messages.${index}.content.${blockIndex}.${block.type}.cache_control: Extra inputs are not permitted`;
      if (block.type === 'thinking' && (typeof block.signature !== 'string' || block.signature === '')) return `messages.${index}.content.${blockIndex}.thinking.signature: Field required`;
    }
    if (message.role === 'assistant') {
      const broken = echoBroken(body, index, content, served, family);
      if (broken) return broken;
      const next = body.messages[index + 1];
      const calls = content.filter((b) => b.type === 'tool_use').map((b) => b.id as string);
      const answered = next && typeof next.content !== 'string' ? next.content.filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id as string) : [];
      const unanswered = next ? calls.filter((id) => !answered.includes(id)) : [];
      if (unanswered.length > 0) return `messages.${index + 1}: tool_use ids were found without tool_result blocks immediately after: ${unanswered.join(', ')}. Each tool_use block must have a corresponding tool_result block in the next message.`;
    }
  }
  return null;
}

/**
 * An assistant turn the fake served must come back as it was served. With thinking in it, anything else
 * is refused; on the newest models also the same thinking after another model or another conversation.
 */
function echoBroken(body: Body, index: number, content: Block[], served: ServedTurns, family: Family | undefined): string | null {
  const answer = served.answerAt(body, index);
  const hasThinking = (blocks: unknown[]) => blocks.some((b) => ['thinking', 'redacted_thinking'].includes((b as Block).type));
  if (answer) {
    if (answer.model !== body.model && family?.boundThinking && hasThinking(JSON.parse(answer.content) as unknown[])) {
      return `messages.${index}.content: thinking blocks were created by ${answer.model} and cannot be sent to ${body.model}.`;
    }
    if (canonical(content) === answer.content) return null;
    if (hasThinking(JSON.parse(answer.content) as unknown[]) || hasThinking(content)) {
      return `messages.${index}.content: thinking or redacted_thinking blocks in an assistant message cannot be modified, removed or reordered. These blocks must remain as they were in the original response.`;
    }
    return null;
  }
  if (!hasThinking(content)) return null;
  const elsewhere = served.everServed(content);
  if (elsewhere && family?.boundThinking) return `messages.${index}.content: thinking blocks are bound to the conversation they were created in; the system prompt, tools or earlier messages changed.`;
  if (!elsewhere) return `messages.${index}.content: Invalid signature in thinking block.`;
  return null;
}

function countBreakpoints(body: Body): number {
  let count = 0;
  JSON.stringify(body, (key, value: unknown) => {
    if (key === 'cache_control') count += 1;
    return value;
  });
  return count;
}

/**
 * The conversation up to `index`, without cache breakpoints (they move every turn and do not count) and
 * without the model, so that a turn sent to another model is found and refused for that reason.
 */
function prefixKey(body: Body, index: number): string {
  return createHash('sha256').update(canonical([body.system ?? null, body.tools ?? null, body.messages.slice(0, index)])).digest('hex');
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (key === 'cache_control') return undefined;
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
    return v;
  });
}
