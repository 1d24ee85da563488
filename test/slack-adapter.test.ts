// The Slack adapter end to end on real parts: a Temporal dev server, the forge, a worker whose Slack channel
// talks to a local server speaking Slack's Web API, the router, and the Bolt app receiving requests signed
// the way Slack signs them, built from Slack's documented payloads (test/fixtures/slack/). Slack itself is
// the only stand-in.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Conversations, OutboxChannel } from '../activities/notify';
import { UnknownRunError } from '../client/gateway';
import { ConversationRouter, runIdForThread, type ButtonOutcome, type ButtonPress, type InboundMessage, type MessageOutcome, type Platform } from '../im-adapters/core/router';
import { startSlackAdapter, type SlackAdapter } from '../im-adapters/slack/adapter';
import { cardBlocks } from '../im-adapters/slack/blocks';
import { SlackChannel } from '../im-adapters/slack/channel';
import { SlackFiles } from '../im-adapters/slack/documents';
import { SourceStore } from '../activities/context/source-store';
import { SlackApiError } from '../im-adapters/slack/slack-errors';
import type { Card } from '../domain/card';
import { loadCatalog } from '../domain/catalog-loader';
import type { RunState } from '../domain/contracts';
import {
  appMentionEvent,
  buttonClick,
  buttonsOf,
  deliver,
  slashCommand,
  startFakeSlackApi,
  threadReplyEvent,
  viewSubmission,
  WORKSPACE,
  type DeliveryOptions,
  type FakeSlackApi,
  type SlackMessage,
} from './helpers/fake-slack-api';
import { createWorld, demoScenarios, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(240_000);

const SIGNING_SECRET = randomBytes(16).toString('hex');
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const FIONA = { id: 'U0FIONA001', name: 'fiona' };
const PAM = { id: 'U0PAM00001', name: 'pam' };
const BOB = { id: 'U0BOB00001', name: 'bob' };
const REQUIREMENT = 'Show prices with the currency code, like USD 12.50, on product cards';
const MENTION = `<@${WORKSPACE.botUserId}>`;

/** The router the adapter uses, recording what it decided for each delivery so tests can wait for the work after the ack. */
class RecordingRouter extends ConversationRouter {
  readonly outcomes: { eventId: string; outcome: MessageOutcome | ButtonOutcome }[] = [];
  private held: Promise<void> | null = null;

  /** Keeps button presses waiting inside the router until the returned function is called. */
  hold(): () => void {
    let release = () => {};
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = null;
      release();
    };
  }

  override async onMessage(message: InboundMessage): Promise<MessageOutcome> {
    return this.record(message.eventId, await super.onMessage(message));
  }

  override async onButton(press: ButtonPress): Promise<ButtonOutcome> {
    await this.held;
    return this.record(press.eventId, await super.onButton(press));
  }

  override async onFeedback(platform: Platform, runId: string, person: string, text: string, eventId: string): Promise<MessageOutcome> {
    return this.record(eventId, await super.onFeedback(platform, runId, person, text, eventId));
  }

  /** The n-th outcome for a delivery id (1: the first delivery, 2: its redelivery …), once the adapter got it. */
  async outcome(eventId: string, n = 1): Promise<MessageOutcome | ButtonOutcome> {
    return waitFor(() => this.outcomes.filter((o) => o.eventId === eventId)[n - 1]?.outcome, `outcome ${n} of ${eventId}`);
  }

  private record<T extends MessageOutcome | ButtonOutcome>(eventId: string, outcome: T): T {
    this.outcomes.push({ eventId, outcome });
    return outcome;
  }
}

let world: World;
let slack: FakeSlackApi;
let router: RecordingRouter;
let adapter: SlackAdapter;

