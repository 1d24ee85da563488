// The bounded loop on its own: every budget dimension stops it before a call that could cross the limit,
// carried spending counts, bad tool input goes back to the model; and the dependency scheduler.
import { z } from 'zod';
import { runAgentLoop, type LoopOptions } from '../activities/agent/loop';
import type { ModelPrice } from '../activities/agent/pricing';
import type { StepLimits } from '../domain/budget';
import type { Model, ModelRequest, ModelResponse, Usage } from '../activities/agent/model';
import { redactorFor } from '../activities/agent/redact';
import { ScriptedModel } from '../activities/agent/scripted-model';
import { defineTool, ToolRegistry } from '../activities/agent/tools/registry';
import type { ScriptTurn } from '../activities/agent/scenarios';
import { noSpend, type BudgetLimits } from '../domain/budget';
import { inDependencyOrder } from '../workflows/dependency-scheduler';

const turn = (calls: ScriptTurn['calls']): ScriptTurn => ({ calls, expect: [], delayMs: 0 });
const FREE: ModelPrice = { input: 0, output: 0, cacheWrite: 0, cacheRead: 0 };
const WIDE: BudgetLimits = { turns: 1000, inputTokens: 1e9, outputTokens: 1e9, costUsd: 1000, wallTimeMs: 600_000 };

function limits(step: Partial<BudgetLimits>, run: Partial<BudgetLimits> = {}): StepLimits {
  return { step: { ...WIDE, ...step }, run: { ...WIDE, ...run } };
}

function tools(seen: unknown[] = []) {
  return new ToolRegistry<string>([
    defineTool({ name: 'note', description: 'note', input: z.object({ text: z.string() }), run: async ({ text }) => { seen.push(text); return { text: `noted ${text}` }; } }),
    defineTool({ name: 'finish', description: 'finish', input: z.object({ summary: z.string() }), run: async ({ summary }) => ({ final: summary, text: 'ok' }) }),
  ]);
}

/** A model that always asks for one more note, reporting the usage it is told to, after `delayMs`. */
class MeteredModel implements Model {
  readonly name = 'metered';
  readonly requests: ModelRequest[] = [];
  constructor(private readonly usage: (request: ModelRequest) => Usage, private readonly delayMs = 0) {}
  async complete(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse> {
    this.requests.push(request);
    if (this.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.delayMs);
        signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('aborted')); }, { once: true });
      });
    }
    return { content: [{ type: 'tool_use', id: `t${this.requests.length}`, name: 'note', input: { text: `call ${this.requests.length}` } }], stopReason: 'tool_use', usage: this.usage(request) };
  }
}

function loop(model: Model, options: Partial<LoopOptions<string>> & Pick<LoopOptions<string>, 'limits'>) {
  return runAgentLoop<string>({
    model, price: FREE, system: 's', prompt: 'p', tools: tools(), spent: noSpend(), maxTokensPerCall: 1000, redact: (t) => t,
    onStep: async () => undefined,
    ...options,
  });
}

const usage = (u: Partial<Usage>): Usage => ({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, ...u });

test('turns: no call starts once the turn limit is reached', async () => {
  const model = new MeteredModel(() => usage({ inputTokens: 10, outputTokens: 10 }));
  const outcome = await loop(model, { limits: limits({ turns: 3 }) });
  expect(model.requests).toHaveLength(3);
  expect(outcome).toMatchObject({ kind: 'limit', stop: { scope: 'step', dimensions: ['turns'] } });
  expect(outcome.spent.turns).toBe(3);
});

test('input tokens: a call that would read past the limit does not start', async () => {
  const model = new MeteredModel(() => usage({ inputTokens: 400, cacheReadTokens: 600, outputTokens: 20 }));
  const outcome = await loop(model, { limits: limits({ inputTokens: 2500 }) });
  expect(model.requests).toHaveLength(2); // 1000 + 1000 read; a third (~1000 more) would cross 2500
  expect(outcome).toMatchObject({ kind: 'limit', stop: { dimensions: ['inputTokens'] } });
  expect(outcome.spent.inputTokens + outcome.spent.cacheReadTokens).toBeLessThanOrEqual(2500);
});

test('output tokens: each call may only ask for what is left, so the limit is never crossed', async () => {
  // The worst case: the model writes as much as it is allowed to.
  const model = new MeteredModel((request) => usage({ inputTokens: 5, outputTokens: request.maxTokens }));
  const outcome = await loop(model, { limits: limits({ outputTokens: 1500 }), maxTokensPerCall: 600 });
  expect(model.requests.map((r) => r.maxTokens)).toEqual([600, 600, 300]);
  expect(outcome.spent.outputTokens).toBe(1500);
  expect(outcome).toMatchObject({ kind: 'limit', stop: { dimensions: ['outputTokens'] } });
});

