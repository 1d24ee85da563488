// A run's card as one Slack message: blocks, the fallback text notifications and screen readers use, and
// message metadata naming the run. The metadata is how a retried post finds the card it already made, so
// the same shape is written on every post and update, whoever sends it (the worker or the adapter).
import type { Card } from '../../domain/card';
import { cardBlocks, escapeMrkdwn } from './blocks';

const CARD_EVENT_TYPE = 'change_request_card';
const MESSAGE_EVENT_TYPE = 'change_request_message';
const ROOT_EVENT_TYPE = 'change_request_root';

/** What `conversations.replies` returns of a message, as far as finding our own posts goes. */
export interface ThreadMessage {
  ts?: string;
  metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
}

export function cardMessage(card: Card) {
  return {
    text: escapeMrkdwn(`${card.title}: ${card.status}`),
    blocks: cardBlocks(card),
    metadata: { event_type: CARD_EVENT_TYPE, event_payload: { run_id: card.runId, card_version: card.cardVersion } },
  };
}

export function isCardOf(runId: string): (message: ThreadMessage) => boolean {
  return (message) => message.metadata?.event_type === CARD_EVENT_TYPE && message.metadata.event_payload?.run_id === runId;
}

/** A plain message in a run's thread (a reminder, a notice), carrying the idempotency key it was posted under. */
export function plainMessage(runId: string, key: string, text: string) {
  return { text: escapeMrkdwn(text), metadata: { event_type: MESSAGE_EVENT_TYPE, event_payload: { run_id: runId, key } } };
}

export function isMessageWithKey(key: string): (message: ThreadMessage) => boolean {
  return (message) => message.metadata?.event_type === MESSAGE_EVENT_TYPE && message.metadata.event_payload?.key === key;
}

/** The root message `/change` posts, carrying the command's trigger id so a replayed command finds it. */
export function rootMessage(triggerKey: string, text: string) {
  return { text, metadata: { event_type: ROOT_EVENT_TYPE, event_payload: { trigger: triggerKey } } };
}

export function isRootOf(triggerKey: string): (message: ThreadMessage) => boolean {
  return (message) => message.metadata?.event_type === ROOT_EVENT_TYPE && message.metadata.event_payload?.trigger === triggerKey;
}