beforeAll(async () => {
  world = await createWorld();
  slack = await startFakeSlackApi({ botToken: BOT_TOKEN });
  const channel = new SlackChannel({ token: BOT_TOKEN, slackApiUrl: slack.url });
  await world.startWorker(await demoScenarios(), {
    conversations: new Conversations(new OutboxChannel(path.join(world.dataDir, 'worker')), { slack: channel }),
    chatDocuments: [new SlackFiles({ token: BOT_TOKEN, slackApiUrl: slack.url })],
  });
  router = new RecordingRouter(world.gateway);
  adapter = await startSlackAdapter({ router, loadCatalog: () => loadCatalog(world.catalogPath), signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, port: 0, slackApiUrl: slack.url });
});

afterAll(async () => {
  await adapter?.close();
  await world?.close();
  await slack?.close();
});

test('a mention starts a run in its thread; the card is posted once and updated; buttons and replies drive the run', async () => {
  // fiona mentions the app with a requirement; Slack keeps the message, then delivers the event.
  const mention = slack.personWrites(FIONA.id, `${MENTION} ${REQUIREMENT}`);
  const event = appMentionEvent(mention, 'Ev0CRMENTION1');
  const delivered = await send({ json: event });
  expect(delivered.status).toBe(200);
  expect(delivered.ms).toBeLessThan(3000);
  const runId = runIdForThread('slack', WORKSPACE.channel, mention.ts);
  expect(await router.outcome('Ev0CRMENTION1')).toEqual({ kind: 'started', runId, alreadyStarted: false });

  // Slack redelivers the same event (as after a slow answer): acknowledged, and nothing happens twice.
  const redelivered = await send({ json: event }, { retry: { num: 1, reason: 'http_timeout' } });
  expect(redelivered.status).toBe(200);
  expect(await router.outcome('Ev0CRMENTION1', 2)).toEqual({ kind: 'ignored', why: 'already handled this delivery' });

  let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  expect(state.request).toMatchObject({ requirement: REQUIREMENT, requester: 'fiona', conversation: { platform: 'slack', channel: WORKSPACE.channel, thread: mention.ts } });
  let card = await cardShowing(runId, mention.ts, state);
  // Posted once, in the mention's thread, then updated in place.
  expect(cardPosts(runId)).toHaveLength(1);
  expect(cardPosts(runId)[0]!.args.thread_ts).toBe(mention.ts);
  expect(cardUpdates(card).length).toBeGreaterThan(0);
  expect(buttonsOf(card).map((b) => b.action_id)).toEqual(['cr:toggle:ui-kit', 'cr:toggle:bff-api', 'cr:toggle:web-app', 'cr:confirm', 'cr:questions_not_needed', 'cr:cancel']);
  expect(card.text).toContain('Please confirm which repositories to change.');

  // A button from the first card posted (an older card version) is refused, and the card is redrawn.
  const firstCard: SlackMessage = { ...card, blocks: cardPosts(runId)[0]!.args.blocks };
  const oldCancel = buttonsOf(firstCard).find((b) => b.action_id === 'cr:cancel')!;
  expect(JSON.parse(oldCancel.value).cardVersion).toBeLessThan(state.cardVersion);
  const updatesBefore = cardUpdates(card).length;
  await click(firstCard, 'cr:cancel', FIONA, '1700000000.000001');
  expect(await router.outcome(`1700000000.000001:${FIONA.id}`)).toMatchObject({ kind: 'refused', reason: 'this card is out of date; here is the current one' });
  await waitFor(() => ephemeralTo(FIONA.id, 'out of date'), 'the out-of-date note');
  expect(ephemeralTo(FIONA.id, 'out of date')!.args).toMatchObject({ channel: WORKSPACE.channel, thread_ts: mention.ts });
  await waitFor(() => cardUpdates(card).length > updatesBefore, 'the card redrawn');
  expect(slack.message(WORKSPACE.channel, card.ts)!.metadata!.event_payload.card_version).toBe(state.cardVersion);
  expect((await world.gateway.state(runId)).phase).toBe('awaiting_confirmation');

  // Toggles redraw the card with the next selection (no signal); toggling back restores it.
  await click(card, 'cr:toggle:web-app', FIONA, '1700000000.000002');
  expect(await router.outcome(`1700000000.000002:${FIONA.id}`)).toMatchObject({ kind: 'rerender' });
  card = await waitFor(() => withButton(card, 'cr:confirm', 'Confirm 1 repository'), 'the card with one repository selected');
  await click(card, 'cr:toggle:web-app', FIONA, '1700000000.000003');
  card = await waitFor(() => withButton(card, 'cr:confirm', 'Confirm 2 repositories'), 'the card with two repositories selected');

  // fiona confirms, with the payload form-encoded as Slack sends it. Slack gets its answer while the work
  // (which waits for the run's verdict) has not even reached the router.
  const release = router.hold();
  const confirmed = await click(card, 'cr:confirm', FIONA, '1700000000.000004');
  expect(confirmed.status).toBe(200);
  expect(router.outcomes.some((o) => o.eventId === `1700000000.000004:${FIONA.id}`)).toBe(false);
  release();
  expect(await router.outcome(`1700000000.000004:${FIONA.id}`)).toMatchObject({ kind: 'accepted', runId });
  state = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  expect([...state.confirmed].sort()).toEqual(['ui-kit', 'web-app']);
  card = await cardShowing(runId, mention.ts, state);
  expect(cardPosts(runId)).toHaveLength(1);
  expect(buttonsOf(card).map((b) => b.action_id)).toEqual(['cr:approve', 'cr:feedback', 'cr:questions_not_needed', 'cr:cancel']);
  // The preview's screenshot is on a loopback address Slack could not fetch: linked, not embedded.
  expect(JSON.stringify(card.blocks)).toContain('|web-app preview>');
  expect(card.blocks!.some((b) => b.type === 'image')).toBe(false);

  // pam may not approve: refused, told privately, the run unchanged.
  await click(card, 'cr:approve', PAM, '1700000000.000005');
  expect(await router.outcome(`1700000000.000005:${PAM.id}`)).toMatchObject({ kind: 'refused' });
  const note = await waitFor(() => ephemeralTo(PAM.id, 'refused'), "pam's refusal note");
  expect(note.args).toMatchObject({ channel: WORKSPACE.channel, user: PAM.id, thread_ts: mention.ts });
  state = await world.gateway.state(runId);
  expect(state.phase).toBe('awaiting_review');
  expect(state.inputs.at(-1)).toMatchObject({ by: 'pam', outcome: 'refused' });

  // Forged or stale requests are turned away before anything reaches the run.
  const inputsBefore = state.inputs.length;
  const forged = buttonClick(card, 'cr:approve', FIONA, '1700000000.000006');
  expect((await send({ payload: forged }, { signature: `v0=${'0'.repeat(64)}` })).status).toBe(401);
  expect((await send({ payload: forged }, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 })).status).toBe(401);
  expect((await send({ payload: forged }, { signingSecret: 'not-the-secret' })).status).toBe(401);
  await settle();
  expect(router.outcomes.some((o) => o.eventId === `1700000000.000006:${FIONA.id}`)).toBe(false);
  state = await world.gateway.state(runId);
  expect(state.inputs).toHaveLength(inputsBefore);
  expect(state.phase).toBe('awaiting_review');

  // A reply in the thread while the run awaits review is feedback: a new round.
  const reply = slack.personWrites(FIONA.id, 'Please add a changelog entry', { thread: mention.ts });
  expect((await send({ json: threadReplyEvent(reply, 'Ev0CRREPLY01', FIONA.id) })).status).toBe(200);
  expect(await router.outcome('Ev0CRREPLY01')).toEqual({ kind: 'fed', runId, as: 'feedback' });
  state = await waitForState(world.gateway, runId, (s) => s.phase === 'awaiting_review' && s.rounds.at(-1)?.kind === 'feedback', 120_000);
  expect(state.feedback).toEqual([expect.objectContaining({ by: 'fiona', round: state.rounds.at(-1)!.n })]);
  card = await cardShowing(runId, mention.ts, state);

  // "Give feedback" opens a form; its submission is feedback too.
  await click(card, 'cr:feedback', FIONA, '1700000000.000007');
  expect(await router.outcome(`1700000000.000007:${FIONA.id}`)).toEqual({ kind: 'ask_feedback', runId });
  const opened = await waitFor(() => slack.openedViews[0], 'the feedback form');
  expect(opened.triggerId).toBe(buttonClick(card, 'cr:feedback', FIONA, 'x').trigger_id);
  const submission = viewSubmission(opened.view, opened.id, FIONA, { feedback: { text: 'Mention the currency code in the README too' } });
  expect((await send({ payload: submission })).status).toBe(200);
  expect(await router.outcome(`view:${opened.id}`)).toEqual({ kind: 'fed', runId, as: 'feedback' });
  state = await waitForState(world.gateway, runId, (s) => s.phase === 'awaiting_review' && s.feedback.length === 2, 120_000);
  expect(state.feedback[1]).toMatchObject({ by: 'fiona', text: 'Mention the currency code in the README too' });

  // fiona approves: pull requests open, and the final card (still the one message) says so.
  card = await cardShowing(runId, mention.ts, state);
  await click(card, 'cr:approve', FIONA, '1700000000.000008');
  expect(await router.outcome(`1700000000.000008:${FIONA.id}`)).toMatchObject({ kind: 'accepted' });
  state = await waitForPhase(world.gateway, runId, 'tracking', 120_000);
  card = await cardShowing(runId, mention.ts, state);
  expect(card.text).toContain('Pull requests are open: following them until each is merged or closed.');
  expect(JSON.stringify(card.blocks)).toContain('PR #');
  expect(cardPosts(runId)).toHaveLength(1);
  expect(state.lastError).toBeNull();
  // The workflow never answered a card post with a second post in this thread.
  expect(slack.thread(WORKSPACE.channel, mention.ts).filter((m) => m.metadata?.event_type === 'change_request_card')).toHaveLength(1);
});