test('money: calls are sized to what is left and stop before they could cost more', async () => {
  const price: ModelPrice = { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 };
  const model = new MeteredModel((request) => usage({ inputTokens: 200, outputTokens: request.maxTokens }));
  const outcome = await loop(model, { price, limits: limits({ costUsd: 0.04 }), maxTokensPerCall: 1000 });
  expect(outcome).toMatchObject({ kind: 'limit', stop: { dimensions: ['costUsd'] } });
  expect(outcome.spent.costUsd).toBeLessThanOrEqual(0.04);
  // Two full calls, then one sized down to what the money left can pay for, then a stop.
  expect(model.requests.map((r) => r.maxTokens)).toEqual([1000, 1000, expect.any(Number)]);
  expect(model.requests[2]!.maxTokens).toBeLessThan(1000);
  expect(model.requests[2]!.maxTokens).toBeGreaterThanOrEqual(256);
});

test('wall time: a call is cut off when the time runs out, and no further call starts', async () => {
  const model = new MeteredModel(() => usage({ inputTokens: 5, outputTokens: 5 }), 300);
  const started = Date.now();
  const outcome = await loop(model, { limits: limits({ wallTimeMs: 700 }) });
  expect(outcome).toMatchObject({ kind: 'limit', stop: { dimensions: ['wallTimeMs'] } });
  expect(Date.now() - started).toBeLessThan(1200);
  expect(model.requests.length).toBeLessThanOrEqual(3);
});

test('the run budget (what the run reserved for this step) is reported as a run limit', async () => {
  const model = new MeteredModel(() => usage({ inputTokens: 5, outputTokens: 5 }));
  const outcome = await loop(model, { limits: limits({ turns: 10 }, { turns: 2 }) });
  expect(outcome).toMatchObject({ kind: 'limit', stop: { scope: 'run', dimensions: ['turns'] } });
});

test('spending carried from an earlier attempt counts against the limits', async () => {
  const model = new MeteredModel(() => usage({ inputTokens: 5, outputTokens: 5 }));
  const outcome = await loop(model, { limits: limits({ turns: 3 }), spent: { ...noSpend(), turns: 2 } });
  expect(model.requests).toHaveLength(1);
  expect(outcome.spent.turns).toBe(3);
});

test('a bad tool input goes back to the model as an error it can act on, and finish ends the loop', async () => {
  const model = new ScriptedModel([turn([{ name: 'note', input: { text: 42 } }]), turn([{ name: 'finish', input: { summary: 'done' } }])], 'edit');
  const results: string[] = [];
  const outcome = await loop(model, {
    limits: limits({}),
    onStep: async (entry) => void results.push(...entry.toolCalls.map((c) => `${c.isError ? 'error' : 'ok'}: ${c.result}`)),
  });
  expect(outcome).toMatchObject({ kind: 'final', value: 'done' });
  expect(results[0]).toMatch(/^error: Invalid input for note: .*text/s);
});

test('secrets are masked in what the model sees and in the transcript', async () => {
  const secret = 'forge-token-1234567890';
  const seen: string[] = [];
  const registry = new ToolRegistry<string>([
    defineTool({ name: 'leak', description: 'leak', input: z.object({}), run: async () => ({ text: `token=${secret} key=sk-ant-api03-abcdefghijklmnop` }) }),
  ]);
  const model = new ScriptedModel([turn([{ name: 'leak', input: {} }])], 'edit');
  const complete = jest.spyOn(model, 'complete');
  await runAgentLoop<string>({
    model, price: FREE, system: 's', prompt: 'p', tools: registry, spent: noSpend(), maxTokensPerCall: 1000, limits: limits({ turns: 2 }),
    redact: redactorFor([secret]),
    onStep: async (entry) => void seen.push(JSON.stringify(entry)),
  });
  const sentToModel = JSON.stringify(complete.mock.calls.map((c) => c[0].messages));
  for (const text of [sentToModel, ...seen]) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain('sk-ant-api03');
  }
  expect(sentToModel).toContain('token=[REDACTED]');
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
  for (const id of ['ui', 'api', 'docs', 'app', 'tools']) await release(id);
  await done;
  expect(maxRunning).toBe(2);
  expect(events.indexOf('start app')).toBeGreaterThan(events.indexOf('end ui'));
  expect(events.indexOf('start app')).toBeGreaterThan(events.indexOf('end api'));
});

test('a failing repository fails the whole step without unhandled rejections', async () => {
  await expect(inDependencyOrder(['a', 'b'], () => [], 2, async (id) => { if (id === 'a') throw new Error('a broke'); })).rejects.toThrow('a broke');
});
