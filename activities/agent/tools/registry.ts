// Tools the agent may call: each has a zod input schema, validated before it runs. A tool either
// answers with text for the model, or ends the loop with a final value (e.g. the proposal).
import { z } from 'zod';
import type { ToolSpec } from '../model';

export type ToolOutcome<Final = unknown> = { text: string; isError?: boolean } | { final: Final; text: string };

export interface Tool<Input = unknown, Final = unknown> {
  name: string;
  description: string;
  input: z.ZodType<Input>;
  /** The schema shown to the model, when the tool validates its input itself (see the proposal tool). */
  inputShownToModel?: z.ZodType;
  run(input: Input, signal?: AbortSignal): Promise<ToolOutcome<Final>>;
}

/** Mistakes the model can act on (bad path, text not found): returned to the model, never thrown. */
export class ToolRefusal extends Error {
  override readonly name = 'ToolRefusal';
}

export function defineTool<Schema extends z.ZodType, Final = never>(tool: {
  name: string;
  description: string;
  input: Schema;
  inputShownToModel?: z.ZodType;
  run(input: z.output<Schema>, signal?: AbortSignal): Promise<ToolOutcome<Final>>;
}): Tool<z.output<Schema>, Final> {
  return tool as unknown as Tool<z.output<Schema>, Final>;
}

export interface ToolCallResult<Final> {
  text: string;
  isError: boolean;
  final?: { value: Final };
}

export class ToolRegistry<Final = unknown> {
  private readonly tools = new Map<string, Tool<unknown, Final>>();

  constructor(tools: readonly Tool<any, any>[], private readonly maxOutputChars = 16_000) {
    for (const tool of tools) this.tools.set(tool.name, tool as Tool<unknown, Final>);
  }

  get names(): string[] {
    return [...this.tools.keys()];
  }

  specs(): ToolSpec[] {
    return [...this.tools.values()].map((tool) => ({
      name: tool.name,
      description: tool.description,
      inputSchema: z.toJSONSchema(tool.inputShownToModel ?? tool.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
    }));
  }

  async call(name: string, rawInput: unknown, signal?: AbortSignal): Promise<ToolCallResult<Final>> {
    const tool = this.tools.get(name);
    if (!tool) {
      return { isError: true, text: `There is no tool "${name}". Available tools: ${this.names.join(', ')}.` };
    }
    const parsed = tool.input.safeParse(rawInput);
    if (!parsed.success) {
      return { isError: true, text: `Invalid input for ${name}: ${z.prettifyError(parsed.error)}` };
    }
    try {
      const outcome = await tool.run(parsed.data, signal);
      const text = this.cap(outcome.text);
      if ('final' in outcome) return { text, isError: false, final: { value: outcome.final } };
      return { text, isError: outcome.isError ?? false };
    } catch (error) {
      if (error instanceof ToolRefusal) return { isError: true, text: this.cap(error.message) };
      throw error;
    }
  }

  private cap(text: string): string {
    if (text.length <= this.maxOutputChars) return text;
    const omitted = text.length - this.maxOutputChars;
    return `${text.slice(0, this.maxOutputChars)}\n[... ${omitted} more characters omitted; narrow the request]`;
  }
}
