// What the agent loop needs from a language model, and nothing more. The Messages-API shape is used
// because it maps one-to-one onto Anthropic's and is easy to script.
import type { ModelChoice } from '../../domain/catalog-schema';
import type { RoundKind } from '../../domain/contracts';

/**
 * `thinking` and `redacted_thinking` are the model's own and go back to it exactly as received (signature
 * and data included, in order): the API refuses a tool loop whose earlier thinking was dropped or edited.
 */
export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'redacted_thinking'; data: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; toolUseId: string; content: string; isError: boolean };

export interface Message {
  role: 'user' | 'assistant';
  content: ContentBlock[];
}

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input. */
  inputSchema: Record<string, unknown>;
}

export interface ModelRequest {
  system: string;
  messages: Message[];
  tools: ToolSpec[];
  maxTokens: number;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  /** All cache writes; `cacheWrite1hTokens` of them were written for an hour (priced higher). */
  cacheWriteTokens: number;
  cacheWrite1hTokens?: number;
}

export interface ModelResponse {
  content: ContentBlock[];
  /**
   * `pause_turn`: the API paused a long turn, send the conversation back to let it continue;
   * `model_context_window_exceeded`: the conversation no longer fits the model.
   */
  stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal' | 'pause_turn' | 'model_context_window_exceeded' | 'other';
  usage: Usage;
  /** Block types in the answer this service does not know: it cannot send them back, so the step ends. */
  unknownBlocks?: string[];
}

export interface Model {
  /** Shown in state and transcripts, e.g. "claude-sonnet-4-5" or "scripted demo model". */
  readonly name: string;
  complete(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse>;
}

/** What a loop is for; a scripted model picks its script from it, a real model ignores it. */
export type AgentTask =
  | { kind: 'propose'; runId: string; requirement: string }
  /** `feedback`: the review feedback so far, joined (a scripted model picks its rewritten narrative by it). */
  | { kind: 'summarize'; runId: string; requirement: string; feedback: string }
  /** `corrections`: what the thread added since the first brief (a scripted model picks its correction by it). */
  | { kind: 'extract'; runId: string; requirement: string; corrections: string | null }
  | {
      kind: 'edit';
      runId: string;
      requirement: string;
      repo: string;
      round: number;
      roundKind: RoundKind;
      /** How many fix rounds this repository had before this one, in this run. */
      priorFixRounds: number;
      feedback: string | null;
    };

export interface ModelProvider {
  /** One line for logs and `npm start`: which model serves this worker. */
  readonly description: string;
  readonly isDemo: boolean;
  /** The model a step gets when the catalog names none. */
  readonly defaultModel: string;
  /** The catalog's choice for the step (model and effort); unset fields fall back to the worker's. */
  forTask(task: AgentTask, choice?: ModelChoice): Model;
}

/** The request no longer fits the model's context window (the API's 400 "prompt is too long"). */
export class ContextWindowExceededError extends Error {
  override readonly name = 'ContextWindowExceededError';
}

/** The model cannot serve this task at all (no key, unknown demo requirement): retrying will not help. */
export class ModelUnavailableError extends Error {
  override readonly name = 'ModelUnavailableError';
}

export function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
}
