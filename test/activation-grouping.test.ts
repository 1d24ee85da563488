// A run's commands must not depend on how a workflow task's results are grouped into activations. Live,
// a worker can take two results of one task in one activation and a third in the next; a replay takes
// them together. The card keeper and the preview expiry used to decide from the state as they woke
// (test/fixtures/nondeterminism/): now they wait for the run to settle first (workflows/settled.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Conversations, OutboxChannel, type ConversationChannel } from '../activities/notify';
import { runIdForThread } from '../im-adapters/core/router';
import { SlackChannel } from '../im-adapters/slack/channel';
import { createChangeRequestWorker, type ChangeRequestWorkers } from '../worker/create-worker';
import { replayAgainstCurrentCode } from '../client/replay';
import { startFakeSlackApi, WORKSPACE, type FakeSlackApi } from './helpers/fake-slack-api';
import { withTaskBoundaryAfter, type JsonHistory } from './helpers/regroup-history';
import { createWorld, demoScenarios, waitForPhase, waitForState, workflowBundle, type World } from './helpers/world';

jest.setTimeout(240_000);

const KEPT = path.join(__dirname, 'fixtures', 'nondeterminism', 'faults-im-timer-fired-4-was-3.json');
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;

let world: World;
let slack: FakeSlackApi;

beforeAll(async () => {
  // ui-kit's checks take a few seconds, so the workflow worker can be stopped while they run. A timer
  // that fires after the regrouped task (the review reminder) is what exposes a timer numbered differently.
  world = await createWorld({ policy: { remindToReviewAfter: '2s' }, repos: { 'ui-kit': { checks: [{ name: 'test', run: 'sleep 2 && node --test', timeoutSeconds: 60 }] } } });
  slack = await startFakeSlackApi({ botToken: BOT_TOKEN });
});

afterAll(async () => {
  await world?.close();
  await slack?.close();
});

test('the kept history: the live worker split one task in two activations, and the old card keeper decided differently', async () => {
  const kept = JSON.parse(await fs.readFile(KEPT, 'utf8')) as JsonHistory;
  // As recorded (one activation for the three results of the task at event 121), the replay fails ...
  const together = await replayAgainstCurrentCode(kept, 'kept');
  expect(together).toMatchObject({ ok: false, message: expect.stringContaining('Timer fired event did not have expected timer id 4, it was 3') });
  // ... and with the split the live worker took (the two checks, then the card post), it replays.
  expect(await replayAgainstCurrentCode(withTaskBoundaryAfter(kept, 116), 'kept-split')).toEqual({ ok: true });
});

test('a Slack run whose checks finish while its card post is in flight and no workflow worker runs replays however that task is grouped', async () => {
  const scenarios = await demoScenarios();
  const root = slack.personWrites('U0FIONA001', `<@${WORKSPACE.botUserId}> Show a Sale badge with the discount percentage on discounted products`);
  const runId = runIdForThread('slack', WORKSPACE.channel, root.ts);
  // The card update that shows the checks is held until both checks have finished (and the workflow
  // worker is gone), so one task delivers the checks' results and then the card post's, as in the kept history.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const channel = new SlackChannel({ token: BOT_TOKEN, slackApiUrl: slack.url });
  const heldChannel: ConversationChannel = {
    post: (...args) => channel.post(...args),
    showCard: async (conversation, card, ref) => {
      if (card.status.startsWith('Running checks')) await released;
      return channel.showCard(conversation, card, ref);
    },
  };
  const conversations = new Conversations(new OutboxChannel(path.join(world.dataDir, 'grouping')), { slack: heldChannel });
  const common = { connection: world.env.nativeConnection, namespace: world.env.namespace ?? 'default', taskQueue: world.taskQueue };
  const activities = await createChangeRequestWorker({ ...common, roles: ['agent', 'work', 'quick'], deps: world.activityDeps(scenarios, { conversations }) });
  const running = [activities.run()];
  const startWorkflows = async (): Promise<ChangeRequestWorkers> => {
    const workflows = await createChangeRequestWorker({ ...common, roles: ['workflows'], workflowBundle: workflowBundle() });
    running.push(workflows.run());
    return workflows;
  };
  try {
    let workflows = await startWorkflows();
    await world.gateway.start({ requirement: 'Show a Sale badge with the discount percentage on discounted products', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'], conversation: { platform: 'slack', channel: WORKSPACE.channel, thread: root.ts } }, runId);
    await waitForState(world.gateway, runId, (s) => s.phase === 'checking' && s.repos['ui-kit']?.status === 'checking', 120_000);
    workflows.shutdown();
    await running.at(-1);

    const handle = world.env.client.workflow.getHandle(runId);
    const pending = async () => ((await handle.describe()).raw.pendingActivities ?? []).map((a) => a.activityType?.name ?? '?');
    await waitUntil(async () => (await pending()).join() === 'publishCard', 'both checks to finish');
    release();
    await waitUntil(async () => (await pending()).length === 0, 'the card post to finish');
    workflows = await startWorkflows();

    await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
    await waitForState(world.gateway, runId, (s) => s.waiting?.remindedAt != null, 30_000);
    await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
    await waitForState(world.gateway, runId, (s) => s.phase === 'tracking' || s.phase === 'done', 120_000);
    workflows.shutdown();

    const history = JSON.parse(historyToJSON(await handle.fetchHistory())) as JsonHistory;
    // The task after the restart delivered runChecks, runChecks, publishCard, in that order.
    const task = resultsOfTaskAfter(history, 'publishCard', 'runChecks');
    expect(task.map((r) => r.name)).toEqual(['runChecks', 'runChecks', 'publishCard']);
    expect(await replay(history, 'as recorded')).toEqual({ ok: true });
    for (const { eventId } of task.slice(0, -1)) {
      expect([eventId, await replay(withTaskBoundaryAfter(history, eventId), `split after ${eventId}`)]).toEqual([eventId, { ok: true }]);
    }
  } finally {
    activities.shutdown();
    await Promise.allSettled(running);
  }
});

async function replay(history: JsonHistory, name: string) {
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, historyFromJSON(history), name).catch((error: Error) => {
    throw new Error(`${name}: ${error.message.split('\n')[0]}`);
  });
  return { ok: true };
}

/** The results (activity names, in order) of the first workflow task that delivered all the named activities. */
function resultsOfTaskAfter(history: JsonHistory, ...names: string[]): { eventId: number; name: string }[] {
  const byId = new Map(history.events.map((e) => [Number(e.eventId), e]));
  let results: { eventId: number; name: string }[] = [];
  for (const event of history.events) {
    if (event.eventType === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED') {
      const completed = event.activityTaskCompletedEventAttributes as { scheduledEventId: string };
      const scheduled = byId.get(Number(completed.scheduledEventId))!.activityTaskScheduledEventAttributes as { activityType: { name: string } };
      results.push({ eventId: Number(event.eventId), name: scheduled.activityType.name });
    }
    if (event.eventType === 'EVENT_TYPE_WORKFLOW_TASK_STARTED') {
      if (names.every((n) => results.some((r) => r.name === n))) return results;
      results = [];
    }
  }
  return [];
}

async function waitUntil(predicate: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
