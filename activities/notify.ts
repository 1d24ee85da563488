// Messages to the conversation a run came from (reminders, for now). Each message has an idempotency key
// so a retried activity posts nothing twice.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ConversationRef } from '../shared/contracts';
import type { NotifyRequest } from './types';

export interface Notifier {
  post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void>;
}

/**
 * The outbox for conversations without a push channel (the CLI): one JSON line per message under
 * <dataDir>/outbox/<runId>.jsonl, which `cli show` prints.
 */
export class OutboxNotifier implements Notifier {
  constructor(private readonly dataDir: string) {}

  static file(dataDir: string, runId: string): string {
    return path.join(dataDir, 'outbox', `${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`);
  }

  async post(conversation: ConversationRef, key: string, text: string, runId: string): Promise<void> {
    const file = OutboxNotifier.file(this.dataDir, runId);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const existing = await readOutbox(this.dataDir, runId);
    if (existing.some((m) => m.key === key)) return;
    await fs.appendFile(file, `${JSON.stringify({ key, at: Date.now(), conversation, text })}\n`);
  }
}

export interface OutboxMessage {
  key: string;
  at: number;
  text: string;
}

export async function readOutbox(dataDir: string, runId: string): Promise<OutboxMessage[]> {
  const text = await fs.readFile(OutboxNotifier.file(dataDir, runId), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as OutboxMessage);
}

export async function notifyConversation(notifier: Notifier, request: NotifyRequest): Promise<void> {
  await notifier.post(request.conversation, request.key, request.text, request.runId);
}
