// A deterministic stand-in for a language model: it plays a script of tool calls for requirements it
// knows (the bundled demo requirements, or a test's scenario) and refuses everything else plainly.
import { findScenario, matchesAll, type Scenario, type ScriptTurn } from './scenarios';
import {
  ModelUnavailableError,
  type AgentTask,
  type ContentBlock,
  type Model,
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
} from './model';

import { SCRIPTED_MODEL_NAME } from './lineup';

export { SCRIPTED_MODEL_NAME };

export class ScriptedModelProvider implements ModelProvider {
  readonly isDemo = true;
  readonly description: string;
  readonly defaultModel = SCRIPTED_MODEL_NAME;

  constructor(private readonly scenarios: readonly Scenario[], source = 'bundled demo scenarios') {
    this.description = `${SCRIPTED_MODEL_NAME} (no ANTHROPIC_API_KEY set; plays ${scenarios.length} ${source})`;
  }

  /** The catalog's model choice is ignored: one script serves every step, at no cost. */
  forTask(task: AgentTask): Model {
    const scenario = findScenario(this.scenarios, task.requirement);
    if (!scenario) {
      throw new ModelUnavailableError(
        'No language model is configured: the scripted demo model only knows the bundled demo requirements ' +
          '(list them with `npm run cli -- demos`). Set ANTHROPIC_API_KEY to work on any requirement.',
      );
    }
    if (task.kind === 'summarize') {
      if (!scenario.narrative) throw new ModelUnavailableError('The demo scenario has no narrative; the summary is assembled plainly.');
      const after = (scenario.narrativeAfter ?? []).filter((n) => task.feedback && matchesAll(task.feedback, n.when)).reduce<{ when: string[]; text: string } | undefined>((best, n) => (!best || n.when.length > best.when.length ? n : best), undefined);
      return new ScriptedModel([{ say: after?.text ?? scenario.narrative, calls: [], expect: [], delayMs: 0 }], 'propose');
    }
    return new ScriptedModel(this.turnsFor(scenario, task), task.kind === 'edit' ? 'edit' : 'propose');
  }

  private turnsFor(scenario: Scenario, task: Exclude<AgentTask, { kind: 'summarize' }>): ScriptTurn[] {
    if (task.kind === 'propose') return scenario.propose;
    if (task.kind === 'extract') {
      const correction = task.corrections ? scenario.correct?.find((c) => matchesAll(task.corrections!, c.when)) : undefined;
      return correction?.turns ?? scenario.gather ?? [];
    }
    const script = scenario.edit[task.repo];
    if (!script) return [];
    switch (task.roundKind) {
      case 'initial':
        return script.initial;
      case 'fix':
        return script.fix[task.priorFixRounds] ?? [];
      case 'feedback':
        return script.feedback.find((f) => matchesAll(task.feedback ?? '', f.when))?.turns ?? [];
      case 'continue':
        return script.continue;
    }
  }
}

/** Plays one script: one scripted turn per model call, then finishes. */
export class ScriptedModel implements Model {
  readonly name = SCRIPTED_MODEL_NAME;
  private next = 0;

  constructor(private readonly turns: readonly ScriptTurn[], private readonly purpose: 'propose' | 'edit') {}

  async complete(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse> {
    const turnIndex = this.next++;
    const turn = this.turns[turnIndex];
    const conversation = JSON.stringify(request.messages);
    // What a script expects is text as people write it (quotes and all): match the conversation's own text
    // as well as its JSON form, where quotes and newlines are escaped.
    const said = conversationText(request.messages);
    if (turn?.delayMs) await sleep(turn.delayMs, signal);
    for (const expected of turn?.expect ?? []) {
      if (!said.includes(expected) && !conversation.includes(expected)) {
        throw new Error(`Scripted model, turn ${turnIndex + 1}: the conversation does not contain "${expected}".`);
      }
    }
    const content: ContentBlock[] = [];
    if (turn) {
      if (turn.say) content.push({ type: 'text', text: turn.say });
      turn.calls.forEach((call, i) => content.push({ type: 'tool_use', id: `script_${turnIndex}_${i}`, name: call.name, input: call.input }));
    } else if (this.purpose === 'edit') {
      content.push({ type: 'tool_use', id: `script_${turnIndex}_finish`, name: 'finish', input: { summary: 'No further scripted changes.' } });
    } else {
      content.push({ type: 'text', text: 'The script has no more steps.' });
    }
    const usesTools = content.some((c) => c.type === 'tool_use');
    return {
      content,
      stopReason: usesTools ? 'tool_use' : 'end_turn',
      // Deterministic estimates (about four characters a token), so budgets behave the same every run.
      usage: {
        inputTokens: Math.ceil((request.system.length + conversation.length) / 4),
        outputTokens: Math.ceil(JSON.stringify(content).length / 4),
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      },
    };
  }
}

function conversationText(messages: ModelRequest['messages']): string {
  return messages
    .flatMap((m) => m.content)
    .map((block) => (block.type === 'text' ? block.text : block.type === 'tool_result' ? block.content : block.type === 'tool_use' ? JSON.stringify(block.input) : ''))
    .join('\n');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    }, { once: true });
  });
}
