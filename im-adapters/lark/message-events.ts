// `im.message.receive_v1` into commands: a message that @mentions the bot outside a run's thread (or any
// message in a direct chat with it) starts a run in its own thread, a mention inside another thread starts
// one in that thread, and a message in a run's thread feeds the run. The SDK's `normalize` turns the message into text: mentions of the bot removed, other mentions as
// @name, rich-text posts flattened.
import type { BotIdentity, NormalizedMessage, RawMessageEvent } from '@larksuiteoapi/node-sdk';
import { z } from 'zod';
import type { Card } from '../../domain/card';
import { NOT_A_RUN_THREAD, personFor, type ConversationRouter, type InboundDeps, type MessageOutcome } from '../core/router';
import { larkAttachedLine } from './documents';
import { lark } from './sdk';

/** What Lark's inbound handling needs beyond every platform's (the router and the catalog). */
export interface LarkInboundDeps extends InboundDeps {
  /** The bot itself, to tell a mention of it from other mentions. */
  bot: () => Promise<BotIdentity>;
  /** A text reply in the thread of message `to`, mentioning `person` (an open_id); sent once per `uuidSeed`. */
  reply(to: string, person: string, text: string, uuidSeed: string): Promise<void>;
  /** Redraws the card message `messageId`. */
  patchCard(messageId: string, card: Card): Promise<void>;
}

/** The fields this handler relies on (Lark's event schema has more); anything else is not a person's message. */
const MessageEventSchema = z.object({
  sender: z.object({ sender_id: z.object({ open_id: z.string().min(1) }), sender_type: z.literal('user') }),
  message: z.object({ message_id: z.string().min(1), chat_id: z.string().min(1), chat_type: z.string(), message_type: z.string(), content: z.string() }),
});


export async function onMessageEvent(deps: LarkInboundDeps, event: unknown): Promise<void> {
  if (!MessageEventSchema.safeParse(event).success) return;
  const message = await lark.normalize(event as RawMessageEvent, { botIdentity: await deps.bot(), stripBotMentions: true });
  const person = personFor(await deps.loadCatalog(), 'lark', message.senderId);
  let outcome: MessageOutcome | null;
  try {
    outcome = await route(deps.router, message, person);
  } catch (error) {
    // Nobody waits for this answer (Lark got its own at once): tell the person, then let the adapter log it.
    const why = error instanceof Error ? error.message : String(error);
    await deps.reply(message.messageId, message.senderId, `That did not work: ${why}`, `failure:${message.messageId}`).catch(() => undefined);
    throw error;
  }
  if (outcome?.kind === 'refused') await deps.reply(message.messageId, message.senderId, outcome.reason, `refusal:${message.messageId}`);
}

/** Starts or feeds a run, or null when the message does not concern the bot. */
async function route(router: ConversationRouter, message: NormalizedMessage, person: string): Promise<MessageOutcome | null> {
  // Lark's documentation for this event says to de-duplicate by message_id rather than event_id (a message
  // may be pushed again as another event); the run's idempotency key is made of it too.
  const common = { platform: 'lark' as const, channel: message.chatId, person, text: withFiles(message), eventId: message.messageId };
  if (message.rootId) {
    const outcome = await router.onMessage({ ...common, thread: message.rootId, startsRun: false });
    if (outcome.kind === 'ignored' && outcome.why === NOT_A_RUN_THREAD && message.mentionedBot) {
      // Asked inside someone's thread: the run lives in that thread.
      return router.onMessage({ ...common, thread: message.rootId, eventId: `${message.messageId}:start`, startsRun: true });
    }
    return outcome;
  }
  // A direct chat with the bot needs no mention.
  if (message.mentionedBot || message.chatType === 'p2p') return router.onMessage({ ...common, thread: message.messageId, startsRun: true });
  return null;
}

/**
 * The message's text, with each file it carries as a line the run reads (im-adapters/lark/documents.ts)
 * instead of the SDK's `<file key=… name=…/>` element.
 */
function withFiles(message: NormalizedMessage): string {
  const files = message.resources.filter((r) => r.type === 'file');
  if (files.length === 0) return message.content;
  const text = message.content.replace(/<file\b[^>]*\/>/g, '').trim();
  return [text, ...files.map((file) => larkAttachedLine(message.messageId, file))].filter(Boolean).join('\n');
}
