// The bounded loop and the dependency scheduler, on their own.
import { z } from 'zod';
import { runAgentLoop } from '../activities/agent/loop';
import { noSpending } from '../activities/agent/budget';
import { ScriptedModel } from '../activities/agent/scripted-model';
import { defineTool, ToolRegistry } from '../activities/agent/tools/registry';
import type { ScriptTurn } from '../activities/agent/scenarios';
import { inDependencyOrder } from '../workflows/dependency-scheduler';

const turn = (calls: ScriptTurn['calls']): ScriptTurn => ({ calls, expect: [], delayMs: 0 });

function echoTools(seen: unknown[]) {
  return new ToolRegistry<string>([
    defineTool({ name: 'note', description: 'note', input: z.object({ text: z.string() }), run: async ({ text }) => { seen.push(text); return { text: `noted ${text}` }; } }),
    defineTool({ name: 'finish', description: 'finish', input: z.object({ summary: z.string() }), run: async ({ summary }) => ({ final: summary, text: 'ok' }) }),
  ]);
}

test('the loop stops before a model call that would pass the turn limit', async () => {
  const seen: unknown[] = [];
  const model = new ScriptedModel([1, 2, 3, 4, 5].map((n) => turn([{ name: 'note', input: { text: `step ${n}` } }])), 'edit');
  const complete = jest.spyOn(model, 'complete');
  const steps: number[] = [];
  const outcome = await runAgentLoop({
    model, system: 's', prompt: 'p', tools: echoTools(seen), limits: { maxTurns: 3 }, spent: noSpending(), maxTokensPerCall: 100,
    onStep: async (step) => void steps.push(step.turn),
  });
  expect(outcome).toMatchObject({ kind: 'limit', reason: 'turn limit reached (3 of 3 turns)' });
  expect(complete).toHaveBeenCalledTimes(3);
  expect(seen).toEqual(['step 1', 'step 2', 'step 3']);
  expect(steps).toEqual([1, 2, 3]);
});

test('spending carried from an earlier attempt counts against the limit', async () => {
  const model = new ScriptedModel([turn([{ name: 'note', input: { text: 'again' } }])], 'edit');
  const outcome = await runAgentLoop({
    model, system: 's', prompt: 'p', tools: echoTools([]), limits: { maxTurns: 3 }, spent: { ...noSpending(), turns: 3 }, maxTokensPerCall: 100,
    onStep: async () => undefined,
  });
  expect(outcome.kind).toBe('limit');
});

test('a bad tool input goes back to the model as an error it can act on, and finish ends the loop', async () => {
  const model = new ScriptedModel([turn([{ name: 'note', input: { text: 42 } }]), turn([{ name: 'finish', input: { summary: 'done' } }])], 'edit');
  const results: string[] = [];
  const outcome = await runAgentLoop({
    model, system: 's', prompt: 'p', tools: echoTools([]), limits: { maxTurns: 10 }, spent: noSpending(), maxTokensPerCall: 100,
    onStep: async (step) => void results.push(...step.toolCalls.map((c) => `${c.isError ? 'error' : 'ok'}: ${c.result}`)),
  });
  expect(outcome).toMatchObject({ kind: 'final', value: 'done' });
  expect(results[0]).toMatch(/^error: Invalid input for note: .*text/s);
});

test('repositories start only after their dependencies, at most `limit` at a time', async () => {
  const deps: Record<string, string[]> = { app: ['ui', 'api'], ui: [], api: [], docs: [], tools: [] };
  const events: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const gates = new Map<string, () => void>();
  const work = (id: string) => new Promise<void>((resolve) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    events.push(`start ${id}`);
    gates.set(id, () => { running--; events.push(`end ${id}`); resolve(); });
  });
  const done = inDependencyOrder(['app', 'ui', 'api', 'docs', 'tools'], (id) => deps[id]!, 2, work);
  const release = async (id: string) => { await new Promise((r) => setImmediate(r)); gates.get(id)!(); };
  await release('ui');
  await release('api');
  await release('docs');
  await release('app');
  await release('tools');
  await done;
  expect(maxRunning).toBe(2);
  expect(events.indexOf('start app')).toBeGreaterThan(events.indexOf('end ui'));
  expect(events.indexOf('start app')).toBeGreaterThan(events.indexOf('end api'));
});

test('a failing repository fails the whole step without unhandled rejections', async () => {
  await expect(inDependencyOrder(['a', 'b'], () => [], 2, async (id) => { if (id === 'a') throw new Error('a broke'); })).rejects.toThrow('a broke');
});
