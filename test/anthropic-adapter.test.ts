// The real Anthropic adapter (SDK, retries, caching, parsing) against recorded Messages API exchanges
// served over local HTTP: a multi-turn tool-use edit, 429 and 529 retried, a malformed tool input answered
// with a validation error, cache usage counted, and errors that no retry fixes surfaced plainly.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { AnthropicModelProvider, ModelApiError } from '../activities/agent/anthropic-model';
import { DEFAULT_PRICES, costOf } from '../activities/agent/pricing';
import { runAgentLoop } from '../activities/agent/loop';
import { ModelUnavailableError, type AgentTask, type Message, type Model } from '../activities/agent/model';
import { redactorFor } from '../activities/agent/redact';
import { editingTools } from '../activities/agent/tools/files';
import { defineTool, ToolRegistry } from '../activities/agent/tools/registry';
import { runCommandTool } from '../activities/agent/tools/run-command';
import { commandEnvironment } from '../activities/commands';
import { RepoSandbox } from '../activities/agent/tools/sandbox';
import { noSpend } from '../domain/budget';
import type { TranscriptEntry } from '../domain/contracts';
import { loadRecording, serveRecording, type RecordedAnthropic, type RecordedExchange } from './helpers/recorded-anthropic';
import { brokenRule, ServedTurns } from './helpers/messages-api-rules';
import { assertPriced } from '../worker/model-provider';
import { createWorld, PROJECT_ROOT, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(120_000);

const KEY = 'sk-ant-api03-test-key-do-not-leak-0123456789';
const TASK: AgentTask = { kind: 'edit', runId: 'r', requirement: 'sale badge', repo: 'ui-kit', round: 1, roundKind: 'initial', priorFixRounds: 0, feedback: null };
const WIDE = { turns: 50, inputTokens: 1e7, outputTokens: 1e6, costUsd: 100, wallTimeMs: 600_000 };

let recording: RecordedAnthropic | undefined;
afterEach(async () => {
  await recording?.close();
  recording = undefined;
});

function provider(baseURL: string, maxRetries = 2) {
  return new AnthropicModelProvider({ apiKey: KEY, model: 'claude-sonnet-4-6', baseURL, maxRetries, timeoutMs: 10_000 });
}

async function copyOfUiKit(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-anthropic-'));
  await fs.cp(path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit'), path.join(dir, 'repo'), { recursive: true });
  return path.join(dir, 'repo');
}

test('a multi-turn tool-use edit through the real adapter, with retries, caching and a corrected tool input', async () => {
  const exchanges = await loadRecording('edit-ui-kit-sale-tone');
  recording = await serveRecording(exchanges);
  const dir = await copyOfUiKit();
  const sandbox = await RepoSandbox.open(dir);
  const finish = defineTool({ name: 'finish', description: 'done', input: z.object({ summary: z.string() }), run: async ({ summary }) => ({ final: summary, text: 'ok' }) });
  const tools = new ToolRegistry<string>([...editingTools(sandbox), runCommandTool(dir, { allowed: [{ name: 'test', run: 'node --test', timeoutSeconds: 60 }], env: (home) => commandEnvironment(home), onOutput: () => undefined }), finish]);
  const entries: TranscriptEntry[] = [];
  const price = DEFAULT_PRICES['claude-sonnet-4-6']!;

  const outcome = await runAgentLoop({
    model: provider(recording.baseURL).forTask(TASK),
    price,
    system: 'You edit repositories.',
    prompt: 'Add a sale badge tone.',
    tools,
    limits: { step: WIDE, run: WIDE },
    spent: noSpend(),
    maxTokensPerCall: 2048,
    redact: redactorFor([KEY]),
    onStep: async (entry) => void entries.push(entry),
  });

  expect(outcome).toMatchObject({ kind: 'final', value: expect.stringContaining('"sale" badge tone') });
  // Seven answers, plus the 429 and the 529 the SDK retried on its own.
  expect(recording.received).toHaveLength(9);
  expect(recording.pending()).toBe(0);
  expect(await fs.readFile(path.join(dir, 'src/badge.js'), 'utf8')).toContain("sale: { background: '#dcfce7'");
  expect(await fs.readFile(path.join(dir, 'test/sale-badge.test.js'), 'utf8')).toContain("renderBadge('Sale', 'sale')");

  // Usage, including prompt-cache reads and writes, is counted and priced.
  const answered = exchanges.filter((e) => e.status === 200).map((e) => (e.body as { usage: Record<string, number> }).usage);
  const sum = (field: string) => answered.reduce((total, u) => total + (u[field] ?? 0), 0);
  expect(outcome.spent).toMatchObject({
    turns: 7,
    inputTokens: sum('input_tokens'),
    outputTokens: sum('output_tokens'),
    cacheReadTokens: sum('cache_read_input_tokens'),
    cacheWriteTokens: sum('cache_creation_input_tokens'),
  });
  expect(outcome.spent.cacheReadTokens).toBeGreaterThan(10_000);
  const expectedCost = answered.reduce((total, u) => total + costOf({ inputTokens: u.input_tokens!, outputTokens: u.output_tokens!, cacheReadTokens: u.cache_read_input_tokens!, cacheWriteTokens: u.cache_creation_input_tokens! }, price), 0);
  expect(outcome.spent.costUsd).toBeCloseTo(expectedCost, 6);

  // What stays the same across turns is marked for caching: tools, system prompt, the task message.
  const first = recording.received[0]!.body;
  expect(first.system[0]!.cache_control).toEqual({ type: 'ephemeral' });
  expect(first.tools.at(-1)!.cache_control).toEqual({ type: 'ephemeral' });
  expect(first.tools.slice(0, -1).every((t) => t.cache_control === undefined)).toBe(true);
  expect(first.messages[0]!.content.at(-1)!.cache_control).toEqual({ type: 'ephemeral' });
  expect(recording.received.every((r) => r.body.model === 'claude-sonnet-4-6' && r.body.max_tokens <= 2048)).toBe(true);

  // The malformed write_file input went back to the model as an error it could act on.
  const afterMalformed = recording.received[6]!.body.messages.at(-1)!.content[0]!;
  expect(afterMalformed).toMatchObject({ type: 'tool_result', is_error: true });
  expect(afterMalformed.content).toMatch(/Invalid input for write_file: .*content/s);
  expect(entries.find((e) => e.turn === 4)!.toolCalls[0]).toMatchObject({ name: 'write_file', isError: true });

  // run_command ran the real check; the key went to the API and nowhere else.
  expect(entries.find((e) => e.turn === 6)!.toolCalls[0]!.result).toMatch(/test \(`node --test`\): exit code 0/);
  expect(recording.received[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
  expect(JSON.stringify(entries)).not.toContain(KEY);
  expect(JSON.stringify(recording.received.map((r) => r.body))).not.toContain(KEY);
});

function editTools(dir: string, sandbox: RepoSandbox): ToolRegistry<string> {
  const finish = defineTool({ name: 'finish', description: 'done', input: z.object({ summary: z.string() }), run: async ({ summary }) => ({ final: summary, text: 'ok' }) });
  return new ToolRegistry<string>([...editingTools(sandbox), runCommandTool(dir, { allowed: [{ name: 'test', run: 'node --test', timeoutSeconds: 60 }], env: (home) => commandEnvironment(home), onOutput: () => undefined }), finish]);
}

const SONNET_5_5 = (baseURL: string, maxRetries = 2) => new AnthropicModelProvider({ apiKey: KEY, model: 'claude-sonnet-5-5', baseURL, maxRetries, timeoutMs: 10_000 });

describe('the current models (Sonnet 5.5: adaptive thinking, thinking blocks bound to the conversation)', () => {
  test('a tool loop sends every thinking block back as received, prices 1-hour cache writes, and never runs a call cut off at max_tokens', async () => {
    const exchanges = await loadRecording('edit-ui-kit-sale-tone-sonnet-5-5');
    recording = await serveRecording(exchanges);
    const dir = await copyOfUiKit();
    const entries: TranscriptEntry[] = [];
    const price = DEFAULT_PRICES['claude-sonnet-5-5']!;
    const outcome = await runAgentLoop({
      model: SONNET_5_5(recording.baseURL).forTask(TASK, { effort: 'medium' }),
      price,
      system: 'You edit repositories.',
      prompt: 'Add a sale badge tone.',
      tools: editTools(dir, await RepoSandbox.open(dir)),
      limits: { step: WIDE, run: WIDE },
      spent: noSpend(),
      maxTokensPerCall: 2048,
      redact: redactorFor([KEY]),
      onStep: async (entry) => void entries.push(entry),
    });

    expect(recording.refused).toEqual([]);
    expect(outcome).toMatchObject({ kind: 'final', value: expect.stringContaining('"sale" badge tone') });
    expect(recording.pending()).toBe(0);
    // Each answer came back in the next request exactly as served: thinking, signature, redacted data, order.
    const answers = exchanges.filter((e) => e.status === 200).map((e) => (e.body as { content: unknown[] }).content);
    const lastRequest = recording.received.at(-1)!.body;
    const echoed = lastRequest.messages.filter((m) => m.role === 'assistant').map((m) => m.content.map(({ cache_control: _ignored, ...block }) => block));
    expect(echoed).toEqual(answers.slice(0, -1));
    expect(JSON.stringify(echoed)).toContain('"type":"redacted_thinking"');
    // Adaptive thinking, the step's effort, summarized so the transcript has it; nothing the model refuses.
    for (const { body } of recording.received) {
      expect(body).toMatchObject({ model: 'claude-sonnet-5-5', thinking: { type: 'adaptive', display: 'summarized' }, output_config: { effort: 'medium' } });
      expect(body).not.toHaveProperty('tool_choice');
      expect(body).not.toHaveProperty('temperature');
    }
    // What the agent said between tool calls arrived in thinking blocks and is in the transcript.
    expect(entries[0]!.thinking).toMatch(/Badges live in ui-kit/);
    // The write_file cut off at max_tokens was answered "not run", and the file on disk is the complete one.
    const cutOff = entries.find((e) => e.stopReason === 'max_tokens')!;
    expect(cutOff.toolCalls).toEqual([expect.objectContaining({ name: 'write_file', isError: true, result: expect.stringMatching(/^Not run: your answer reached the output limit/) })]);
    expect(await fs.readFile(path.join(dir, 'test/sale-badge.test.js'), 'utf8')).not.toContain('// truncated');
    expect(await fs.readFile(path.join(dir, 'test/sale-badge.test.js'), 'utf8')).toContain("renderBadge('Sale', 'sale')");
    // Priced at Sonnet 5.5's rates, 1-hour cache writes at the 1-hour rate.
    const usages = answers.length;
    expect(outcome.spent.turns).toBe(usages);
    const expected = exchanges
      .filter((e) => e.status === 200)
      .map((e) => (e.body as { usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number; cache_creation: { ephemeral_1h_input_tokens: number } } }).usage)
      .reduce((total, u) => total + (u.input_tokens * 2 + u.output_tokens * 10 + u.cache_read_input_tokens * 0.2 + (u.cache_creation_input_tokens - u.cache_creation.ephemeral_1h_input_tokens) * 2.5 + u.cache_creation.ephemeral_1h_input_tokens * 4) / 1e6, 0);
    expect(outcome.spent.costUsd).toBeCloseTo(expected, 6);
  });

  test('an adapter that drops, edits or moves thinking blocks is refused by the fake, as by the API', async () => {
    const exchanges = await loadRecording('edit-ui-kit-sale-tone-sonnet-5-5');
    recording = await serveRecording(exchanges);
    const model = SONNET_5_5(recording.baseURL, 0).forTask(TASK);
    const tools = [{ name: 'list_files', description: 'list', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } }];
    const first: Message = { role: 'user', content: [{ type: 'text', text: 'Add a sale badge tone.' }] };
    const answer = await model.complete({ system: 's', messages: [first], tools, maxTokens: 1024 });
    const call = answer.content.find((b) => b.type === 'tool_use') as { id: string };
    const result: Message = { role: 'user', content: [{ type: 'tool_result', toolUseId: call.id, content: 'src/badge.js', isError: false }] };
    const without = answer.content.filter((b) => b.type !== 'thinking');
    const edited = answer.content.map((b) => (b.type === 'thinking' ? { ...b, thinking: `${b.thinking} (edited)` } : b));
    const otherSystem = { system: 's, changed', messages: [first, { role: 'assistant', content: answer.content }, result] as Message[] };
    for (const broken of [without, edited]) {
      const failure = await model.complete({ system: 's', messages: [first, { role: 'assistant', content: broken }, result], tools, maxTokens: 1024 }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ModelUnavailableError);
      expect((failure as Error).message).toMatch(/refused the request \(400: invalid_request_error, messages\.1\.content: thinking or redacted_thinking blocks .* cannot be modified/);
    }
    const moved = await model.complete({ ...otherSystem, tools, maxTokens: 1024 }).catch((e: unknown) => e);
    expect((moved as Error).message).toMatch(/bound to the conversation/);
    const otherModel = await SONNET_5_5(recording.baseURL, 0).forTask(TASK, { model: 'claude-opus-5-5' }).complete({ system: 's', messages: [first, { role: 'assistant', content: answer.content }, result], tools, maxTokens: 1024 }).catch((e: unknown) => e);
    expect((otherModel as Error).message).toMatch(/created by claude-sonnet-5-5 and cannot be sent to claude-opus-5-5/);
    expect(recording.refused).toHaveLength(4);
    // The same turn sent back unchanged is served.
    const next = await model.complete({ system: 's', messages: [first, { role: 'assistant', content: answer.content }, result], tools, maxTokens: 1024 });
    expect(next.content.some((b) => b.type === 'thinking')).toBe(true);
  });

  test('the fake holds requests to the documented rules of each model', () => {
    const served = new ServedTurns();
    const base = { max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] };
    expect(brokenRule({ ...base, model: 'claude-sonnet-5-5', thinking: { type: 'adaptive' }, output_config: { effort: 'xhigh' } }, served)).toBeNull();
    expect(brokenRule({ ...base, model: 'claude-sonnet-5-5', thinking: { type: 'enabled' } }, served)).toMatch(/thinking\.type\.enabled is not supported/);
    expect(brokenRule({ ...base, model: 'claude-sonnet-5', temperature: 0.2 }, served)).toMatch(/sampling parameters/);
    expect(brokenRule({ ...base, model: 'claude-sonnet-5-5', tool_choice: { type: 'any' } }, served)).toMatch(/forced tool use/);
    expect(brokenRule({ ...base, model: 'claude-sonnet-5', tool_choice: { type: 'any' } }, served)).toBeNull();
    expect(brokenRule({ ...base, model: 'claude-opus-5-5', thinking: { type: 'disabled' } }, served)).toMatch(/cannot be disabled/);
    expect(brokenRule({ ...base, model: 'claude-haiku-4-5', thinking: { type: 'adaptive' } }, served)).toMatch(/not supported for claude-haiku-4-5/);
    expect(brokenRule({ ...base, model: 'claude-sonnet-5-5', output_config: { effort: 'extreme' } }, served)).toMatch(/output_config\.effort/);
    const unanswered = { ...base, model: 'claude-sonnet-5-5', messages: [...base.messages, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'x', input: {} }] }, { role: 'user', content: [{ type: 'text', text: 'go on' }] }] };
    expect(brokenRule(unanswered, served)).toMatch(/tool_use ids were found without tool_result blocks/);
  });

  test('a model and effort per step: the catalog\'s choice reaches the API, and a model without adaptive thinking gets no thinking settings', async () => {
    const answer = (model: string) => ({ status: 200, body: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } });
    recording = await serveRecording([answer('claude-opus-5-5'), answer('claude-haiku-4-5'), answer('claude-sonnet-5-5')]);
    const provider55 = SONNET_5_5(recording.baseURL);
    const ask = (m: Model) => m.complete({ system: 's', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], tools: [], maxTokens: 100 });
    await ask(provider55.forTask(TASK, { model: 'claude-opus-5-5', effort: 'max' }));
    await ask(provider55.forTask(TASK, { model: 'claude-haiku-4-5', effort: 'low' }));
    await ask(provider55.forTask(TASK));
    expect(recording.refused).toEqual([]);
    const [opus, haiku, sonnet] = recording.received.map((r) => r.body);
    expect(opus).toMatchObject({ model: 'claude-opus-5-5', thinking: { type: 'adaptive' }, output_config: { effort: 'max' } });
    expect(haiku!.model).toBe('claude-haiku-4-5');
    expect(haiku).not.toHaveProperty('thinking');
    expect(haiku).not.toHaveProperty('output_config');
    expect(sonnet).toMatchObject({ model: 'claude-sonnet-5-5', thinking: { type: 'adaptive' } });
    expect(sonnet).not.toHaveProperty('output_config');
  });

  test('refusal ends the step, a full context window stops it, and a paused turn is continued as it is', async () => {
    const turn = (stop: string, content: unknown[]) => ({ status: 200, body: { id: `msg_${stop}`, type: 'message', role: 'assistant', model: 'claude-sonnet-5-5', content, stop_reason: stop, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 } } });
    const thinking = { type: 'thinking', thinking: 'Looking.', signature: 'c2lnbmF0dXJl' };
    const loopWith = async (exchanges: RecordedExchange[]) => {
      recording = await serveRecording(exchanges);
      const dir = await copyOfUiKit();
      const result = await runAgentLoop({ model: SONNET_5_5(recording.baseURL, 0).forTask(TASK), price: DEFAULT_PRICES['claude-sonnet-5-5']!, system: 's', prompt: 'p', tools: editTools(dir, await RepoSandbox.open(dir)), limits: { step: WIDE, run: WIDE }, spent: noSpend(), maxTokensPerCall: 1024, redact: (t) => t, onStep: async () => undefined });
      const seen = recording;
      await seen.close();
      recording = undefined;
      return { result, seen };
    };
    const refused = await loopWith([turn('refusal', [thinking, { type: 'text', text: 'I cannot help with that.' }])]);
    expect(refused.result).toMatchObject({ kind: 'ended', text: expect.stringMatching(/^The model declined to continue \(refusal\)\. It said: I cannot help/) });
    const full = await loopWith([turn('model_context_window_exceeded', [thinking])]);
    expect(full.result).toMatchObject({ kind: 'limit', stop: { dimensions: ['inputTokens'], message: expect.stringContaining('context window') } });
    const paused = await loopWith([turn('pause_turn', [thinking]), turn('tool_use', [{ type: 'tool_use', id: 'toolu_f', name: 'finish', input: { summary: 'done' } }])]);
    expect(paused.result).toMatchObject({ kind: 'final', value: 'done' });
    expect(paused.seen.refused).toEqual([]);
    // The paused turn went back unchanged, as the last message, for the model to continue.
    expect(paused.seen.received[1]!.body.messages.at(-1)).toMatchObject({ role: 'assistant', content: [{ type: 'thinking', signature: 'c2lnbmF0dXJl' }] });
    // Content this service does not know cannot be sent back: the step ends and says so.
    const unknown = await loopWith([turn('end_turn', [{ type: 'hologram', data: 'x' }])]);
    expect(unknown.result).toMatchObject({ kind: 'ended', text: expect.stringContaining('content this service cannot handle (hologram)') });
    // The API's "prompt is too long" is a limit, not a failure.
    const tooLong = await loopWith([{ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 1000321 tokens > 1000000 maximum' } } }]);
    expect(tooLong.result).toMatchObject({ kind: 'limit', stop: { dimensions: ['inputTokens'], message: expect.stringContaining("no longer fits claude-sonnet-5-5's context window") } });
  });

  test('a worker starts on the current models and refuses one the catalog names but nobody priced', () => {
    const catalog = (model: string) => ({ policy: { models: { edit: { model } } }, repositories: [] }) as unknown as Parameters<typeof assertPriced>[2];
    expect(() => assertPriced(SONNET_5_5('http://127.0.0.1:9'), DEFAULT_PRICES, catalog('claude-opus-5-5'))).not.toThrow();
    expect(() => assertPriced(SONNET_5_5('http://127.0.0.1:9'), DEFAULT_PRICES, catalog('claude-nova-9'))).toThrow(/No price is configured for "claude-nova-9"; add it to a MODEL_PRICES file/);
    expect(() => assertPriced(SONNET_5_5('http://127.0.0.1:9'), { ...DEFAULT_PRICES, 'claude-nova-9': { input: 1, output: 2, cacheWrite: 1.25, cacheRead: 0.1 } }, catalog('claude-nova-9'))).not.toThrow();
  });
});

