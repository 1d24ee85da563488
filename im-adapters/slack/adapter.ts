// The Slack adapter: a Bolt app that receives events, slash commands and interactions, over HTTP (Bolt
// checks X-Slack-Signature with the signing secret and refuses requests older than five minutes with 401)
// or over Socket Mode. Everything is acknowledged at once, because Slack gives an app three seconds and
// retries or shows an error after that; the work (which waits for the run's verdict) continues after the ack.
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, LogLevel, type BlockAction, type ButtonAction, type Logger, type webApi } from '@slack/bolt';
import type { Catalog } from '../../domain/catalog-schema';
import type { ConversationRouter } from '../core/router';
import { ACTION_ID_PREFIX, escapeMrkdwn } from './blocks';
import { cardMessage, isRootOf, rootMessage } from './card-message';
import { EventDeduper } from '../core/dedupe';
import { FEEDBACK_CALLBACK_ID, onButtonPress, onFeedbackSubmitted, type InteractionCalls } from './interactions';
import { onMention, onThreadReply, type InboundDeps, type TellPerson } from './messages';
import { callSlack } from './slack-errors';
import { CHANGE_COMMAND, onChangeCommand } from './slash-command';

export interface SlackAdapterOptions {
  router: ConversationRouter;
  loadCatalog: () => Promise<Catalog>;
  /** Verifies HTTP requests; Socket Mode does not use it. */
  signingSecret: string;
  botToken: string;
  /** HTTP port; 0 picks a free one. Default 3000, Bolt's. */
  port?: number;
  /** Where the Web API is; Slack's own unless a test or proxy says otherwise. */
  slackApiUrl?: string;
  /** Receive over a WebSocket Slack opens for the app, instead of HTTP requests to a public URL. */
  socketMode?: { appToken: string };
}

export interface SlackAdapter {
  /** The HTTP endpoint for events, interactivity and the slash command (absent in Socket Mode). */
  url?: string;
  close(): Promise<void>;
}

/** Bolt's default endpoint; the app manifest points events, interactivity and commands at it. */
const EVENTS_PATH = '/slack/events';

/** Slack's rule: a request more than five minutes off the clock, in either direction, is refused. */
const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

/**
 * Bolt's receiver verifies the signature and refuses requests that are too old, but accepts any from the
 * future (a replay captured and held back, or a forged clock); this one refuses both directions first.
 */
function receiverWithClockCheck(signingSecret: string, now: () => number): HTTPReceiver {
  const receiver = new HTTPReceiver({ signingSecret, endpoints: [EVENTS_PATH], logLevel: LogLevel.WARN });
  const verifiedListener = receiver.requestListener;
  receiver.requestListener = (req, res) => {
    const sent = Number(req.headers['x-slack-request-timestamp']);
    if (!Number.isFinite(sent) || Math.abs(now() / 1000 - sent) > MAX_CLOCK_SKEW_SECONDS) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('request timestamp is missing or more than five minutes off');
      return;
    }
    verifiedListener(req, res);
  };
  return receiver;
}

