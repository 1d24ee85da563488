// The worker's side of Slack: posts a run's card in its thread and keeps it updated, and posts plain
// messages (reminders). Activities retry, and a retry may follow a post that Slack made but whose answer
// never arrived, so nothing is posted before looking for it in the thread: every post carries message
// metadata naming the run (cards) or the idempotency key (messages).
import { ApplicationFailure } from '@temporalio/activity';
import { webApi } from '@slack/bolt';
import type { ConversationChannel } from '../../activities/notify';
import { retryingAfterRateLimits } from '../core/rate-limits';
import type { Card } from '../../domain/card';
import type { CardRef, ConversationRef } from '../../domain/contracts';
import { cardMessage, isCardOf, isMessageWithKey, plainMessage, type ThreadMessage } from './card-message';
import { callSlack, SlackApiError } from './slack-errors';

export interface SlackChannelOptions {
  /** The bot token (xoxb-…). */
  token: string;
  /** Where the Web API is; Slack's own unless a test or proxy says otherwise. */
  slackApiUrl?: string;
}

/** Enough for a thread with many replies in few calls (the method allows up to 1000, Slack advises 200). */
const REPLIES_PAGE_SIZE = 200;

export class SlackChannel implements ConversationChannel {
  private readonly client: InstanceType<typeof webApi.WebClient>;

  constructor(options: SlackChannelOptions) {
    this.client = new webApi.WebClient(options.token, {
      ...(options.slackApiUrl ? { slackApiUrl: withTrailingSlash(options.slackApiUrl) } : {}),
      // Temporal retries the activity with backoff; the client's own retries (up to thirty minutes, waiting
      // out rate limits inside the call) would outlast the activity's timeout instead.
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logLevel: webApi.LogLevel.ERROR,
    });
  }

  async showCard(conversation: ConversationRef, card: Card, ref: CardRef | null): Promise<CardRef> {
    return retryableOnRateLimit(async () => {
      const message = cardMessage(card);
      const known = ref ? { channel: ref.channel, ts: ref.messageId } : null;
      const existing = known ?? (await this.findInThread(conversation, isCardOf(card.runId)));
      if (existing) {
        try {
          const updated = await callSlack('chat.update', () => this.client.chat.update({ channel: existing.channel, ts: existing.ts, ...message }));
          return { channel: updated.channel ?? existing.channel, messageId: updated.ts ?? existing.ts, shows: card.cardVersion };
        } catch (error) {
          // Someone deleted the card: post it again below rather than leave the thread without one.
          if (!(error instanceof SlackApiError && error.code === 'message_not_found')) throw error;
        }
      }
      const posted = await callSlack('chat.postMessage', () =>
        this.client.chat.postMessage({ channel: conversation.channel, thread_ts: threadOf(conversation), ...message }),
      );
      if (!posted.channel || !posted.ts) throw new Error('Slack chat.postMessage answered without the channel and ts of the card');
      return { channel: posted.channel, messageId: posted.ts, shows: card.cardVersion };
    });
  }

  async post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void> {
    await retryableOnRateLimit(async () => {
      if (await this.findInThread(conversation, isMessageWithKey(key))) return;
      await callSlack('chat.postMessage', () => this.client.chat.postMessage({ channel: conversation.channel, thread_ts: threadOf(conversation), ...plainMessage(runId, key, text) }));
    });
  }

  /** The first message in the run's thread that `matches`, with its metadata (which Slack returns only when asked). */
  private async findInThread(conversation: ConversationRef, matches: (message: ThreadMessage) => boolean): Promise<{ channel: string; ts: string } | null> {
    const thread = threadOf(conversation);
    let cursor: string | undefined;
    do {
      const page = await callSlack('conversations.replies', () =>
        this.client.conversations.replies({ channel: conversation.channel, ts: thread, include_all_metadata: true, limit: REPLIES_PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
      );
      const found = page.messages?.find(matches);
      if (found?.ts) return { channel: conversation.channel, ts: found.ts };
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor);
    return null;
  }
}

/** Every Slack run lives in a thread (the adapter starts it there); without one there is nowhere to look for the card. */
function threadOf(conversation: ConversationRef): string {
  if (!conversation.thread) throw ApplicationFailure.nonRetryable(`Slack conversation ${conversation.channel} has no thread to post in`, 'SlackNoThread');
  return conversation.thread;
}

/** Slack's rate limits are retried by Temporal after the wait Slack asked for (core/rate-limits.ts). */
const retryableOnRateLimit = retryingAfterRateLimits((error) =>
  error instanceof SlackApiError && error.code === 'ratelimited' ? { type: 'SlackRateLimited', message: error.message, retryAfterSeconds: error.retryAfterSeconds } : null,
);

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
