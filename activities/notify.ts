// What the service says in the conversation a run came from: its card (posted once, then updated in
// place) and plain messages such as reminders. Each platform has a channel; every post carries an
// idempotency key or a card reference, so a retried activity posts nothing twice.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Card } from '../domain/card';
import type { CardRef, ConversationRef } from '../domain/contracts';
import type { NotifyRequest, PublishCardRequest } from '../domain/activity-contracts';

export interface ConversationChannel {
  /** Posts a message in the run's thread; a `key` already posted is not posted again. */
  post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void>;
  /** Posts the run's card, or updates it in place when `ref` says where it is; null if cards are not posted. */
  showCard(conversation: ConversationRef, card: Card, ref: CardRef | null): Promise<CardRef | null>;
}

/** The channel for each platform; platforms without one (the CLI, the web chat) use the outbox. */
export class Conversations {
  constructor(private readonly outbox: ConversationChannel, private readonly channels: Partial<Record<ConversationRef['platform'], ConversationChannel>> = {}) {}

  for(conversation: ConversationRef): ConversationChannel {
    return this.channels[conversation.platform] ?? this.outbox;
  }
}

/**
 * For conversations without a push channel: one JSON line per message under <dataDir>/outbox/<runId>.jsonl,
 * which `cli show` prints and the web chat shows in the thread. Cards are not posted: both draw the run's
 * state themselves.
 */
export class OutboxChannel implements ConversationChannel {
  constructor(private readonly dataDir: string) {}

  static file(dataDir: string, runId: string): string {
    return path.join(dataDir, 'outbox', `${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`);
  }

  async post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void> {
    const file = OutboxChannel.file(this.dataDir, runId);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const existing = await readOutbox(this.dataDir, runId);
    if (existing.some((m) => m.key === key)) return;
    await fs.appendFile(file, `${JSON.stringify({ key, at: Date.now(), conversation, text })}\n`);
  }

  async showCard(): Promise<CardRef | null> {
    return null;
  }
}

export interface OutboxMessage {
  key: string;
  at: number;
  text: string;
}

export async function readOutbox(dataDir: string, runId: string): Promise<OutboxMessage[]> {
  const text = await fs.readFile(OutboxChannel.file(dataDir, runId), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as OutboxMessage);
}

export async function notifyConversation(conversations: Conversations, request: NotifyRequest): Promise<void> {
  await conversations.for(request.conversation).post(request.conversation, request.key, request.text, request.runId);
}

export async function publishCard(conversations: Conversations, request: PublishCardRequest): Promise<CardRef | null> {
  return conversations.for(request.conversation).showCard(request.conversation, request.card, request.ref);
}