export async function startSlackAdapter(options: SlackAdapterOptions): Promise<SlackAdapter> {
  const app = new App({
    token: options.botToken,
    ...(options.socketMode ? { socketMode: true, appToken: options.socketMode.appToken } : { receiver: receiverWithClockCheck(options.signingSecret, Date.now) }),
    clientOptions: options.slackApiUrl ? { slackApiUrl: options.slackApiUrl.endsWith('/') ? options.slackApiUrl : `${options.slackApiUrl}/` } : {},
    logLevel: LogLevel.WARN,
    // Bolt's per-conversation store is not used: the run's state is the only state.
    convoStore: false,
  });
  listen(app, { router: options.router, loadCatalog: options.loadCatalog });

  if (options.socketMode) {
    await app.start();
    return { close: () => app.stop().then(() => undefined) };
  }
  const server = await app.start(options.port ?? 3000);
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}${EVENTS_PATH}`, close: () => app.stop().then(() => undefined) };
}

function listen(app: App, deps: InboundDeps): void {
  const commandsInHand = new EventDeduper();
  app.event('app_mention', async ({ event, body, context, client, logger }) => {
    const tell = tellVia(client);
    const user = event.user;
    await reportFailure(
      logger,
      'app_mention',
      () => onMention(deps, event, body.event_id, context.botUserId, tell),
      user ? (text) => tell({ channel: event.channel, user, thread: event.thread_ts ?? event.ts }, text) : undefined,
    );
  });

  app.event('message', async ({ event, body, context, client, logger }) => {
    await reportFailure(logger, 'message', () => onThreadReply(deps, event, body.event_id, context.botUserId, tellVia(client)));
  });

  app.command(CHANGE_COMMAND, async ({ command, ack, client, respond, logger }) => {
    await ack();
    const answer = async (text: string) => {
      await respond({ response_type: 'ephemeral', text: escapeMrkdwn(text) });
    };
    await reportFailure(
      logger,
      CHANGE_COMMAND,
      () =>
        onChangeCommand(deps, command, {
          postRoot: (channel, text, triggerKey) => findOrPostRoot(client, channel, text, triggerKey),
          answer,
          tell: tellVia(client),
        }, commandsInHand),
      answer,
    );
  });

  app.action<BlockAction<ButtonAction>>({ type: 'block_actions', action_id: new RegExp(`^${ACTION_ID_PREFIX}`) }, async ({ ack, body, action, client, logger }) => {
    await ack();
    const calls: InteractionCalls = {
      updateCard: async (where, card) => {
        await callSlack('chat.update', () => client.chat.update({ channel: where.channel, ts: where.ts, ...cardMessage(card) }));
      },
      openModal: async (triggerId, view) => {
        await callSlack('views.open', () => client.views.open({ trigger_id: triggerId, view }));
      },
      tell: tellVia(client),
    };
    const channel = body.channel?.id;
    await reportFailure(logger, 'button', () => onButtonPress(deps, body, action, calls), channel ? (text) => calls.tell({ channel, user: body.user.id }, text) : undefined);
  });

  app.view(FEEDBACK_CALLBACK_ID, async ({ ack, body, view, client, logger }) => {
    // Closes the form at once; a refusal arrives as a private note in the thread.
    await ack();
    await reportFailure(logger, 'feedback form', () => onFeedbackSubmitted(deps, body.user.id, view, tellVia(client)));
  });
}

/** A note only `audience.user` sees, in the thread it concerns. */
function tellVia(client: InstanceType<typeof webApi.WebClient>): TellPerson {
  return async (audience, text) => {
    await callSlack('chat.postEphemeral', () =>
      client.chat.postEphemeral({ channel: audience.channel, user: audience.user, text: escapeMrkdwn(text), ...(audience.thread ? { thread_ts: audience.thread } : {}) }),
    );
  };
}

/**
 * After the ack nobody waits for a listener's result, so its failure is logged and, where possible, told to
 * the person who acted, instead of reaching Bolt, which would try to answer an HTTP request already answered.
 */
async function reportFailure(logger: Logger, what: string, work: () => Promise<void>, tellPerson?: (text: string) => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error(`Slack ${what} not handled: ${message}`);
    await tellPerson?.(`That did not work: ${message}`).catch((tellError: unknown) => {
      logger.error(`could not tell the person either: ${tellError instanceof Error ? tellError.message : String(tellError)}`);
    });
  }
}

/** How far back a replayed command's root message is looked for: requests older than five minutes get 401. */
const ROOT_LOOKBACK_SECONDS = 15 * 60;

/** The root message of this trigger if one was posted (by this adapter or one before a restart), else a new one. */
async function findOrPostRoot(client: InstanceType<typeof webApi.WebClient>, channel: string, text: string, triggerKey: string): Promise<{ channel: string; ts: string }> {
  const oldest = String(Math.floor(Date.now() / 1000) - ROOT_LOOKBACK_SECONDS);
  let cursor: string | undefined;
  do {
    const page = await callSlack('conversations.history', () => client.conversations.history({ channel, oldest, include_all_metadata: true, limit: 200, ...(cursor ? { cursor } : {}) }));
    const found = page.messages?.find(isRootOf(triggerKey));
    if (found?.ts) return { channel, ts: found.ts };
    cursor = page.response_metadata?.next_cursor || undefined;
  } while (cursor);
  const posted = await callSlack('chat.postMessage', () => client.chat.postMessage({ channel, ...rootMessage(triggerKey, text) }));
  if (!posted.channel || !posted.ts) throw new Error('Slack chat.postMessage answered without the channel and ts of the request');
  return { channel: posted.channel, ts: posted.ts };
}