test('a file attached in the run\'s thread is read with files.info and the bot token; one the service cannot read is a note', async () => {
  const mention = slack.personWrites(FIONA.id, `${MENTION} ${REQUIREMENT}`);
  await send({ json: appMentionEvent(mention, 'Ev0CRFILES01') });
  const runId = runIdForThread('slack', WORKSPACE.channel, mention.ts);
  expect(await router.outcome('Ev0CRFILES01')).toMatchObject({ kind: 'started', runId });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');

  // pam attaches the criteria as a Markdown file (Slack labels it text/plain) in the thread.
  const criteria = '# Currency criteria\n\n- Every price shows its ISO currency code before the amount, as in USD 12.50.\n- Prices in the cart use the same format.\n';
  const shared = slack.personShares(PAM.id, 'The criteria, from the pricing team', { name: 'currency-criteria.md', mimetype: 'text/plain', content: criteria }, { thread: mention.ts });
  expect((await send({ json: threadReplyEvent(shared, 'Ev0CRFILE002', FIONA.id) })).status).toBe(200);
  expect(await router.outcome('Ev0CRFILE002')).toEqual({ kind: 'fed', runId, as: 'addContext' });
  const fileId = shared.files![0]!.id as string;
  let state = await waitForState(world.gateway, runId, (s) => s.intake.sources.some((source) => source.url === `slack-file:${fileId}`));
  expect(state.context.at(-1)!.text).toBe(`The criteria, from the pricing team\nAttached currency-criteria.md: slack-file:${fileId}`);
  const source = state.intake.sources.find((s) => s.url === `slack-file:${fileId}`)!;
  expect(source).toMatchObject({ id: 'S1', via: 'context', title: 'currency-criteria.md', format: 'markdown', finalUrl: shared.files![0]!.permalink, truncatedAt: null });
  // Stored by hash as it was in Slack; files.info was asked, and the download carried the bot token.
  expect(await SourceStore.under(path.join(world.dataDir, 'worker')).text(source.hash)).toBe(criteria.trim());
  expect(slack.callsTo('files.info').map((c) => c.args.file)).toContain(fileId);
  expect(slack.downloads.at(-1)).toEqual({ path: expect.stringContaining(`-${fileId}/download/currency-criteria.md`), authorization: `Bearer ${BOT_TOKEN}` });
  expect(state.phase).toBe('awaiting_confirmation');

  // An image, and a file whose download address is not Slack's (the token is not sent there): notes, the run goes on.
  const image = slack.personShares(PAM.id, '', { name: 'mock.png', mimetype: 'image/png', content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]) }, { thread: mention.ts });
  const elsewhere = slack.personShares(PAM.id, '', { name: 'notes.txt', mimetype: 'text/plain', content: 'x', downloadUrl: 'http://127.0.0.1:9/files-pri/notes.txt' }, { thread: mention.ts });
  const downloadsBefore = slack.downloads.length;
  await send({ json: threadReplyEvent(image, 'Ev0CRFILE003', FIONA.id) });
  await send({ json: threadReplyEvent(elsewhere, 'Ev0CRFILE004', FIONA.id) });
  state = await waitForState(world.gateway, runId, (s) => s.intake.unreadable.length >= 2);
  expect(state.intake.unreadable.map((u) => [u.url, u.why])).toEqual([
    [`slack-file:${image.files![0]!.id}`, 'mock.png is image/png, not a document this service reads (HTML, Markdown, text, JSON or YAML)'],
    [`slack-file:${elsewhere.files![0]!.id}`, "Slack's download address for notes.txt is not on a Slack file host; it is not fetched with the bot token"],
  ]);
  expect(slack.downloads.length).toBe(downloadsBefore);
  expect(state.phase).toBe('awaiting_confirmation');
  const card = await cardShowing(runId, mention.ts, state);
  expect(JSON.stringify(card.blocks)).toContain(`could not read slack-file:${image.files![0]!.id}: mock.png is image/png`);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-files-run' });
});

