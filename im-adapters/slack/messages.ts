// Chat messages into commands: a mention of the app outside a run's thread starts a run there, a mention or
// a plain reply inside a run's thread feeds it. Slack sends a mention in a channel twice (as `app_mention`
// and as `message`, with different event ids), so plain messages that mention the app are left to the
// mention handler.
import type { types } from '@slack/bolt';
import { NOT_A_RUN_THREAD, personFor, type InboundDeps, type InboundMessage, type MessageOutcome } from '../core/router';
import { slackAttachedLine } from './documents';

/** What a message event says of its files (files.info, in the worker, says the rest). */
type SharedFile = { id: string; name?: string | null; title?: string | null };

/** Where and to whom a private answer goes. */
export interface Audience {
  channel: string;
  user: string;
  thread?: string;
}

export type TellPerson = (audience: Audience, text: string) => Promise<void>;

export type { InboundDeps } from '../core/router';

export async function onMention(deps: InboundDeps, event: types.AppMentionEvent, eventId: string, botUserId: string | undefined, tell: TellPerson): Promise<void> {
  // Edits are not new requests: only messages as first sent count, as for replies.
  if (!event.user || event.bot_id || event.edited) return;
  const person = personFor(await deps.loadCatalog(), 'slack', event.user);
  const common = { platform: 'slack' as const, channel: event.channel, person, text: withFiles(plainText(event.text, botUserId), filesOf(event)) };
  const root = threadRootOf(event);
  let outcome: MessageOutcome;
  if (root) {
    outcome = await deps.router.onMessage({ ...common, thread: root, eventId, startsRun: false });
    if (outcome.kind === 'ignored' && outcome.why === NOT_A_RUN_THREAD) {
      // Asked in someone's discussion thread: the run lives in that thread (Slack threads are one level deep).
      outcome = await deps.router.onMessage({ ...common, thread: root, eventId: `${eventId}:start`, startsRun: true });
    }
  } else {
    outcome = await deps.router.onMessage({ ...common, thread: event.ts, eventId, startsRun: true });
  }
  await tellRefusal(outcome, { channel: event.channel, user: event.user, thread: root ?? event.ts }, tell);
}

export async function onThreadReply(deps: InboundDeps, event: types.AllMessageEvents, eventId: string, botUserId: string | undefined, tell: TellPerson): Promise<void> {
  const reply = personReply(event, botUserId);
  if (!reply) return;
  const message: InboundMessage = {
    platform: 'slack',
    channel: reply.channel,
    thread: reply.thread,
    person: personFor(await deps.loadCatalog(), 'slack', reply.user),
    text: withFiles(plainText(reply.text, botUserId), reply.files),
    eventId,
    startsRun: false,
  };
  await tellRefusal(await deps.router.onMessage(message), { channel: reply.channel, user: reply.user, thread: reply.thread }, tell);
}

export async function tellRefusal(outcome: MessageOutcome, audience: Audience, tell: TellPerson): Promise<void> {
  if (outcome.kind === 'refused') await tell(audience, outcome.reason);
}

/**
 * A person's reply in a thread, or null for everything else the `message` subscription brings: top-level
 * messages, edits and deletions (subtypes), other apps' and bots' posts, and mentions of this app.
 */
function personReply(event: types.AllMessageEvents, botUserId: string | undefined): { channel: string; user: string; text: string; thread: string; files: SharedFile[] } | null {
  // thread_broadcast is a reply also sent to the channel, file_share one with files attached; every other
  // subtype is not a person writing.
  if (event.subtype !== undefined && event.subtype !== 'thread_broadcast' && event.subtype !== 'file_share') return null;
  const files = filesOf(event);
  const text = 'text' in event ? (event.text ?? '') : '';
  if (('bot_id' in event && event.bot_id) || !('user' in event) || !event.user || (!text && files.length === 0)) return null;
  const thread = 'thread_ts' in event && event.thread_ts && event.thread_ts !== event.ts ? event.thread_ts : null;
  if (!thread) return null;
  if (botUserId && mentionOf(botUserId).test(text)) return null;
  return { channel: event.channel, user: event.user, text, thread, files };
}

function filesOf(event: object): SharedFile[] {
  const files = (event as { files?: unknown }).files;
  return Array.isArray(files) ? files.filter((f): f is SharedFile => typeof f === 'object' && f !== null && typeof (f as SharedFile).id === 'string') : [];
}

/** The message's text with a line for each attached file, which the run reads (im-adapters/slack/documents.ts). */
function withFiles(text: string, files: readonly SharedFile[]): string {
  return [text, ...files.map(slackAttachedLine)].filter(Boolean).join('\n');
}

function threadRootOf(event: types.AppMentionEvent): string | null {
  return event.thread_ts && event.thread_ts !== event.ts ? event.thread_ts : null;
}

/** What the person typed: without the app's mention, and with Slack's escaping of `&`, `<`, `>` undone. */
export function plainText(text: string, botUserId?: string): string {
  const withoutMention = botUserId ? text.replace(mentionOf(botUserId), '') : text;
  return withoutMention.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').trim();
}

function mentionOf(userId: string): RegExp {
  return new RegExp(`<@${userId}(\\|[^>]*)?>`, 'g');
}
