// The real Anthropic adapter (SDK, retries, caching, parsing) against recorded Messages API exchanges
// served over local HTTP: a multi-turn tool-use edit, 429 and 529 retried, a malformed tool input answered
// with a validation error, cache usage counted, and errors that no retry fixes surfaced plainly.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { AnthropicModelProvider, ModelApiError } from '../activities/agent/anthropic-model';
import { DEFAULT_PRICES, costOf } from '../activities/agent/budget';
import { runAgentLoop } from '../activities/agent/loop';
import { ModelUnavailableError, type AgentTask } from '../activities/agent/model';
import { redactorFor } from '../activities/agent/redact';
import { editingTools } from '../activities/agent/tools/files';
import { defineTool, ToolRegistry } from '../activities/agent/tools/registry';
import { runCommandTool } from '../activities/agent/tools/run-command';
import { commandEnvironment } from '../activities/commands';
import { RepoSandbox } from '../activities/agent/tools/sandbox';
import { noSpend } from '../shared/budget';
import type { TranscriptEntry } from '../shared/contracts';
import { loadRecording, serveRecording, type RecordedAnthropic } from './helpers/recorded-anthropic';
import { createWorld, PROJECT_ROOT, waitForPhase, type World } from './helpers/world';

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