test('a mention inside a discussion thread starts the run in that thread; a plain reply elsewhere is ignored', async () => {
  const root = slack.personWrites(BOB.id, 'The product cards show "$12.50"; customers abroad ask which currency that is.');
  const unrelated = slack.personWrites(FIONA.id, 'Agreed, we should fix this', { thread: root.ts });
  await send({ json: threadReplyEvent(unrelated, 'Ev0CRPLAIN01', BOB.id) });
  expect(await router.outcome('Ev0CRPLAIN01')).toEqual({ kind: 'ignored', why: 'not a change request thread' });

  // Other apps' posts and edits are not people writing: they never reach the router.
  const fromBot = threadReplyEvent(slack.personWrites(BOB.id, 'Deploy finished', { thread: root.ts }), 'Ev0CRBOT0001', BOB.id);
  fromBot.event.bot_id = 'B0OTHERAPP1';
  const edit = threadReplyEvent(unrelated, 'Ev0CREDIT001', BOB.id);
  edit.event = { type: 'message', subtype: 'message_changed', hidden: true, channel: WORKSPACE.channel, ts: '1700000100.000001', event_ts: '1700000100.000001', message: { ...edit.event, text: 'Agreed!' }, previous_message: edit.event };
  expect((await send({ json: fromBot })).status).toBe(200);
  expect((await send({ json: edit })).status).toBe(200);

  const mention = slack.personWrites(FIONA.id, `${MENTION} ${REQUIREMENT}`, { thread: root.ts });
  await send({ json: appMentionEvent(mention, 'Ev0CRMENTION2') });
  const runId = runIdForThread('slack', WORKSPACE.channel, root.ts);
  expect(await router.outcome('Ev0CRMENTION2:start')).toEqual({ kind: 'started', runId, alreadyStarted: false });
  const state = await waitForState(world.gateway, runId, (s) => s.card !== null);
  expect(state.request.conversation).toEqual({ platform: 'slack', channel: WORKSPACE.channel, thread: root.ts });
  expect(cardPosts(runId)[0]!.args.thread_ts).toBe(root.ts);
  expect(router.outcomes.map((o) => o.eventId)).not.toContain('Ev0CRBOT0001');
  expect(router.outcomes.map((o) => o.eventId)).not.toContain('Ev0CREDIT001');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-thread-run' });
});

