// The Lark adapter end to end on real parts: a Temporal dev server, the forge, a worker whose Lark channel
// talks to a local server speaking Lark's open API, the router, and the adapter receiving requests encrypted
// and signed the way Lark sends them, built from Lark's documented payloads (test/fixtures/lark/). Lark
// itself is the only stand-in.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Conversations, OutboxChannel } from '../activities/notify';
import { ConversationRouter, runIdForThread, type ButtonOutcome, type ButtonPress, type InboundMessage, type MessageOutcome } from '../im-adapters/core/router';
import { startLarkAdapter, type LarkAdapter } from '../im-adapters/lark/adapter';
import { escapeLarkMd, larkCard } from '../im-adapters/lark/card';
import { LarkChannel } from '../im-adapters/lark/channel';
import { LarkDocuments } from '../im-adapters/lark/documents';
import { SourceStore } from '../activities/context/source-store';
import { PULL_REQUESTS_ARE_OPEN } from '../domain/human-inputs';
import { LarkApiError } from '../im-adapters/lark/lark-api';
import type { Card } from '../domain/card';
import { loadCatalog } from '../domain/catalog-loader';
import type { ConversationRef, RunState } from '../domain/contracts';
import {
  buttonsOf,
  cardAction,
  deliver,
  messageEvent,
  startFakeLarkApi,
  TENANT,
  urlVerification,
  type CardButton,
  type DeliveryOptions,
  type FakeLarkApi,
  type LarkMessage,
} from './helpers/fake-lark-api';
import { createWorld, demoScenarios, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(240_000);

const APP_SECRET = randomBytes(16).toString('hex');
const VERIFICATION_TOKEN = randomBytes(16).toString('hex');
const ENCRYPT_KEY = randomBytes(16).toString('hex');
const FIONA = 'ou_fiona0000000000000000000000001';
const PAM = 'ou_pam000000000000000000000000001';
const REQUIREMENT = 'Show prices with the currency code, like USD 12.50, on product cards';

/** The router the adapter uses, recording what it decided for each delivery so tests can wait for work done after the answer. */
class RecordingRouter extends ConversationRouter {
  readonly outcomes: { eventId: string; outcome: MessageOutcome | ButtonOutcome }[] = [];
  private readonly delays = new Map<string, number>();

  /** Makes the press `eventId` take `ms` longer, as a run slow to give its verdict would. */
  slowDown(eventId: string, ms: number): void {
    this.delays.set(eventId, ms);
  }

  override async onMessage(message: InboundMessage): Promise<MessageOutcome> {
    return this.record(message.eventId, await super.onMessage(message));
  }

  override async onButton(press: ButtonPress): Promise<ButtonOutcome> {
    const outcome = await super.onButton(press);
    await sleep(this.delays.get(press.eventId) ?? 0);
    return this.record(press.eventId, outcome);
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
let lark: FakeLarkApi;
let router: RecordingRouter;
let adapter: LarkAdapter;

beforeAll(async () => {
  world = await createWorld();
  lark = await startFakeLarkApi({ appId: TENANT.appId, appSecret: APP_SECRET });
  const channel = new LarkChannel({ appId: TENANT.appId, appSecret: APP_SECRET, domain: lark.url });
  await world.startWorker(await demoScenarios(), {
    conversations: new Conversations(new OutboxChannel(path.join(world.dataDir, 'worker')), { lark: channel }),
    chatDocuments: [new LarkDocuments({ appId: TENANT.appId, appSecret: APP_SECRET, domain: lark.url })],
  });
  router = new RecordingRouter(world.gateway);
  adapter = await startLarkAdapter({
    router,
    loadCatalog: () => loadCatalog(world.catalogPath),
    appId: TENANT.appId,
    appSecret: APP_SECRET,
    verificationToken: VERIFICATION_TOKEN,
    encryptKey: ENCRYPT_KEY,
    port: 0,
    domain: lark.url,
  });
});

afterAll(async () => {
  await adapter?.close();
  await world?.close();
  await lark?.close();
});

test('the URL verification challenge is answered, in clear and encrypted, for the app’s Verification Token only', async () => {
  // Lark does not sign the challenge; it is answered on its token.
  const plain = await send(urlVerification(VERIFICATION_TOKEN, 'challenge-in-clear'), { plain: true, signature: null });
  expect(plain).toMatchObject({ status: 200, json: { challenge: 'challenge-in-clear' } });
  const encrypted = await send(urlVerification(VERIFICATION_TOKEN, 'challenge-encrypted'), { signature: null });
  expect(encrypted).toMatchObject({ status: 200, json: { challenge: 'challenge-encrypted' } });
  expect((await send(urlVerification('another-apps-token', 'x'), { signature: null })).status).toBe(401);
  // Anything else unsigned is refused, even with the right token inside.
  const unsigned = messageEvent(lark.personWrites(FIONA, `@bot ${REQUIREMENT}`), 'ev-unsigned', VERIFICATION_TOKEN);
  expect((await send(unsigned, { signature: null })).status).toBe(401);
});

test('a mention starts a run in its thread; the card is posted once and patched; buttons and replies drive the run', async () => {
  // fiona mentions the bot with a requirement; Lark keeps the message, then delivers the event.
  const mention = lark.personWrites(FIONA, `@bot ${REQUIREMENT}`);
  const event = messageEvent(mention, 'ev-mention-1', VERIFICATION_TOKEN);
  const delivered = await send(event);
  expect(delivered).toMatchObject({ status: 200, json: {} });
  expect(delivered.ms).toBeLessThan(3000);
  const runId = runIdForThread('lark', TENANT.chat, mention.message_id);
  expect(await router.outcome(mention.message_id)).toEqual({ kind: 'started', runId, alreadyStarted: false });

  // Lark delivers the same event again (as after a slow answer): answered, and nothing happens twice.
  expect((await send(event)).status).toBe(200);
  expect(await router.outcome(mention.message_id, 2)).toEqual({ kind: 'ignored', why: 'already handled this delivery' });

  let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  expect(state.request).toMatchObject({ requirement: REQUIREMENT, requester: 'fiona', conversation: { platform: 'lark', channel: TENANT.chat, thread: mention.message_id } });
  let card = await cardShowing(runId);
  // Posted once, as a reply in the mention's thread, then patched in place.
  expect(cardPosts(mention)).toHaveLength(1);
  expect(cardPosts(mention)[0]).toMatchObject({ messageId: mention.message_id, body: { msg_type: 'interactive', reply_in_thread: true, uuid: expect.stringMatching(/^cr-[0-9a-f]{40}$/) } });
  expect(card.root_id).toBe(mention.message_id);
  expect(lark.callsTo('im.message.patch').filter((c) => c.messageId === card.message_id).length).toBeGreaterThan(0);
  expect(buttonsOf(card).map((b) => b.text.content)).toEqual(['Remove', 'Add', 'Remove', 'Confirm 2 repositories', 'Open questions: not needed', 'Cancel']);
  expect(buttonsOf(card).map((b) => b.value.action)).toEqual(['toggle', 'toggle', 'toggle', 'confirm', 'questions_not_needed', 'cancel']);
  expect(shown(card)).toContain('Please confirm which repositories to change.');

  // A button on the card as first posted (an older card version): refused, and the answer redraws the card.
  const firstCard: LarkMessage = { ...card, content: cardPosts(mention)[0]!.body.content };
  expect(buttonsOf(firstCard).find((b) => b.value.action === 'cancel')!.value.cardVersion).toBeLessThan(state.cardVersion);
  const outdated = await press(firstCard, 'Cancel', FIONA, 'ev-press-outdated');
  expect(outdated.json.toast).toEqual({ type: 'error', content: 'this card is out of date; here is the current one' });
  expect(outdated.json.card.type).toBe('raw');
  expect(buttonsOf(asMessage(card, outdated.json.card.data)).every((b) => b.value.cardVersion === state.cardVersion)).toBe(true);
  expect((await world.gateway.state(runId)).phase).toBe('awaiting_confirmation');

  // Toggles redraw the card with the next selection (no signal); toggling back restores it.
  card = lark.message(card.message_id)!;
  let answer = await press(card, (b) => b.value.action === 'toggle' && b.value.repo === 'web-app', FIONA, 'ev-press-toggle-1');
  expect(answer.json.toast).toBeUndefined();
  card = lark.message(card.message_id)!;
  expect(buttonsOf(card).map((b) => b.text.content)).toContain('Confirm 1 repository');
  await press(card, (b) => b.value.action === 'toggle' && b.value.repo === 'web-app', FIONA, 'ev-press-toggle-2');
  card = lark.message(card.message_id)!;
  expect(buttonsOf(card).map((b) => b.text.content)).toContain('Confirm 2 repositories');

  // fiona confirms: the answer says so and shows the card as it is now.
  answer = await press(card, 'Confirm', FIONA, 'ev-press-confirm');
  expect(answer.ms).toBeLessThan(3000);
  expect(answer.json.toast).toEqual({ type: 'success', content: 'Confirmed: the agent starts editing.' });
  expect(await router.outcome('ev-press-confirm')).toMatchObject({ kind: 'accepted', runId });
  state = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  expect([...state.confirmed].sort()).toEqual(['ui-kit', 'web-app']);
  card = await cardShowing(runId);
  expect(cardPosts(mention)).toHaveLength(1);
  expect(buttonsOf(card).map((b) => b.text.content)).toEqual(['Approve and open pull requests', 'Give feedback', 'Open questions: not needed', 'Cancel']);

  // pam may not approve: refused with the reason, the run unchanged.
  answer = await press(card, 'Approve', PAM, 'ev-press-pam-approve');
  expect(answer.json.toast).toMatchObject({ type: 'error', content: expect.stringContaining('approve refused') });
  expect(answer.json.card.type).toBe('raw');
  state = await world.gateway.state(runId);
  expect(state.phase).toBe('awaiting_review');
  expect(state.inputs.at(-1)).toMatchObject({ by: 'pam', outcome: 'refused' });

  // Forged, stale or foreign requests are turned away before anything reaches the run.
  const inputsBefore = state.inputs.length;
  const forged = cardAction(card, 'Approve', FIONA, 'ev-press-forged', VERIFICATION_TOKEN);
  expect((await send(forged, { signature: 'f'.repeat(64) })).status).toBe(401);
  expect((await send(forged, { timestamp: Math.floor(Date.now() / 1000) - 5 * 60 - 30 })).status).toBe(401);
  expect((await send(cardAction(card, 'Approve', FIONA, 'ev-press-forged', 'another-apps-token'))).status).toBe(401);
  expect((await send(forged, { encryptKey: 'not-the-encrypt-key' })).status).toBe(401);
  await settle();
  expect(router.outcomes.some((o) => o.eventId === 'ev-press-forged')).toBe(false);
  state = await world.gateway.state(runId);
  expect(state.inputs).toHaveLength(inputsBefore);
  expect(state.phase).toBe('awaiting_review');

  // A reply in the thread while the run awaits review is feedback: a new round.
  const reply = lark.personWrites(FIONA, 'Please add a changelog entry', { root: mention.message_id });
  expect((await send(messageEvent(reply, 'ev-reply-1', VERIFICATION_TOKEN))).status).toBe(200);
  expect(await router.outcome(reply.message_id)).toEqual({ kind: 'fed', runId, as: 'feedback' });
  state = await waitForState(world.gateway, runId, (s) => s.phase === 'awaiting_review' && s.rounds.at(-1)?.kind === 'feedback', 120_000);
  expect(state.feedback).toEqual([expect.objectContaining({ by: 'fiona', text: 'Please add a changelog entry', round: state.rounds.at(-1)!.n })]);

  // "Give feedback" asks for a reply in the thread.
  card = await cardShowing(runId);
  answer = await press(card, 'Give feedback', FIONA, 'ev-press-feedback');
  expect(answer.json.toast).toEqual({ type: 'info', content: 'Reply in this thread with your feedback: the agent works on it in a new round.' });

  // fiona approves: pull requests open, and the final card (still the one message) says so.
  answer = await press(card, 'Approve', FIONA, 'ev-press-approve');
  expect(answer.json.toast).toEqual({ type: 'success', content: 'Approved: opening the pull requests.' });
  state = await waitForPhase(world.gateway, runId, 'tracking', 120_000);
  card = await cardShowing(runId);
  expect(shown(card)).toContain('Pull requests are open: following them until each is merged or closed.');
  expect(shown(card)).toContain('PR #');
  expect(cardPosts(mention)).toHaveLength(1);
  expect(state.lastError).toBeNull();

  // A reply once the pull requests are open is refused, and told in the thread.
  const late = lark.personWrites(FIONA, 'One more thing: bold prices', { root: mention.message_id });
  await send(messageEvent(late, 'ev-reply-late', VERIFICATION_TOKEN));
  expect(await router.outcome(late.message_id)).toMatchObject({ kind: 'refused', reason: `addContext refused: ${PULL_REQUESTS_ARE_OPEN}` });
  const told = await waitFor(() => lark.callsTo('im.message.reply').find((c) => c.messageId === late.message_id), 'the refusal in the thread');
  expect(told.body).toMatchObject({ msg_type: 'text', reply_in_thread: true });
  expect(JSON.parse(told.body.content)).toEqual({ text: `<at user_id="${FIONA}"></at> addContext refused: ${PULL_REQUESTS_ARE_OPEN}` });

  // A press the run decides after Lark's 3 seconds: answered in time with "working on it", then the card
  // is redrawn and the person told in the thread.
  router.slowDown('ev-press-slow', 3500);
  const slow = await press(firstCard, 'Cancel', FIONA, 'ev-press-slow');
  expect(slow.ms).toBeLessThan(3000);
  expect(slow.json).toEqual({ toast: { type: 'info', content: 'Working on it: the card changes when the change request has decided.' } });
  const followUp = await waitFor(() => lark.callsTo('im.message.reply').find((c) => c.messageId === card.message_id && c.body.msg_type === 'text'), 'the late refusal in the thread', 10_000);
  expect(JSON.parse(followUp.body.content).text).toContain('this card is out of date');
  expect(shown(lark.message(card.message_id)!)).toContain('Pull requests are open: following them until each is merged or closed.');
});

test('a mention inside someone’s thread starts the run in that thread; messages that do not concern the bot are ignored', async () => {
  const root = lark.personWrites(PAM, 'Customers abroad ask which currency "$12.50" is.');
  const unrelated = lark.personWrites(FIONA, 'Agreed, we should fix this', { root: root.message_id });
  await send(messageEvent(unrelated, 'ev-plain-reply', VERIFICATION_TOKEN));
  expect(await router.outcome(unrelated.message_id)).toEqual({ kind: 'ignored', why: 'not a change request thread' });
  // A top-level group message without a mention never reaches the router.
  const chatter = lark.personWrites(FIONA, 'Lunch?');
  await send(messageEvent(chatter, 'ev-chatter', VERIFICATION_TOKEN));

  const mention = lark.personWrites(FIONA, `@bot ${REQUIREMENT}`, { root: root.message_id });
  await send(messageEvent(mention, 'ev-mention-in-thread', VERIFICATION_TOKEN));
  const runId = runIdForThread('lark', TENANT.chat, root.message_id);
  expect(await router.outcome(`${mention.message_id}:start`)).toEqual({ kind: 'started', runId, alreadyStarted: false });
  const state = await waitForState(world.gateway, runId, (s) => s.card !== null);
  expect(state.request).toMatchObject({ requirement: REQUIREMENT, conversation: { platform: 'lark', channel: TENANT.chat, thread: root.message_id } });
  expect(lark.message(state.card!.messageId)!.root_id).toBe(root.message_id);
  expect(router.outcomes.map((o) => o.eventId)).not.toContain(chatter.message_id);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-thread-run' });
});

test('a Lark doc linked and a file sent in the run\'s thread are read through the open API; a doc not shared with the app is a note', async () => {
  const mention = lark.personWrites(FIONA, `@bot ${REQUIREMENT}`);
  await send(messageEvent(mention, 'ev-docs-mention', VERIFICATION_TOKEN));
  const runId = runIdForThread('lark', TENANT.chat, mention.message_id);
  expect(await router.outcome(mention.message_id)).toMatchObject({ kind: 'started', runId });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');

  // pam links the pricing team's doc: read by its id with the docx raw-content API, never fetched as a page.
  const docText = 'Currency display\nEvery price shows its ISO currency code before the amount, as in USD 12.50.\nThe cart uses the same format.\n';
  lark.addDoc('doxcnCurrency0000000000001', { title: 'Currency display rules', content: docText });
  lark.addDoc('doxcnPrivate00000000000001', { title: 'Private', content: 'secret plans', sharedWithApp: false });
  const link = 'https://acme.feishu.cn/docx/doxcnCurrency0000000000001';
  const withDoc = lark.personWrites(PAM, `The rules are in ${link} and https://acme.feishu.cn/docx/doxcnPrivate00000000000001`, { root: mention.message_id });
  await send(messageEvent(withDoc, 'ev-doc-link', VERIFICATION_TOKEN));
  expect(await router.outcome(withDoc.message_id)).toEqual({ kind: 'fed', runId, as: 'addContext' });
  let state = await waitForState(world.gateway, runId, (s) => s.intake.sources.some((source) => source.url === link) && s.intake.unreadable.length >= 1);
  const store = SourceStore.under(path.join(world.dataDir, 'worker'));
  const doc = state.intake.sources.find((source) => source.url === link)!;
  expect(doc).toMatchObject({ id: 'S1', via: 'context', title: 'Currency display rules', format: 'text' });
  expect(await store.text(doc.hash)).toBe(docText.trim());
  expect(lark.callsTo('docx.document.raw_content').map((c) => c.messageId)).toContain('doxcnCurrency0000000000001');
  expect(state.intake.unreadable).toEqual([
    expect.objectContaining({ url: 'https://acme.feishu.cn/docx/doxcnPrivate00000000000001', why: expect.stringContaining('code 1770032 forbidden; share the doc with the app') }),
  ]);

  // fiona sends the API definition as a file in the thread: downloaded as the message's resource.
  const spec = 'openapi: 3.0.3\ninfo:\n  title: Prices\n  version: 1.0.0\npaths:\n  /api/prices:\n    get:\n      operationId: listPrices\n      responses:\n        \'200\':\n          description: The prices\n';
  const file = lark.personSendsFile(FIONA, { name: 'prices.yaml', mimetype: 'application/octet-stream', content: spec }, { root: mention.message_id });
  await send(messageEvent(file, 'ev-file', VERIFICATION_TOKEN));
  expect(await router.outcome(file.message_id)).toEqual({ kind: 'fed', runId, as: 'addContext' });
  const fileKey = JSON.parse(file.content).file_key as string;
  const reference = `lark-file:${file.message_id}/${fileKey}`;
  state = await waitForState(world.gateway, runId, (s) => s.intake.sources.some((source) => source.url === reference));
  expect(state.context.at(-1)!.text).toBe(`Attached prices.yaml: ${reference}`);
  const sent = state.intake.sources.find((source) => source.url === reference)!;
  expect(sent).toMatchObject({ id: 'S2', title: 'Prices 1.0.0 (OpenAPI 3.0.3)', format: 'yaml', api: { operations: [expect.objectContaining({ method: 'get', path: '/api/prices', operationId: 'listPrices' })] } });
  expect(await store.text(sent.hash)).toBe(spec.trim());
  expect(lark.callsTo('im.message.resource').map((c) => c.messageId)).toContain(file.message_id);
  expect(state.phase).toBe('awaiting_confirmation');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-docs-run' });
});

test('a direct message to the bot starts a run without a mention', async () => {
  const direct = lark.personWrites(FIONA, REQUIREMENT, { direct: true });
  await send(messageEvent(direct, 'ev-direct', VERIFICATION_TOKEN));
  const runId = runIdForThread('lark', direct.chat_id, direct.message_id);
  expect(await router.outcome(direct.message_id)).toEqual({ kind: 'started', runId, alreadyStarted: false });
  const state = await waitForState(world.gateway, runId, (s) => s.card !== null);
  expect(state.request).toMatchObject({ requirement: REQUIREMENT, requester: 'fiona', conversation: { platform: 'lark', channel: direct.chat_id, thread: direct.message_id } });
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cleanup-direct-run' });
});

describe('LarkChannel', () => {
  const channel = () => new LarkChannel({ appId: TENANT.appId, appSecret: APP_SECRET, domain: lark.url });
  const conversationFor = (root: LarkMessage): ConversationRef => ({ platform: 'lark', channel: root.chat_id, thread: root.message_id });

  test('a retried first post is one message (Lark de-duplicates the uuid); later shows patch it', async () => {
    const root = lark.personWrites(FIONA, '@bot something');
    const first = await channel().showCard(conversationFor(root), sampleCard('cr-lark-retry', 3), null);
    // The activity is retried without the reference (its answer was lost): Lark answers with the same message.
    const again = await channel().showCard(conversationFor(root), sampleCard('cr-lark-retry', 3), null);
    expect(again).toEqual(first);
    expect(lark.thread(root.message_id).filter((m) => m.msg_type === 'interactive')).toHaveLength(1);
    const patched = await channel().showCard(conversationFor(root), { ...sampleCard('cr-lark-retry', 4), status: 'Editing…' }, first);
    expect(patched).toEqual({ channel: root.chat_id, messageId: first.messageId, shows: 4 });
    expect(shown(lark.message(first.messageId)!)).toContain('Editing…');
  });

  test('a message is posted once per idempotency key', async () => {
    const root = lark.personWrites(FIONA, '@bot something else');
    await channel().post(conversationFor(root), 'remind-1', 'Still waiting for your confirmation', 'cr-lark-post');
    await channel().post(conversationFor(root), 'remind-1', 'Still waiting for your confirmation', 'cr-lark-post');
    const replies = lark.thread(root.message_id).slice(1);
    expect(replies).toHaveLength(1);
    expect(JSON.parse(replies[0]!.content)).toEqual({ text: 'Still waiting for your confirmation' });
  });

  test('rate limits become retryable failures after Lark’s wait; refusals read plainly and without secrets', async () => {
    const root = lark.personWrites(FIONA, '@bot and another');
    lark.failNext('im.message.reply', { status: 429, fixture: 'api.error.rate_limited', headers: { 'x-ogw-ratelimit-reset': '7' } });
    const limited = await channel().post(conversationFor(root), 'k', 'hello', 'cr-lark-429').catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(ApplicationFailure);
    expect(limited).toMatchObject({ type: 'LarkRateLimited', nonRetryable: false, nextRetryDelay: 7000 });

    lark.failNext('im.message.patch', { status: 400, fixture: 'api.error.bot_not_in_chat' });
    const refused = await channel().showCard(conversationFor(root), sampleCard('cr-lark-refused', 1), { channel: root.chat_id, messageId: root.message_id, shows: 0 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LarkApiError);
    expect((refused as Error).message).toBe('Lark refused im.message.patch: code 230002 Bot/User can NOT be out of the chat.; add the bot to the chat');

    const wrongSecret = await new LarkChannel({ appId: TENANT.appId, appSecret: 'not-the-secret', domain: lark.url }).post(conversationFor(root), 'k2', 'hello', 'r').catch((e: unknown) => e);
    expect((wrongSecret as Error).message).toBe('Lark refused im.message.reply (getting the tenant access token): code 10014 app secret invalid');
    expect((wrongSecret as Error).message).not.toContain(APP_SECRET);
  });
});

describe('larkCard', () => {
  test('escapes lark_md, links screenshots, and carries each button’s value', () => {
    const card: Card = {
      ...sampleCard('cr-lark-card', 2),
      title: 'Prices **bold** <at id=all></at>',
      sections: [{ heading: 'web-app preview', lines: ['[click](https://evil.example) *now* <at id=all></at>'], image: { url: 'https://previews.example.com/r/web-app.png', alt: 'web-app preview' } }],
      links: [{ label: 'web-app PR #3', url: 'https://forge.example/demo/web-app/pull/3' }],
      hint: 'Reply in this thread to add context for the agent.',
    };
    const drawn = larkCard(card);
    const json = JSON.stringify(drawn);
    expect(drawn.config).toEqual({ wide_screen_mode: true, update_multi: true });
    // The title is plain_text, shown as it is; lark_md text is escaped, so people's text makes no links or @all.
    expect(drawn.header!.title).toEqual({ tag: 'plain_text', content: 'Prices **bold** <at id=all></at>' });
    expect(json).toContain(escapeLarkMd('[click](https://evil.example) *now* <at id=all></at>'));
    expect(drawn.elements!.map((e) => JSON.stringify(e)).join('')).not.toMatch(/<at|\[click\]/);
    // Screenshots are linked (an image needs an image_key from Lark's upload API), like the pull requests.
    expect(json).toContain(`[${escapeLarkMd('Screenshot: web-app preview')}](https://previews.example.com/r/web-app.png)`);
    expect(json).toContain(`[${escapeLarkMd('web-app PR #3')}](https://forge.example/demo/web-app/pull/3)`);
    const buttons = buttonsOf({ content: json });
    expect(buttons.map((b) => [b.text.content, b.type])).toEqual([['Remove', 'default'], ['Confirm 1 repository', 'primary'], ['Cancel', 'danger']]);
    expect(buttons.map((b) => b.value)).toEqual([card.choices[0]!.toggle.value, card.buttons[0]!.value, card.buttons[1]!.value]);
    expect(drawn.elements!.at(-1)).toEqual({ tag: 'note', elements: [{ tag: 'plain_text', content: 'Reply in this thread to add context for the agent.' }] });
  });
});

// ---------------------------------------------------------------------------------------------------------

function send(body: unknown, options: Partial<DeliveryOptions> = {}) {
  return deliver(adapter.url, body, { encryptKey: ENCRYPT_KEY, ...options });
}

/**
 * Presses a button (by the start of its text, or a test on it) on a card message; when the answer carries a
 * card, Lark shows it in place of the old one, and so does the fake.
 */
async function press(message: LarkMessage, button: string | ((b: CardButton) => boolean), operator: string, eventId: string) {
  const answer = await send(cardAction(message, button, operator, eventId, VERIFICATION_TOKEN));
  expect(answer.status).toBe(200);
  if (answer.json?.card) lark.showCallbackCard(message.message_id, answer.json.card.data);
  return answer;
}

/** A card message's text as people read it: lark_md's character references decoded. */
function shown(message: LarkMessage): string {
  return message.content.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
}

function asMessage(message: LarkMessage, card: unknown): LarkMessage {
  return { ...message, content: JSON.stringify(card) };
}

/** Cards the channel posted as replies to `root`. */
function cardPosts(root: LarkMessage) {
  return lark.callsTo('im.message.reply').filter((c) => c.body.msg_type === 'interactive' && c.messageId === root.message_id);
}

/** The run's card, once the run says the message shows its current card version. */
async function cardShowing(runId: string): Promise<LarkMessage> {
  const state: RunState = await waitForState(world.gateway, runId, (s) => s.card !== null && s.card.shows === s.cardVersion);
  return lark.message(state.card!.messageId)!;
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
    hint: null,
  };
}

async function waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Gives work that would follow a wrongly accepted request time to show. */
function settle(): Promise<void> {
  return sleep(500);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
