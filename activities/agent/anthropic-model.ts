// The Model interface over Anthropic's Messages API (tool use). The SDK retries rate limits (429),
// overload (529), server errors and timeouts with backoff a bounded number of times; past that the step
// fails with a readable message and Temporal's activity retry policy takes over. Prompt caching marks
// what stays the same across turns: tools and system prompt, and the task (repository context).
//
// The rules of the current models (see lineup.ts), kept here in one place: thinking is adaptive (sent as
// `thinking: {type: "adaptive"}` with the step's effort in `output_config`), never manual; no sampling
// parameters and no forced tool choice are ever sent; every assistant turn goes back exactly as it came,
// thinking and redacted_thinking blocks included, because thinking is bound to the model and to the
// unchanged conversation before it.
import Anthropic from '@anthropic-ai/sdk';
import type { ModelChoice } from '../../domain/catalog-schema';
import { traitsOf } from './lineup';
import {
  ContextWindowExceededError,
  ModelUnavailableError,
  type AgentTask,
  type ContentBlock,
  type Message,
  type Model,
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
} from './model';

export interface AnthropicSettings {
  apiKey: string;
  model: string;
  baseURL?: string;
  /** Retries inside one model call (429, 529, 5xx, timeouts), with the SDK's exponential backoff. */
  maxRetries: number;
  /** Per HTTP request. */
  timeoutMs: number;
}

/** A model call that failed after the SDK's own retries; retrying the step later may work. */
export class ModelApiError extends Error {
  override readonly name = 'ModelApiError';
}

const EPHEMERAL = { type: 'ephemeral' } as const;

export class AnthropicModelProvider implements ModelProvider {
  readonly isDemo = false;
  readonly description: string;
  private readonly client: Anthropic;

  constructor(private readonly settings: AnthropicSettings) {
    this.client = new Anthropic({
      apiKey: settings.apiKey,
      baseURL: settings.baseURL ?? null,
      maxRetries: settings.maxRetries,
      timeout: settings.timeoutMs,
      logLevel: 'off',
    });
    this.description = `Anthropic ${settings.model}${settings.baseURL ? ` via ${settings.baseURL}` : ''}`;
  }

  get defaultModel(): string {
    return this.settings.model;
  }

  forTask(_task: AgentTask, choice: ModelChoice = {}): Model {
    return new AnthropicModel(this.client, { ...this.settings, model: choice.model ?? this.settings.model }, choice.effort);
  }
}

export class AnthropicModel implements Model {
  readonly name: string;

  constructor(private readonly client: Anthropic, private readonly settings: AnthropicSettings, private readonly effort?: ModelChoice['effort']) {
    this.name = settings.model;
  }

  async complete(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse> {
    const tools = request.tools.map((tool, i) => ({
      name: tool.name,
      description: tool.description,
      input_schema: tool.inputSchema as Anthropic.Tool.InputSchema,
      // The last tool's breakpoint caches every tool definition.
      ...(i === request.tools.length - 1 ? { cache_control: EPHEMERAL } : {}),
    }));
    try {
      const response = await this.client.messages.create(
        {
          model: this.settings.model,
          max_tokens: request.maxTokens,
          system: [{ type: 'text', text: request.system, cache_control: EPHEMERAL }],
          tools,
          messages: toAnthropicMessages(request.messages),
          ...thinkingSettings(this.name, this.effort),
        },
        { signal },
      );
      const converted = response.content.map((block) => ({ type: block.type, ours: fromAnthropicBlock(block) }));
      const unknownBlocks = converted.filter((c) => c.ours === null).map((c) => c.type);
      return {
        content: converted.flatMap((c) => (c.ours ? [c.ours] : [])),
        stopReason: stopReasonOf(response.stop_reason),
        usage: usageOf(response.usage),
        ...(unknownBlocks.length > 0 ? { unknownBlocks } : {}),
      };
    } catch (error) {
      throw explainApiError(error, this.settings);
    }
  }
}

/**
 * Thinking as the model wants it: adaptive where the model thinks adaptively, with the step's effort;
 * nothing for models that only know manual thinking (they answer without it) or that this service does
 * not know (priced through MODEL_PRICES: they get the API's defaults, and an effort set for them is not sent). Thinking is shown summarized so that what the agent says
 * between tool calls, which the newest models put inside thinking blocks, reaches the transcript.
 */
export function thinkingSettings(model: string, effort: ModelChoice['effort']): Pick<Anthropic.MessageCreateParamsNonStreaming, 'thinking' | 'output_config'> {
  const adaptive = traitsOf(model)?.thinking === 'adaptive';
  return {
    ...(adaptive ? { thinking: { type: 'adaptive', display: 'summarized' } } : {}),
    ...(effort && adaptive ? { output_config: { effort } } : {}),
  };
}

/** A response block in our shape; thinking blocks keep every field the API needs back. */
function fromAnthropicBlock(block: Anthropic.ContentBlock): ContentBlock | null {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: block.text };
    case 'thinking':
      return { type: 'thinking', thinking: block.thinking, signature: block.signature };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: block.data };
    case 'tool_use':
      return { type: 'tool_use', id: block.id, name: block.name, input: block.input };
    default:
      // Server tool blocks are never requested: the loop ends a step whose answer holds one (unknownBlocks).
      return null;
  }
}