test('/change posts the request as a root message and starts the run in its thread', async () => {
  const delivered = await send({ form: slashCommand(FIONA, REQUIREMENT, '13345224609.738474920.0000000000000000001') });
  expect(delivered.status).toBe(200);
  expect(delivered.ms).toBeLessThan(3000);
  const outcome = await router.outcome('command:13345224609.738474920.0000000000000000001');
  expect(outcome).toMatchObject({ kind: 'started', alreadyStarted: false });
  const rootPost = slack.callsTo('chat.postMessage').find((c) => String(c.args.text).startsWith(`Change request from <@${FIONA.id}>:`))!;
  expect(rootPost.args).toMatchObject({ channel: WORKSPACE.channel, text: `Change request from <@${FIONA.id}>: ${REQUIREMENT}` });
  expect(rootPost.args.thread_ts).toBeUndefined();
  const root = slack.messages(WORKSPACE.channel).find((m) => !m.thread_ts && m.text === rootPost.args.text)!;
  const runId = runIdForThread('slack', WORKSPACE.channel, root.ts);
  expect(outcome).toMatchObject({ runId });
  const state = await waitForState(world.gateway, runId, (s) => s.card !== null);
  expect(state.request).toMatchObject({ requester: 'fiona', requirement: REQUIREMENT, conversation: { thread: root.ts } });
  expect(cardPosts(runId)[0]!.args.thread_ts).toBe(root.ts);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-command-run' });
});

