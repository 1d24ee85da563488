// Faults and the chat thread: a run whose conversation is a Slack thread, its worker killed (SIGKILL) during
// editing, during checks and during publishing, each time replaced. The first kill lands in the worst
// window for chat: Slack has made the card's first post, but its answer never reached the worker, so the
// run does not know where the card is. The retry, on another worker, has to find the card in the thread
// (by its message metadata) instead of posting a second one. At the end the thread holds exactly one card,
// showing the finished run, and no message twice.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Scenario } from '../activities/agent/scenarios';
import { Conversations, OutboxChannel } from '../activities/notify';
import { runIdForThread } from '../im-adapters/core/router';
import { SlackChannel } from '../im-adapters/slack/channel';
import type { ConversationRef } from '../domain/contracts';
import { startFakeSlackApi, WORKSPACE, type FakeSlackApi, type RecordedCall, type SlackMessage } from './helpers/fake-slack-api';
import { branchCommits, createWorld, demoScenarios, forgePulls, waitForPhase, waitForState, type World } from './helpers/world';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';

jest.setTimeout(240_000);

const SALE = 'Show a Sale badge with the discount percentage on discounted products';
const REPOS = ['ui-kit', 'web-app'];
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const FIONA = { id: 'U0FIONA001', name: 'fiona' };
const CARD = 'change_request_card';
const MESSAGE = 'change_request_message';

let world: World;
let slack: FakeSlackApi;
const processes: WorkerProcess[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  world = await createWorld({
    // A reminder while the run waits for review, so the thread also gets a plain message.
    policy: { remindToReviewAfter: '2s' },
    // ui-kit's checks take a few seconds, so a kill can land while they run.
    repos: { 'ui-kit': { checks: [{ name: 'test', run: 'sleep 3 && node --test', timeoutSeconds: 60 }] } },
  });
  slack = await startFakeSlackApi({ botToken: BOT_TOKEN });
});

afterAll(async () => {
  for (const p of processes) await p.kill();
  for (const close of closers) await close();
  await world?.close();
  await slack?.close();
});

/** The sale-badge scenario with ui-kit's edit slowed down, so the first kill lands mid-edit. */
function slowUiKit(scenarios: Scenario[]): Scenario[] {
  return scenarios.map((s) => {
    if (s.id !== 'sale-badge') return s;
    const uiKit = s.edit['ui-kit']!;
    return { ...s, edit: { ...s.edit, 'ui-kit': { ...uiKit, initial: uiKit.initial.map((turn) => ({ ...turn, delayMs: 1000 })) } } };
  });
}

test('a worker killed during editing (its card post unanswered), checks and publishing: one card, no message twice', async () => {
  const scenarios = slowUiKit(await demoScenarios());
  // fiona's message starts the thread the run lives in, as the Slack adapter would start it.
  const root = slack.personWrites(FIONA.id, `<@${WORKSPACE.botUserId}> ${SALE}`);
  const conversation: ConversationRef = { platform: 'slack', channel: WORKSPACE.channel, thread: root.ts };
  const runId = runIdForThread('slack', WORKSPACE.channel, root.ts);
  const branch = `change-request/${runId}`;
  const lossy = await slackLosingFirstCardAnswer(slack, runId);
  closers.push(lossy.close);
  const slackEnv = (url: string) => ({ CR_SLACK_BOT_TOKEN: BOT_TOKEN, CR_SLACK_API_URL: url });

  // 1. Editing. The first worker posts the card (Slack keeps it, the answer is lost) and dies mid-edit.
  const editing = await spawnWorker(scenarios, 'im-editing', slackEnv(lossy.url));
  await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: REPOS, conversation }, runId);
  await lossy.cardPosted;
  const midEdit = await waitForState(world.gateway, runId, (s) => (s.repos['ui-kit']?.progress?.turn ?? 0) >= 1);
  expect(midEdit.phase).toBe('editing');
  expect(cardsInThread(root.ts, runId)).toHaveLength(1);
  expect(midEdit.card).toBeNull();
  await editing.kill();

  // 2. Checks. A second worker takes the edit over and dies while ui-kit's checks run.
  const checking = await spawnWorker(scenarios, 'im-checks', slackEnv(slack.url));
  await waitForState(world.gateway, runId, (s) => s.phase === 'checking' && s.repos['ui-kit']?.status === 'checking', 120_000);
  await checking.kill();

  // 3. Review and publishing. A third worker finishes the checks and reminds the thread; fiona approves, and
  //    the worker dies after the forge opened a pull request and before the worker could report it.
  const publishing = await spawnWorker(scenarios, 'im-publish', { ...slackEnv(slack.url), CR_PUBLISH_DELAY_MS: '4000' });
  await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  await waitFor(() => plainPosts(root.ts).some((c) => String(c.args.metadata.event_payload.key).includes('/remind/review/')), 'the review reminder', 30_000);
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
  await waitFor(async () => (await forgePulls(world, 'ui-kit')).some((p) => p.head.ref === branch), 'a pull request', 60_000);
  expect((await world.gateway.state(runId)).phase).toBe('publishing');
  await publishing.kill();

  // 4. A last worker, with the same Slack configuration, finishes the run.
  const channel = new SlackChannel({ token: BOT_TOKEN, slackApiUrl: slack.url });
  const { stop } = await world.startWorker(scenarios, { conversations: new Conversations(new OutboxChannel(path.join(world.dataDir, 'worker')), { slack: channel }) });
  const handle = world.env.client.workflow.getHandle(runId);
  // The pull requests are open and followed; the card shows it (after the card post the first worker left behind).
  const done = await waitForPhase(world.gateway, runId, 'tracking', 60_000);
  await waitFor(() => cardsInThread(root.ts, runId)[0]?.text.includes('Pull requests are open: following them until each is merged or closed.'), 'the card of the open pull requests', 30_000);

  // Exactly one card in the thread, posted once (the retry found it), updated in place, showing the end.
  const cards = cardsInThread(root.ts, runId);
  expect(cards).toHaveLength(1);
  const card = cards[0]!;
  expect(cardPosts(runId)).toHaveLength(1);
  expect(done.card).toMatchObject({ channel: WORKSPACE.channel, messageId: card.ts });
  const updates = slack.callsTo('chat.update').filter((c) => c.args.metadata?.event_payload?.run_id === runId);
  expect(updates.length).toBeGreaterThan(0);
  expect(updates.every((c) => c.args.ts === card.ts && c.args.channel === WORKSPACE.channel)).toBe(true);
  expect(card.metadata!.event_payload.card_version).toBe(done.cardVersion);
  expect(card.text).toContain('Pull requests are open: following them until each is merged or closed.');
  expect(JSON.stringify(card.blocks)).toContain('PR #');

  // Plain messages: each idempotency key posted once, no text twice, the reminder among them.
  const plain = plainPosts(root.ts);
  const keys = plain.map((c) => String(c.args.metadata.event_payload.key));
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.filter((k) => k.includes('/remind/review/'))).toHaveLength(1);
  const replies = slack.thread(WORKSPACE.channel, root.ts).slice(1);
  const texts = replies.filter((m) => m.metadata?.event_type === MESSAGE).map((m) => m.text);
  expect(new Set(texts).size).toBe(texts.length);
  // Nothing else in the thread, and nothing posted outside it.
  expect(replies).toHaveLength(1 + plain.length);
  expect(slack.callsTo('chat.postMessage').every((c) => c.args.thread_ts === root.ts)).toBe(true);

  // The card's first post was retried (its first attempt died with the first worker), not answered.
  const history = await handle.fetchHistory();
  const events = history.events!;
  const firstCardTask = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'publishCard')!;
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(firstCardTask.eventId));
  expect(started!.activityTaskStartedEventAttributes!.attempt).toBeGreaterThanOrEqual(2);

  // And, as in faults.test.ts: one commit per round and one pull request per repository.
  for (const repo of REPOS) {
    const rounds = done.repos[repo]!.commits.map((c) => c.round);
    expect(new Set(rounds).size).toBe(rounds.length);
    // One commit per round, and for the app the one that points its range at the planned ui-kit release.
    expect(await branchCommits(world, repo, branch)).toHaveLength(rounds.length + (done.repos[repo]!.rangeBump ? 1 : 0));
    expect((await forgePulls(world, repo)).filter((p) => p.head.ref === branch)).toHaveLength(1);
  }
  await stop();
});

