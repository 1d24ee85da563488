// The Lark adapter: one HTTP endpoint that Lark sends both events (`im.message.receive_v1`) and card
// callbacks (`card.action.trigger`) to, as the open platform allows. Each request is authenticated
// (request-auth.ts) before anything in it is read. Events are answered at once, because Lark redelivers
// what is not answered within 3 s, and handled afterwards; callbacks are answered with what the person
// should see, within the same 3 s.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BotIdentity } from '@larksuiteoapi/node-sdk';
import { z } from 'zod';
import type { Catalog } from '../../domain/catalog-schema';
import type { ConversationRouter } from '../core/router';
import { answerCardAction, type CallbackAnswer } from './card-actions';
import { callLark, larkClient } from './lark-api';
import { onMessageEvent, type LarkInboundDeps } from './message-events';
import { RequestAuthenticator } from './request-auth';
import { patchCard, replyInThread, replyUuid, textMessage } from './thread-messages';

export interface LarkAdapterOptions {
  router: ConversationRouter;
  loadCatalog: () => Promise<Catalog>;
  appId: string;
  appSecret: string;
  verificationToken: string;
  encryptKey: string;
  /** HTTP port; 0 picks a free one. Default 8744. */
  port?: number;
  /** The open platform's address: Feishu's unless set (Lark: https://open.larksuite.com). */
  domain?: string;
}

export interface LarkAdapter {
  /** The request URL to give Lark for events and for callbacks. */
  url: string;
  close(): Promise<void>;
}

const EVENTS_PATH = '/lark/events';
const DEFAULT_PORT = 8744;
const MAX_BODY_BYTES = 1024 * 1024;
/** Lark shows the person an error when a callback is not answered within 3 s; this leaves room for the network. */
const CALLBACK_ANSWER_MS = 2500;

const EnvelopeSchema = z.object({
  schema: z.literal('2.0'),
  header: z.object({ event_id: z.string().min(1), event_type: z.string() }),
  event: z.unknown(),
});

export async function startLarkAdapter(options: LarkAdapterOptions): Promise<LarkAdapter> {
  const auth = new RequestAuthenticator({ verificationToken: options.verificationToken, encryptKey: options.encryptKey });
  const client = larkClient({ appId: options.appId, appSecret: options.appSecret, ...(options.domain ? { domain: options.domain } : {}) });
  const deps: LarkInboundDeps = {
    router: options.router,
    loadCatalog: options.loadCatalog,
    bot: once(async () => {
      // GET /open-apis/bot/v3/info answers { code, msg, bot: { open_id, app_name, … } } (not in the typed client).
      const answer = await callLark('bot.v3.info', () => client.request<{ code?: number; msg?: string; bot?: { open_id?: string; app_name?: string } }>({ method: 'GET', url: '/open-apis/bot/v3/info' }));
      if (!answer.bot?.open_id) throw new Error('Lark bot/v3/info answered without the bot\'s open_id: is the bot capability enabled for the app?');
      return { openId: answer.bot.open_id, name: answer.bot.app_name ?? 'bot' } satisfies BotIdentity;
    }),
    reply: async (to, person, text, uuidSeed) => {
      await replyInThread(client, to, textMessage(text, person), replyUuid(uuidSeed));
    },
    patchCard: (messageId, card) => patchCard(client, messageId, card),
  };
  const inFlight = new Set<Promise<void>>();
  const inBackground = (what: string, work: Promise<void>): void => {
    const tracked = work
      .catch((error: unknown) => console.error(`lark adapter: ${what} not handled: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };

  const server = http.createServer((request, response) => {
    const receivedAt = Date.now();
    void handle(request, receivedAt).then(
      ({ status, body }) => send(response, status, body),
      (error: unknown) => {
        console.error(`lark adapter: request failed: ${error instanceof Error ? error.message : String(error)}`);
        send(response, 500, { error: 'internal error' });
      },
    );
  });

  async function handle(request: http.IncomingMessage, receivedAt: number): Promise<{ status: number; body: unknown }> {
    if (request.method !== 'POST' || new URL(request.url ?? '/', 'http://localhost').pathname !== EVENTS_PATH) return { status: 404, body: { error: 'not found' } };
    const raw = await readBody(request);
    if (!raw) return { status: 413, body: { error: `bodies of at most ${MAX_BODY_BYTES} bytes` } };
    const verdict = auth.authenticate(raw, request.headers);
    switch (verdict.kind) {
      case 'refused':
        console.warn(`lark adapter: refused a request: ${verdict.why}`);
        return { status: verdict.status, body: { error: verdict.why } };
      case 'challenge':
        return { status: 200, body: { challenge: verdict.challenge } };
      case 'event':
        return { status: 200, body: await dispatch(verdict.body, receivedAt) };
    }
  }

  async function dispatch(body: Record<string, unknown>, receivedAt: number): Promise<CallbackAnswer | Record<string, never>> {
    const envelope = EnvelopeSchema.safeParse(body);
    // Anything else is acknowledged and dropped: an error would only make Lark deliver it again.
    if (!envelope.success) return {};
    const { header, event } = envelope.data;
    switch (header.event_type) {
      case 'im.message.receive_v1':
        inBackground('im.message.receive_v1', onMessageEvent(deps, event));
        return {};
      case 'card.action.trigger':
        try {
          return await answerCardAction(deps, header.event_id, event, receivedAt + CALLBACK_ANSWER_MS, (work) => inBackground('a late card action', work));
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          console.error(`lark adapter: card.action.trigger not handled: ${message}`);
          return { toast: { type: 'error', content: `That did not work: ${message}` } };
        }
      default:
        return {};
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${EVENTS_PATH}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive connections would hold the server open; requests being answered finish first.
      server.closeIdleConnections();
      await closed;
      await Promise.allSettled([...inFlight]);
    },
  };
}

/** The raw bytes (the signature covers them exactly), or null past the size limit. */
async function readBody(request: http.IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
}

/** Loads once; a failed load is tried again next time. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () => (pending ??= load().catch((error: unknown) => {
    pending = null;
    throw error;
  }));
}