test('/change replayed, also after an adapter restart, lands on one root message and one run', async () => {
  const trigger = '13345224609.738474920.0000000000000000002';
  const text = 'Replayed: show the currency code on product cards';
  const form = slashCommand(FIONA, text, trigger);
  // A replay of the same signed request at once, then again after the adapter restarts (its memory is gone).
  await Promise.all([send({ form }), send({ form })]);
  const first = await router.outcome(`command:${trigger}`);
  expect(first).toMatchObject({ kind: 'started', alreadyStarted: false });
  await adapter.close();
  router = new RecordingRouter(world.gateway);
  adapter = await startSlackAdapter({ router, loadCatalog: () => loadCatalog(world.catalogPath), signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, port: 0, slackApiUrl: slack.url });
  expect((await send({ form })).status).toBe(200);
  const again = await router.outcome(`command:${trigger}`);
  expect(again).toMatchObject({ kind: 'started', alreadyStarted: true, runId: (first as { runId: string }).runId });
  const roots = slack.messages(WORKSPACE.channel).filter((m) => !m.thread_ts && m.text.endsWith(text));
  expect(roots).toHaveLength(1);
  expect(roots[0]!.metadata).toEqual({ event_type: 'change_request_root', event_payload: { trigger } });
  const runId = runIdForThread('slack', WORKSPACE.channel, roots[0]!.ts);
  expect(first).toMatchObject({ runId });
  await waitForState(world.gateway, runId, (s) => s.card !== null);
  expect(cardPosts(runId)).toHaveLength(1);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-replayed-command' });
});

test('requests with a bad signature or a timestamp more than five minutes off, either way, get 401 and start nothing', async () => {
  const mention = slack.personWrites(FIONA.id, `${MENTION} ${REQUIREMENT}`);
  const event = appMentionEvent(mention, 'Ev0CRFORGED1');
  const now = Math.floor(Date.now() / 1000);
  expect((await send({ json: event }, { signature: `v0=${'f'.repeat(64)}` })).status).toBe(401);
  // Correctly signed, but old, an hour ahead, or a year ahead.
  for (const timestamp of [now - 5 * 60 - 30, now + 60 * 60, now + 365 * 24 * 60 * 60]) expect((await send({ json: event }, { timestamp })).status).toBe(401);
  await settle();
  expect(router.outcomes.some((o) => o.eventId === 'Ev0CRFORGED1')).toBe(false);
  await expect(world.gateway.state(runIdForThread('slack', WORKSPACE.channel, mention.ts))).rejects.toBeInstanceOf(UnknownRunError);
});

