// The operator CLI on real runs: list and show, export and replay, retry, and reset — including the fault
// it exists for: the model API failing past every retry, then `runs reset` once the API is back.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AnthropicModelProvider } from '../activities/agent/anthropic-model';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import { loadRecording, serveRecording, type RecordedAnthropic, type RecordedExchange } from './helpers/recorded-anthropic';
import { createWorld, demoScenarios, PROJECT_ROOT, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(240_000);

let world: World;
let recording: RecordedAnthropic;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  world = await createWorld();
  recording = await serveRecording([]);
  const models = new AnthropicModelProvider({ apiKey: 'sk-ant-api03-operator-test-key-000000', model: 'claude-sonnet-4-6', baseURL: recording.baseURL, maxRetries: 1, timeoutMs: 500 });
  // Requirements the demo scenarios know go to the scripted model; the rest to the (recorded) Anthropic API.
  const demo = await demoScenarios();
  const scripted = new ScriptedModelProvider(demo, 'demo');
  ({ stop: stopWorker } = await world.startWorker(demo, {
    models: { description: 'demo or recorded API', isDemo: true, defaultModel: 'claude-sonnet-4-6', forTask: (task) => (task.requirement.includes('sale tone') ? models.forTask(task) : scripted.forTask(task)) },
  }));
});

afterAll(async () => {
  await stopWorker?.();
  await recording?.close();
  await world?.close();
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = promisify(execFile);
  return run(process.execPath, [require.resolve('tsx/cli'), path.join(PROJECT_ROOT, 'client', 'cli.ts'), ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: world.env.address, TEMPORAL_TASK_QUEUE: world.taskQueue, CATALOG_PATH: world.catalogPath, ...env },
    maxBuffer: 32 * 1024 * 1024,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

const overloaded: RecordedExchange = { status: 529, headers: { 'retry-after-ms': '10' }, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } };
const limited: RecordedExchange = { status: 429, headers: { 'retry-after-ms': '10' }, body: { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limited' } } };

test('a model API that keeps failing fails the run readably; `runs reset` gets it going once the API is back', async () => {
  // Every attempt of the edit step meets 429s, 529s and a hang (the SDK's timeout), past all retries.
  recording.replace(Array.from({ length: 3 }, () => [limited, overloaded, { status: 0, body: null, hangMs: 2000 } as RecordedExchange]).flat().concat(Array(20).fill(overloaded)));
  const { runId } = await world.gateway.start({ requirement: 'Add a sale tone to badges', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  const failed = await waitForPhase(world.gateway, runId, 'failed', 120_000);
  expect(failed.outcome!.reason).toMatch(/step editRepository failed: The model API (is overloaded \(529|kept rate-limiting requests \(429|timed out)/);

  const show = await cli(['runs', 'show', runId]);
  expect(show.stdout).toMatch(/editRepository\s+edit ui-kit · round 1 \(initial\)\s+3 attempts\s+[\d.]+s\s+failed/);
  expect(show.stdout).toContain('Failure: ');

  // The API is back: reset to just before editing, and the run carries on to review.
  recording.replace(await loadRecording('run-ui-kit-sale-tone'));
  const reset = await cli(['runs', 'reset', runId, '--to', 'editing']);
  expect(reset.code).toBe(0);
  expect(reset.stdout).toMatch(new RegExp(`^Reset ${runId} to event \\d+; it runs again from just before editing`));
  const review = await waitForPhase(world.gateway, runId, 'awaiting_review', 60_000);
  expect(review.repos['ui-kit']!.checks.at(-1)!.passed).toBe(true);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
});

test('list, show, export, replay and retry a run', async () => {
  const { runId } = await world.gateway.start({ requirement: 'Show prices with the currency code, like USD 12.50, on product cards', requester: 'frank', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  await waitForPhase(world.gateway, runId, 'awaiting_review');

  const listed = await cli(['runs', 'list', '--requester', 'frank', '--repo', 'web-app', '--phase', 'awaiting_review', '--since', '1h']);
  expect(listed.stdout.split('\n').filter((l) => l.startsWith('cr-'))).toEqual([expect.stringContaining(runId)]);

  const show = await cli(['runs', 'show', runId]);
  expect(show.stdout).toMatch(/Phases:\n\s+\S+\s+intake[\s\S]*editing[\s\S]*checking[\s\S]*previewing[\s\S]*awaiting_review/);
  expect(show.stdout).toMatch(/runChecks\s+checks ui-kit · round 2\s+1 attempt/);
  expect(show.stdout).toContain('Budget spent: ');

  const exported = await cli(['runs', 'export', runId]);
  const history = JSON.parse(exported.stdout) as { events: { eventType: string }[] };
  expect(history.events[0]!.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
  const file = path.join(world.dataDir, `${runId}.json`);
  await fs.writeFile(file, exported.stdout);
  const replay = await cli(['runs', 'replay', '--history', file]);
  expect(replay.stdout.trim()).toBe('Replayed cleanly: the current code makes the same decisions.');

  const retried = await cli(['runs', 'retry', runId]);
  const newRunId = /^Started (\S+) \(a retry of /.exec(retried.stdout)![1]!;
  const again = await waitForState(world.gateway, newRunId, (s) => s.phase === 'awaiting_review');
  expect(again.request).toMatchObject({ requester: 'frank', requirement: 'Show prices with the currency code, like USD 12.50, on product cards' });
  const description = await world.env.client.workflow.getHandle(newRunId).describe();
  expect(description.memo).toMatchObject({ retryOf: runId });
  for (const id of [runId, newRunId]) await world.gateway.send(id, 'cancel', { by: 'frank', key: `${id}-end` });
});

test('operator errors are one clear line and a non-zero exit', async () => {
  const unknown = await cli(['runs', 'show', 'cr-20990101-nothere']);
  expect(unknown).toMatchObject({ code: 1, stderr: 'no run with id cr-20990101-nothere\n' });

  const { runId } = await world.gateway.start({ requirement: 'Show prices with the currency code, like USD 12.50, on product cards', requester: 'fiona' });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  const never = await cli(['runs', 'reset', runId, '--to', 'publishing']);
  expect(never.code).toBe(1);
  expect(never.stderr.trim()).toBe(`run ${runId} never reached phase publishing in its current execution (it reached: intake, proposing, awaiting_confirmation)`);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });

  const unreachable = await cli(['runs', 'list'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
});
