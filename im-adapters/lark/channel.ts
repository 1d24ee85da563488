// The worker's side of Lark: posts a run's card in its thread and keeps it updated in place, and posts plain
// messages (reminders). The card is posted once: the workflow keeps where it is (CardRef) and passes it back,
// and the first post's uuid, derived from the run, makes a retried first post one message.
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@larksuiteoapi/node-sdk';
import type { ConversationChannel } from '../../activities/notify';
import { retryingAfterRateLimits } from '../core/rate-limits';
import type { Card } from '../../domain/card';
import type { CardRef, ConversationRef } from '../../domain/contracts';
import { LarkApiError, larkClient, type LarkAppOptions } from './lark-api';
import { cardMessage, patchCard, replyInThread, replyUuid, textMessage } from './thread-messages';

export class LarkChannel implements ConversationChannel {
  private readonly client: Client;

  constructor(options: LarkAppOptions) {
    this.client = larkClient(options);
  }

  async showCard(conversation: ConversationRef, card: Card, ref: CardRef | null): Promise<CardRef> {
    return retryableOnRateLimit(async () => {
      if (ref) {
        await patchCard(this.client, ref.messageId, card);
        return { channel: ref.channel, messageId: ref.messageId, shows: card.cardVersion };
      }
      const messageId = await replyInThread(this.client, threadOf(conversation), cardMessage(card), replyUuid('card', card.runId));
      return { channel: conversation.channel, messageId, shows: card.cardVersion };
    });
  }

  async post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void> {
    await retryableOnRateLimit(() => replyInThread(this.client, threadOf(conversation), textMessage(text), replyUuid('post', runId, key)));
  }
}

/** Every Lark run lives in a thread: its root message, which replies go to. */
function threadOf(conversation: ConversationRef): string {
  if (!conversation.thread) throw ApplicationFailure.nonRetryable(`Lark conversation ${conversation.channel} has no thread to reply in`, 'LarkNoThread');
  return conversation.thread;
}

/** Lark's rate limits are retried by Temporal after the wait Lark asked for (core/rate-limits.ts). */
const retryableOnRateLimit = retryingAfterRateLimits((error) =>
  error instanceof LarkApiError && error.rateLimited ? { type: 'LarkRateLimited', message: error.message, retryAfterSeconds: error.retryAfterSeconds } : null,
);