function usageOf(usage: Anthropic.Usage): ModelResponse['usage'] {
  const split = usage.cache_creation;
  return {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    cacheReadTokens: usage.cache_read_input_tokens ?? 0,
    cacheWriteTokens: usage.cache_creation_input_tokens ?? (split ? split.ephemeral_5m_input_tokens + split.ephemeral_1h_input_tokens : 0),
    ...(split?.ephemeral_1h_input_tokens ? { cacheWrite1hTokens: split.ephemeral_1h_input_tokens } : {}),
  };
}

/**
 * Our messages in the API's shape. Cache breakpoints: the first user message (the task and repository
 * context, the same every turn) and the newest message (so each turn reads the previous turns from cache).
 */
export function toAnthropicMessages(messages: readonly Message[]): Anthropic.MessageParam[] {
  return messages.map((message, index) => {
    const breakpoint = index === 0 || index === messages.length - 1;
    // Thinking blocks cannot carry a cache breakpoint: it goes on the last block that can.
    const cacheAt = breakpoint ? lastIndexWhere(message.content, (b) => b.type !== 'thinking' && b.type !== 'redacted_thinking') : -1;
    const content = message.content.map((block, blockIndex): Anthropic.ContentBlockParam => {
      const cache = blockIndex === cacheAt ? { cache_control: EPHEMERAL } : {};
      switch (block.type) {
        case 'text':
          return { type: 'text', text: block.text, ...cache };
        case 'thinking':
          return { type: 'thinking', thinking: block.thinking, signature: block.signature };
        case 'redacted_thinking':
          return { type: 'redacted_thinking', data: block.data };
        case 'tool_use':
          return { type: 'tool_use', id: block.id, name: block.name, input: block.input, ...cache };
        case 'tool_result':
          return { type: 'tool_result', tool_use_id: block.toolUseId, content: block.content, is_error: block.isError, ...cache };
      }
    });
    return { role: message.role, content };
  });
}

function lastIndexWhere<T>(items: readonly T[], predicate: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i]!)) return i;
  return -1;
}

function stopReasonOf(reason: string | null): ModelResponse['stopReason'] {
  switch (reason) {
    case 'end_turn':
    case 'tool_use':
    case 'max_tokens':
    case 'stop_sequence':
    case 'refusal':
    case 'pause_turn':
    case 'model_context_window_exceeded':
      return reason;
    default:
      return 'other';
  }
}

/** Names what happened and what to do; the API key never appears in the message. */
export function explainApiError(error: unknown, settings: Pick<AnthropicSettings, 'model' | 'maxRetries'>): Error {
  if (error instanceof Anthropic.APIUserAbortError) return error;
  const tries = `${settings.maxRetries + 1} attempts`;
  if (error instanceof Anthropic.APIConnectionTimeoutError) return new ModelApiError(`The model API timed out (${tries}); the step will be retried.`);
  if (error instanceof Anthropic.APIConnectionError) return new ModelApiError(`The model API could not be reached (${tries}): ${error.message}`);
  if (error instanceof Anthropic.APIError) {
    const detail = apiErrorDetail(error);
    switch (error.status) {
      case 429:
        return new ModelApiError(`The model API kept rate-limiting requests (429, ${tries}); the step will be retried later.`);
      case 529:
        return new ModelApiError(`The model API is overloaded (529, ${tries}); the step will be retried later.`);
      case 401:
        return new ModelUnavailableError(`The model API rejected the key (401${detail}). Check ANTHROPIC_API_KEY.`);
      case 403:
        return new ModelUnavailableError(`The model API refused access (403${detail}). The key may lack permission for ${settings.model}.`);
      case 404:
        return new ModelUnavailableError(`The model API does not know the model "${settings.model}" (404${detail}). Check ANTHROPIC_MODEL.`);
      case 400:
      case 413:
        if (/prompt is too long|context window|too many (input )?tokens/i.test(detail)) return new ContextWindowExceededError(`The conversation no longer fits ${settings.model}'s context window (${error.status}${detail}).`);
        return new ModelUnavailableError(`The model API refused the request (${error.status}${detail}).`);
      case 422:
        return new ModelUnavailableError(`The model API refused the request (${error.status}${detail}).`);
      default:
        if (typeof error.status === 'number' && error.status >= 500) return new ModelApiError(`The model API failed (${error.status}${detail}, ${tries}); the step will be retried.`);
        return new ModelUnavailableError(`The model API refused the request (${error.status ?? 'no status'}${detail}).`);
    }
  }
  return error instanceof Error ? error : new Error(String(error));
}

function apiErrorDetail(error: InstanceType<typeof Anthropic.APIError>): string {
  const body = error.error as { error?: { type?: string; message?: string } } | undefined;
  const inner = body?.error;
  return inner?.message ? `: ${inner.type ? `${inner.type}, ` : ''}${inner.message}` : '';
}