// ---------------------------------------------------------------------------------------------------------

async function spawnWorker(scenarios: Scenario[], name: string, env: Record<string, string>): Promise<WorkerProcess> {
  const worker = await startWorkerProcess(world, scenarios, name, env);
  processes.push(worker);
  return worker;
}

/** The run's card as Slack holds it now: messages in the thread with card metadata naming the run. */
function cardsInThread(thread: string, runId: string): SlackMessage[] {
  return slack.thread(WORKSPACE.channel, thread).filter((m) => m.metadata?.event_type === CARD && m.metadata.event_payload.run_id === runId);
}

function cardPosts(runId: string): RecordedCall[] {
  return slack.callsTo('chat.postMessage').filter((c) => c.args.metadata?.event_type === CARD && c.args.metadata.event_payload.run_id === runId);
}

/** chat.postMessage calls of plain messages (reminders, notices) in the thread. */
function plainPosts(thread: string): RecordedCall[] {
  return slack.callsTo('chat.postMessage').filter((c) => c.args.thread_ts === thread && c.args.metadata?.event_type === MESSAGE);
}

async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface LossyLink {
  /** What the first worker takes for Slack's Web API. */
  url: string;
  /** Slack has made the run's first card post (and its answer is being held back). */
  cardPosted: Promise<void>;
  close(): Promise<void>;
}

/**
 * A link to the fake Slack API that passes every call through, except that the answer to the run's first
 * card post never comes back: Slack has posted the card, the worker waits for the answer until it dies.
 */
async function slackLosingFirstCardAnswer(api: FakeSlackApi, runId: string): Promise<LossyLink> {
  let held = false;
  let posted!: () => void;
  const cardPosted = new Promise<void>((resolve) => (posted = resolve));
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const method = (request.url ?? '').replace(/^\/api\//, '').split('?')[0]!;
        const contentType = request.headers['content-type'] ?? 'application/x-www-form-urlencoded';
        const upstream = await fetch(`${api.url}${method}`, {
          method: 'POST',
          headers: { 'content-type': contentType, ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}) },
          body: raw,
        });
        const body = await upstream.text();
        if (!held && method === 'chat.postMessage' && upstream.ok && isCardPostOf(runId, raw, contentType) && (JSON.parse(body) as { ok: boolean }).ok) {
          held = true;
          posted();
          return; // never answered
        }
        response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json', ...(upstream.headers.get('retry-after') ? { 'retry-after': upstream.headers.get('retry-after')! } : {}) });
        response.end(body);
      })().catch((error: unknown) => {
        response.writeHead(502);
        response.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/`,
    cardPosted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function isCardPostOf(runId: string, raw: string, contentType: string): boolean {
  const metadata = contentType.includes('application/json') ? (JSON.parse(raw) as { metadata?: unknown }).metadata : new URLSearchParams(raw).get('metadata');
  const parsed = (typeof metadata === 'string' ? JSON.parse(metadata) : metadata) as { event_type?: string; event_payload?: { run_id?: string } } | null | undefined;
  return parsed?.event_type === CARD && parsed.event_payload?.run_id === runId;
}