describe('SlackChannel', () => {
  const conversationFor = (thread: SlackMessage) => ({ platform: 'slack' as const, channel: WORKSPACE.channel, thread: thread.ts });
  const channel = () => new SlackChannel({ token: BOT_TOKEN, slackApiUrl: slack.url });

  test('a retried first post finds the card it already made and updates it', async () => {
    const root = slack.personWrites(FIONA.id, `${MENTION} something`);
    const card = sampleCard('cr-slack-retry', 3);
    const first = await channel().showCard(conversationFor(root), card, null);
    // The activity is retried without the reference (its answer was lost): no second post.
    const second = await channel().showCard(conversationFor(root), { ...card, cardVersion: 4 }, null);
    expect(second).toEqual({ channel: WORKSPACE.channel, messageId: first!.messageId, shows: 4 });
    expect(cardPosts('cr-slack-retry')).toHaveLength(1);
    expect(slack.message(WORKSPACE.channel, first!.messageId)!.metadata).toEqual({ event_type: 'change_request_card', event_payload: { run_id: 'cr-slack-retry', card_version: 4 } });
  });

  test('a message is posted once per idempotency key, escaped', async () => {
    const root = slack.personWrites(FIONA.id, `${MENTION} something else`);
    await channel().post(conversationFor(root), 'remind-1', 'Still waiting for <confirmation> & review', 'cr-slack-post');
    await channel().post(conversationFor(root), 'remind-1', 'Still waiting for <confirmation> & review', 'cr-slack-post');
    const replies = slack.thread(WORKSPACE.channel, root.ts).slice(1);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ text: 'Still waiting for &lt;confirmation&gt; &amp; review', metadata: { event_type: 'change_request_message', event_payload: { key: 'remind-1' } } });
  });

  test('rate limits become retryable failures after Slack’s wait; refusals read plainly', async () => {
    const root = slack.personWrites(FIONA.id, `${MENTION} and another`);
    slack.failNext('conversations.replies', { status: 429, retryAfterSeconds: 7 });
    const limited = await channel().showCard(conversationFor(root), sampleCard('cr-slack-429', 1), null).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(ApplicationFailure);
    expect(limited).toMatchObject({ type: 'SlackRateLimited', nonRetryable: false, nextRetryDelay: 7000 });

    slack.failNext('chat.postMessage', { error: 'not_in_channel' });
    const refused = await channel().post(conversationFor(root), 'k', 'hello', 'cr-slack-refused').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SlackApiError);
    expect((refused as Error).message).toBe('Slack refused chat.postMessage: not_in_channel; invite the app to the channel (/invite @app-name)');

    const badToken = await new SlackChannel({ token: 'xoxb-wrong', slackApiUrl: slack.url }).post(conversationFor(root), 'k', 'hello', 'r').catch((e: unknown) => e);
    expect((badToken as Error).message).toContain('invalid_auth; check SLACK_BOT_TOKEN');
    expect((badToken as Error).message).not.toContain('xoxb');
  });
});

