// What the service writes in a run's thread: replies (the card, reminders, answers to people) and updates of
// the card in place. Every reply carries a `uuid` derived from what it is: Lark sends at most one message per
// uuid within an hour, so a retried activity or a redelivered event does not post twice.
import { createHash } from 'node:crypto';
import type { Client } from '@larksuiteoapi/node-sdk';
import type { Card } from '../../domain/card';
import { larkCard } from './card';
import { callLark } from './lark-api';

export interface LarkMessage {
  msg_type: 'text' | 'interactive';
  /** The message content as Lark takes it: a JSON string. */
  content: string;
}

export function cardMessage(card: Card): LarkMessage {
  return { msg_type: 'interactive', content: JSON.stringify(larkCard(card)) };
}

/** A text message; `mention` (an open_id) puts an @mention of that person in front. */
export function textMessage(text: string, mention?: string): LarkMessage {
  return { msg_type: 'text', content: JSON.stringify({ text: mention ? `<at user_id="${mention}"></at> ${text}` : text }) };
}

/** A stable uuid for a reply (Lark takes at most 50 characters). */
export function replyUuid(...parts: string[]): string {
  return `cr-${createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 40)}`;
}

/**
 * Replies to `messageId` in its thread (a reply to a reply lands in the same thread) and returns the new
 * message's id. `reply_in_thread` makes the reply a thread of its own root rather than a quote in the chat.
 */
export async function replyInThread(client: Client, messageId: string, message: LarkMessage, uuid: string): Promise<string> {
  const answer = await callLark('im.message.reply', () => client.im.message.reply({ path: { message_id: messageId }, data: { ...message, reply_in_thread: true, uuid } }));
  const id = answer.data?.message_id;
  if (!id) throw new Error('Lark im.message.reply answered without the message_id of the reply');
  return id;
}

/** Redraws a card message the app sent (Lark allows it for 14 days). */
export async function patchCard(client: Client, messageId: string, card: Card): Promise<void> {
  await callLark('im.message.patch', () => client.im.message.patch({ path: { message_id: messageId }, data: { content: cardMessage(card).content } }));
}
