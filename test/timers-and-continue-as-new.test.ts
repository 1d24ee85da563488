// Waiting for people has a reminder and an expiry; long runs continue as new without losing state or
// pending inputs.
import type { Scenario } from '../activities/agent/scenarios';
import { readOutbox } from '../activities/notify';
import { recordHistory } from './helpers/histories';
import { createWorld, demoScenarios, waitForPhase, waitForState, type World } from './helpers/world';
import path from 'node:path';

jest.setTimeout(180_000);

let world: World;
let scenarios: Scenario[];
let stopWorker: () => Promise<void>;
const SALE = 'Show a Sale badge with the discount percentage on discounted products';

beforeAll(async () => {
  world = await createWorld({ policy: { remindToConfirmAfter: '1s', expireUnconfirmedAfter: '4s', continueAsNewAfterEvents: 50, previewLifetime: '4s' } });
  scenarios = await demoScenarios();
  ({ stop: stopWorker } = await world.startWorker(scenarios));
});

afterAll(async () => {
  await stopWorker?.();
  await world?.close();
});

test('an unanswered proposal is reminded once, then expires and cancels cleanly', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  const reminded = await waitForState(world.gateway, runId, (s) => s.waiting?.remindedAt != null, 20_000);
  expect(reminded.phase).toBe('awaiting_confirmation');
  const state = await waitForPhase(world.gateway, runId, 'cancelled', 20_000);
  expect(state.outcome!.reason).toMatch(/expired: nobody responded to the confirmation request/);
  await recordHistory(world.env.client, runId, 'confirmation-reminder-then-expiry');
  const messages = await readOutbox(path.join(world.dataDir, 'worker'), runId);
  expect(messages).toHaveLength(1);
  expect(messages[0]!.text).toMatch(/waiting for your confirmation/);
});

test('a long run continues as new and keeps its state, its inputs and their idempotency keys', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  const continued = await waitForState(world.gateway, runId, (s) => s.generation >= 1, 20_000);
  expect(continued.rounds).toHaveLength(1);
  expect(continued.repos['web-app']!.commits).toHaveLength(1);
  expect(continued.summary).not.toBeNull();

  await world.gateway.send(runId, 'addContext', { by: 'fiona', key: 'ctx-after-can', text: 'discount comes from the API' });
  // The wording lives in ui-kit's saleBadge, so the feedback goes to both (web-app's test follows it).
  await world.gateway.send(runId, 'feedback', { by: 'fiona', key: 'fb-after-can', text: 'Please make it say Save 20%', repos: ['ui-kit', 'web-app'] });
  const afterFeedback = await waitForState(world.gateway, runId, (s) => s.rounds.length === 2 && s.phase === 'awaiting_review');
  expect(afterFeedback.rounds[1]).toMatchObject({ kind: 'feedback', repos: ['ui-kit', 'web-app'] });
  // The key was seen before the continue-as-new of this round; repeating it changes nothing.
  const handle = world.env.client.workflow.getHandle(runId);
  await handle.signal('feedback', { by: 'fiona', key: 'fb-after-can', text: 'Please make it say Save 20%', repos: ['ui-kit', 'web-app'] });
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: 'approve-after-can' });
  const done = await waitForPhase(world.gateway, runId, 'tracking');
  expect(done.rounds).toHaveLength(2);
  expect(done.inputs.filter((i) => i.key === 'fb-after-can')).toHaveLength(1);
  expect(Object.values(done.repos).every((r) => r.pr !== null)).toBe(true);
  await recordHistory(world.env.client, runId, 'continued-as-new-then-done');
});

test('a preview past its lifetime is taken down while the run waits for review', async () => {
  // web-app's sale badge comes from ui-kit's saleBadge: without ui-kit in the change its build cannot work.
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  const review = await waitForPhase(world.gateway, runId, 'awaiting_review');
  const preview = review.previews.find((p) => p.repo === 'web-app')!;
  expect(preview.status).toBe('ready');
  const expired = await waitForState(world.gateway, runId, (s) => s.previews.some((p) => p.repo === 'web-app' && p.status === 'removed'), 20_000);
  expect(expired.phase).toBe('awaiting_review');
  expect((await fetch(preview.url!)).status).toBe(404);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
});