describe('cardBlocks', () => {
  test('escapes text, keeps action ids unique, and shows screenshots Slack can fetch', () => {
    const card: Card = {
      ...sampleCard('cr-slack-blocks', 2),
      title: 'Prices <b> & "USD"',
      sections: [
        { heading: 'web-app preview', lines: ['https://previews.example.com/run/web-app/'], image: { url: 'https://previews.example.com/run/web-app.png', alt: 'web-app preview' } },
        { heading: 'ui-kit preview', lines: ['<!channel> look'], image: { url: 'http://127.0.0.1:8741/run/ui-kit.png', alt: 'ui-kit preview' } },
      ],
    };
    const blocks = cardBlocks(card);
    const json = JSON.stringify(blocks);
    expect(json).toContain('&lt;!channel&gt; look');
    expect(json).not.toContain('<!channel>');
    expect(blocks.filter((b) => b.type === 'image')).toEqual([{ type: 'image', image_url: 'https://previews.example.com/run/web-app.png', alt_text: 'web-app preview' }]);
    const ids = buttonsOf({ type: 'message', channel: 'C', ts: '1', text: '', blocks }).map((b) => b.action_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(blocks.find((b) => b.type === 'actions')).toMatchObject({ elements: [{ style: 'primary', action_id: 'cr:confirm' }, { style: 'danger', action_id: 'cr:cancel', confirm: expect.anything() }] });
  });

  test('refuses a button value longer than Slack allows', () => {
    const card = sampleCard('cr-slack-long', 1);
    card.buttons[0]!.value.selection = Array.from({ length: 50 }, (_, i) => `${'a-repository-with-a-long-name'.repeat(2)}-${i}`);
    expect(() => cardBlocks(card)).toThrow(/Slack allows 2000 in a button value/);
  });
});

// ---------------------------------------------------------------------------------------------------------

function send(body: Parameters<typeof deliver>[1], options: Partial<DeliveryOptions> = {}) {
  return deliver(adapter.url!, body, { signingSecret: SIGNING_SECRET, ...options });
}

function click(message: SlackMessage, actionId: string, user: { id: string; name: string }, actionTs: string) {
  return send({ payload: buttonClick(message, actionId, user, actionTs) });
}

function cardPosts(runId: string) {
  return slack.callsTo('chat.postMessage').filter((c) => c.args.metadata?.event_type === 'change_request_card' && c.args.metadata.event_payload.run_id === runId);
}

function cardUpdates(card: SlackMessage) {
  return slack.callsTo('chat.update').filter((c) => c.args.ts === card.ts);
}

function ephemeralTo(user: string, containing: string) {
  return slack.callsTo('chat.postEphemeral').find((c) => c.args.user === user && String(c.args.text).includes(containing));
}

/** The run's card in its thread, once it shows the state's card version and phase. */
function cardShowing(runId: string, thread: string, state: RunState): Promise<SlackMessage> {
  return waitFor(() => {
    const card = slack.thread(WORKSPACE.channel, thread).find((m) => m.metadata?.event_type === 'change_request_card' && m.metadata.event_payload.run_id === runId);
    return card && card.metadata!.event_payload.card_version === state.cardVersion ? card : undefined;
  }, `the card of ${runId} at version ${state.cardVersion}`);
}

/** The message as Slack holds it now, once its button `actionId` reads `label`. */
function withButton(message: SlackMessage, actionId: string, label: string): SlackMessage | undefined {
  const now = slack.message(message.channel, message.ts)!;
  return buttonsOf(now).some((b) => b.action_id === actionId && b.text.text === label) ? now : undefined;
}

function sampleCard(runId: string, cardVersion: number): Card {
  const value = (action: 'confirm' | 'cancel' | 'toggle', extra = {}) => ({ runId, action, cardVersion, ...extra });
  return {
    runId,
    cardVersion,
    title: 'Show prices with the currency code',
    status: 'Please confirm which repositories to change. (requested by fiona)',
    sections: [],
    choices: [
      { repo: 'ui-kit', role: 'package', reason: 'formatPrice lives here', confidence: 0.9, selected: true, toggle: { label: 'Remove', style: 'default', value: value('toggle', { repo: 'ui-kit', selection: [] }) } },
    ],
    buttons: [
      { label: 'Confirm 1 repository', style: 'primary', value: value('confirm', { selection: ['ui-kit'] }) },
      { label: 'Cancel', style: 'danger', value: value('cancel') },
    ],
    links: [],
    hint: 'Reply in this thread to add context for the agent.',
  };
}

/** Lets work after an ack run, when a test checks that nothing happened. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 500));
}

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