test('an error no retry can fix is surfaced at once, readably, without the key', async () => {
  recording = await serveRecording(await loadRecording('authentication-error'));
  const model = provider(recording.baseURL).forTask(TASK);
  const failure = await model.complete({ system: 's', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], tools: [], maxTokens: 100 }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ModelUnavailableError);
  expect((failure as Error).message).toBe('The model API rejected the key (401: authentication_error, invalid x-api-key). Check ANTHROPIC_API_KEY.');
  expect(recording.received).toHaveLength(1);
});

test('rate limits past the retries fail the call with a message a person can read', async () => {
  const limited = { status: 429, headers: { 'retry-after-ms': '10' }, body: { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limited' } } };
  recording = await serveRecording([limited, limited, limited, limited]);
  const model = provider(recording.baseURL, 2).forTask(TASK);
  const failure = await model.complete({ system: 's', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], tools: [], maxTokens: 100 }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ModelApiError);
  expect((failure as Error).message).toBe('The model API kept rate-limiting requests (429, 3 attempts); the step will be retried later.');
  expect(recording.received).toHaveLength(3);
});

describe('inside a run', () => {
  let world: World;
  let stopWorker: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await stopWorker?.();
    stopWorker = undefined;
  });
  afterAll(async () => world?.close());

  test('an edit by the real adapter is checked, costed, and its transcript is reachable from the state', async () => {
    recording = await serveRecording(await loadRecording('run-ui-kit-sale-tone'));
    ({ stop: stopWorker } = await world.startWorker([], { models: provider(recording.baseURL), redact: redactorFor([KEY, world.forgeToken]) }));
    const { runId } = await world.gateway.start({ requirement: 'Add a sale tone to badges', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
    const state = await waitForPhase(world.gateway, runId, 'awaiting_review');
    const repo = state.repos['ui-kit']!;
    expect(repo.checks.at(-1)!.passed).toBe(true);
    expect(repo.files.map((f) => f.path)).toEqual(['src/badge.js', 'test/sale-badge.test.js']);
    expect(repo.agentNotes).toContain('"sale" badge tone');
    expect(repo.spend.costUsd).toBeGreaterThan(0);
    expect(state.budget.used.cacheReadTokens).toBe(repo.spend.cacheReadTokens);
    expect(state.budget.steps).toEqual([
      expect.objectContaining({ step: 'edit ui-kit round 1', model: 'claude-sonnet-4-6', stoppedBy: null }),
      expect.objectContaining({ step: 'write the summary', model: 'claude-sonnet-4-6' }),
    ]);
    expect(state.summary).toMatchObject({ narrativeBy: 'model', narrative: expect.stringContaining('green "sale" tone') });
    expect(recording.pending()).toBe(0);

    expect(state.transcripts).toEqual([{ id: 'ui-kit-r1', step: 'edit ui-kit round 1', repo: 'ui-kit', round: 1, turns: 7 }]);
    const transcript = await world.env.client.workflow.getHandle(runId).query('transcript', 'ui-kit-r1');
    expect(transcript).toMatchObject({ model: 'claude-sonnet-4-6', outcome: 'finished' });
    expect(JSON.stringify(transcript)).not.toContain(KEY);
    expect(JSON.stringify(transcript)).not.toContain(world.forgeToken);
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
  });

  test('a model that refuses ends its step with a readable reason in the state; the run goes on', async () => {
    const refusal = { status: 200, body: { id: 'msg_r', type: 'message', role: 'assistant', model: 'claude-sonnet-5-5', content: [{ type: 'text', text: 'I will not change this repository.' }], stop_reason: 'refusal', stop_sequence: null, usage: { input_tokens: 900, output_tokens: 12 } } };
    const summary = { status: 200, body: { id: 'msg_s', type: 'message', role: 'assistant', model: 'claude-sonnet-5-5', content: [{ type: 'text', text: 'Nothing changed.' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 300, output_tokens: 5 } } };
    recording = await serveRecording([refusal, summary]);
    ({ stop: stopWorker } = await world.startWorker([], { models: SONNET_5_5(recording.baseURL), redact: redactorFor([KEY, world.forgeToken]) }));
    const { runId } = await world.gateway.start({ requirement: 'Add a sale tone to badges', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
    const state = await waitForState(world.gateway, runId, (s) => (s.repos['ui-kit']?.agentNotes ?? '').includes('declined') || ['failed', 'done', 'cancelled'].includes(s.phase), 60_000);
    expect(state.phase).not.toBe('failed');
    expect(state.repos['ui-kit']!.agentNotes).toContain('The model declined to continue (refusal). It said: I will not change this repository.');
    expect(state.budget.used.inputTokens).toBeGreaterThanOrEqual(900);
    expect(recording.refused).toEqual([]);
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
  });

  test('a rejected key fails the run with a readable reason, without retrying the step', async () => {
    recording = await serveRecording(await loadRecording('authentication-error'));
    ({ stop: stopWorker } = await world.startWorker([], { models: provider(recording.baseURL) }));
    const { runId } = await world.gateway.start({ requirement: 'Add a sale tone to badges', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
    const state = await waitForPhase(world.gateway, runId, 'failed');
    expect(state.outcome!.reason).toMatch(/rejected the key \(401: authentication_error, invalid x-api-key\)\. Check ANTHROPIC_API_KEY/);
    expect(state.outcome!.reason).not.toContain(KEY);
    expect(recording.received).toHaveLength(1);
  });
});
