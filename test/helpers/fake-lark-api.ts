// Lark, as far as the adapter and the channel meet it, on local HTTP. Two directions:
// - its open API (the SDK Client's `domain` points here): the tenant access token, bot info, replying to a
//   message and patching a card, answering with the shapes of Lark's documented responses
//   (test/fixtures/lark/api.*.json), keeping the messages so threads can be read back, de-duplicating
//   replies by `uuid` for an hour as Lark does, and recording every call;
// - its deliveries to the app: events and card callbacks built from the recorded payloads in
//   test/fixtures/lark/, encrypted (AES-256-CBC, key = SHA-256 of the Encrypt Key, IV first) and signed
//   (X-Lark-Signature = sha256(timestamp + nonce + Encrypt Key + body)) the way Lark sends them.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'lark');
const UUID_TTL_MS = 60 * 60_000;

/** The tenant the fixtures describe. */
export const TENANT = {
  appId: 'cli_a5cr00demo00001',
  tenantKey: '2ca1d211f64f6438',
  botOpenId: 'ou_crbot000000000000000000000001',
  botName: 'Change requests',
  chat: 'oc_shop0000000000000000000000001',
} as const;

function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, any>;
}

export interface LarkMessage {
  message_id: string;
  root_id?: string;
  parent_id?: string;
  thread_id?: string;
  chat_id: string;
  chat_type: 'group' | 'p2p';
  msg_type: string;
  /** As Lark keeps it: a JSON string (`{"text": …}` or the card). */
  content: string;
  sender: { id: string; id_type: 'open_id' | 'app_id'; sender_type: 'user' | 'app' };
  mentions?: { key: string; id: { open_id: string }; name: string; tenant_key: string }[];
  create_time: string;
}

export interface RecordedCall {
  /** `tenant_access_token`, `bot.info`, `im.message.reply` or `im.message.patch`. */
  method: string;
  /** The message the call names in its path (reply, patch). */
  messageId?: string;
  body: Record<string, any>;
}

export type InjectedFailure = { status: number; fixture: string; headers?: Record<string, string> };

export interface FakeLarkApi {
  /** What the SDK Client's `domain` takes. */
  url: string;
  calls: RecordedCall[];
  callsTo(method: string): RecordedCall[];
  message(id: string): LarkMessage | undefined;
  /** The root and the replies of a thread, oldest first. */
  thread(rootId: string): LarkMessage[];
  /**
   * A message a person writes (Lark keeps it before it tells the app), in the tenant's group chat unless
   * `direct` (a chat with the bot); `@bot` in the text becomes a mention of the bot.
   */
  personWrites(openId: string, text: string, where?: { root?: string; direct?: boolean }): LarkMessage;
  /** A file a person sends in a thread (message type `file`); the message resource download serves it. */
  personSendsFile(openId: string, file: { name: string; mimetype: string; content: string | Buffer }, where: { root: string }): LarkMessage;
  /** A doc in the tenant: its title and plain text; one not shared with the app is refused (code 1770032). */
  addDoc(documentId: string, doc: { title: string; content: string; sharedWithApp?: boolean }): void;
  /** The next call to `method` fails this way. */
  failNext(method: string, failure: InjectedFailure): void;
  /** What Lark does with a card in a callback answer: the card message shows it from then on. */
  showCallbackCard(messageId: string, card: unknown): void;
  close(): Promise<void>;
}

export async function startFakeLarkApi(options: { appId: string; appSecret: string }): Promise<FakeLarkApi> {
  const calls: RecordedCall[] = [];
  const messages: LarkMessage[] = [];
  const tokens = new Set<string>();
  const replyByUuid = new Map<string, { at: number; message: LarkMessage }>();
  const failures = new Map<string, InjectedFailure>();
  const files = new Map<string, { name: string; mimetype: string; content: string | Buffer }>();
  const docs = new Map<string, { title: string; content: string; sharedWithApp?: boolean }>();
  let clock = Date.now();
  const now = () => String(++clock);

  const handle = (method: string, messageId: string | undefined, body: Record<string, any>): { status?: number; headers?: Record<string, string>; body: unknown } => {
    const failure = failures.get(method);
    if (failure) {
      failures.delete(method);
      return { status: failure.status, body: fixture(failure.fixture), ...(failure.headers ? { headers: failure.headers } : {}) };
    }
    switch (method) {
      case 'bot.info': {
        const answer = fixture('api.bot.v3.info');
        return { body: { ...answer, bot: { ...answer.bot, app_name: TENANT.botName, open_id: TENANT.botOpenId } } };
      }
      case 'im.message.reply': {
        const parent = messages.find((m) => m.message_id === messageId);
        if (!parent) return { status: 400, body: fixture('api.error.invalid_message_id') };
        const earlier = body.uuid ? replyByUuid.get(body.uuid) : undefined;
        if (earlier && Date.now() - earlier.at < UUID_TTL_MS) return { body: replyAnswer(earlier.message) };
        const root = parent.root_id ?? parent.message_id;
        const message: LarkMessage = {
          message_id: newId('om_'),
          root_id: root,
          parent_id: parent.message_id,
          ...(body.reply_in_thread ? { thread_id: parent.thread_id ?? threadIdOf(root) } : {}),
          chat_id: parent.chat_id,
          chat_type: parent.chat_type,
          msg_type: body.msg_type,
          content: body.content,
          sender: { id: options.appId, id_type: 'app_id', sender_type: 'app' },
          create_time: now(),
        };
        messages.push(message);
        if (body.uuid) replyByUuid.set(body.uuid, { at: Date.now(), message });
        return { body: replyAnswer(message) };
      }
      case 'im.message.patch': {
        const message = messages.find((m) => m.message_id === messageId);
        if (!message || message.sender.id !== options.appId || message.msg_type !== 'interactive') return { status: 400, body: fixture('api.error.invalid_message_id') };
        message.content = body.content;
        return { body: fixture('api.im.v1.message.patch') };
      }
      case 'docx.document.get':
      case 'docx.document.raw_content': {
        const doc = docs.get(messageId ?? '');
        if (!doc) return { status: 404, body: { code: 1770002, msg: 'not found', data: {} } };
        if (doc.sharedWithApp === false) return { status: 403, body: fixture('api.error.docx_forbidden') };
        if (method === 'docx.document.raw_content') return { body: { ...fixture('api.docx.v1.document.raw_content'), data: { content: doc.content } } };
        const answer = fixture('api.docx.v1.document.get');
        return { body: { ...answer, data: { document: { ...answer.data.document, document_id: messageId, title: doc.title } } } };
      }
      default:
        return { status: 404, body: { code: 404, msg: 'page not found' } };
    }
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = raw ? (JSON.parse(raw) as Record<string, any>) : {};
      const route = routeOf(request.method ?? 'GET', new URL(request.url ?? '/', 'http://localhost').pathname);
      let answer: { status?: number; headers?: Record<string, string>; body: unknown };
      if (!route) {
        answer = { status: 404, body: { code: 404, msg: 'page not found' } };
      } else if (route.method === 'tenant_access_token') {
        calls.push({ method: route.method, body: { app_id: body.app_id } });
        if (body.app_id !== options.appId || body.app_secret !== options.appSecret) {
          answer = { status: 400, body: fixture('api.error.app_secret_invalid') };
        } else {
          const token = `t-${randomBytes(20).toString('hex')}`;
          tokens.add(token);
          answer = { body: { ...fixture('api.auth.v3.tenant_access_token.internal'), tenant_access_token: token } };
        }
      } else if (!tokens.has((request.headers.authorization ?? '').replace(/^Bearer /, ''))) {
        answer = { status: 400, body: fixture('api.error.invalid_access_token') };
      } else {
        calls.push({ method: route.method, ...(route.messageId ? { messageId: route.messageId } : {}), body });
        if (route.method === 'im.message.resource') {
          // The file itself (binary), as Lark answers a resource download; a JSON error otherwise.
          const file = files.get(`${route.messageId}/${route.fileKey}`);
          if (file) {
            response.writeHead(200, { 'content-type': file.mimetype, 'content-disposition': `attachment; filename="${file.name}"` });
            response.end(file.content);
            return;
          }
          answer = { status: 400, body: { code: 234003, msg: 'File not in msg.' } };
        } else {
          answer = handle(route.method, route.messageId, body);
        }
      }
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json; charset=utf-8', ...answer.headers });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    callsTo: (method) => calls.filter((c) => c.method === method),
    message: (id) => messages.find((m) => m.message_id === id),
    thread: (rootId) => messages.filter((m) => m.message_id === rootId || m.root_id === rootId),
    personWrites(openId, text, where = {}) {
      const root = where.root ? messages.find((m) => m.message_id === where.root) : undefined;
      const mentionsBot = text.includes('@bot');
      const message: LarkMessage = {
        message_id: newId('om_'),
        ...(root ? { root_id: root.message_id, parent_id: root.message_id, thread_id: root.thread_id ?? threadIdOf(root.message_id) } : {}),
        chat_id: root?.chat_id ?? (where.direct ? `oc_dm${createHash('sha256').update(openId).digest('hex').slice(0, 28)}` : TENANT.chat),
        chat_type: root?.chat_type ?? (where.direct ? 'p2p' : 'group'),
        msg_type: 'text',
        content: JSON.stringify({ text: text.replace('@bot', '@_user_1') }),
        sender: { id: openId, id_type: 'open_id', sender_type: 'user' },
        ...(mentionsBot ? { mentions: [{ key: '@_user_1', id: { open_id: TENANT.botOpenId }, name: TENANT.botName, tenant_key: TENANT.tenantKey }] } : {}),
        create_time: now(),
      };
      messages.push(message);
      return message;
    },
    personSendsFile(openId, file, where) {
      const root = messages.find((m) => m.message_id === where.root);
      if (!root) throw new Error(`no message ${where.root} to reply to`);
      const fileKey = `file_v2_${randomBytes(16).toString('hex')}`;
      const message: LarkMessage = {
        message_id: newId('om_'),
        root_id: root.message_id,
        parent_id: root.message_id,
        thread_id: root.thread_id ?? threadIdOf(root.message_id),
        chat_id: root.chat_id,
        chat_type: root.chat_type,
        msg_type: 'file',
        content: JSON.stringify({ file_key: fileKey, file_name: file.name }),
        sender: { id: openId, id_type: 'open_id', sender_type: 'user' },
        create_time: now(),
      };
      messages.push(message);
      files.set(`${message.message_id}/${fileKey}`, file);
      return message;
    },
    addDoc: (documentId, doc) => void docs.set(documentId, doc),
    failNext: (method, failure) => void failures.set(method, failure),
    showCallbackCard(messageId, card) {
      const message = messages.find((m) => m.message_id === messageId);
      if (!message) throw new Error(`no message ${messageId} to show a callback card in`);
      message.content = JSON.stringify(card);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function routeOf(method: string, pathname: string): { method: string; messageId?: string; fileKey?: string } | null {
  if (method === 'POST' && pathname === '/open-apis/auth/v3/tenant_access_token/internal') return { method: 'tenant_access_token' };
  if (method === 'GET' && pathname === '/open-apis/bot/v3/info') return { method: 'bot.info' };
  const reply = /^\/open-apis\/im\/v1\/messages\/([^/]+)\/reply$/.exec(pathname);
  if (method === 'POST' && reply) return { method: 'im.message.reply', messageId: reply[1]! };
  const resource = /^\/open-apis\/im\/v1\/messages\/([^/]+)\/resources\/([^/]+)$/.exec(pathname);
  if (method === 'GET' && resource) return { method: 'im.message.resource', messageId: resource[1]!, fileKey: resource[2]! };
  // The doc's id rides in `messageId` (the id the call names in its path).
  const doc = /^\/open-apis\/docx\/v1\/documents\/([^/]+)(\/raw_content)?$/.exec(pathname);
  if (method === 'GET' && doc) return { method: doc[2] ? 'docx.document.raw_content' : 'docx.document.get', messageId: doc[1]! };
  const patch = /^\/open-apis\/im\/v1\/messages\/([^/]+)$/.exec(pathname);
  if (method === 'PATCH' && patch) return { method: 'im.message.patch', messageId: patch[1]! };
  return null;
}

function replyAnswer(message: LarkMessage): Record<string, any> {
  const answer = fixture('api.im.v1.message.reply');
  const { content, sender, mentions: _mentions, ...fields } = message;
  return { ...answer, data: { ...answer.data, ...fields, update_time: message.create_time, sender: { ...answer.data.sender, id: sender.id }, body: { content }, mentions: [] } };
}

function newId(prefix: string): string {
  return `${prefix}${randomBytes(16).toString('hex')}`;
}

function threadIdOf(rootId: string): string {
  return `omt_${createHash('sha256').update(rootId).digest('hex').slice(0, 12)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Deliveries to the app

export interface DeliveryOptions {
  encryptKey: string;
  /** Send the body in clear instead of as `{"encrypt": …}`. */
  plain?: boolean;
  /** Seconds since the epoch written in X-Lark-Request-Timestamp (default: now). */
  timestamp?: number;
  /** Replaces the computed signature (to send a bad one); null sends no signature headers at all. */
  signature?: string | null;
}

export interface Delivered {
  status: number;
  json: any;
  /** How long the app took to answer. */
  ms: number;
}

/** POSTs a body to the app the way Lark does: encrypted with the Encrypt Key and signed. */
export async function deliver(url: string, body: unknown, options: DeliveryOptions): Promise<Delivered> {
  const raw = JSON.stringify(options.plain ? body : { encrypt: encrypt(JSON.stringify(body), options.encryptKey) });
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = randomBytes(8).toString('hex');
  const signature = options.signature === undefined ? createHash('sha256').update(timestamp + nonce + options.encryptKey + raw).digest('hex') : options.signature;
  const started = Date.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === null ? {} : { 'x-lark-request-timestamp': timestamp, 'x-lark-request-nonce': nonce, 'x-lark-signature': signature }),
    },
    body: raw,
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : null, ms: Date.now() - started };
}

/** Lark's event encryption: AES-256-CBC with PKCS#7 padding, key = SHA-256(Encrypt Key), base64(IV + ciphertext). */
function encrypt(plain: string, encryptKey: string): string {
  const key = createHash('sha256').update(encryptKey).digest();
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final()]).toString('base64');
}

/** The challenge Lark sends when the request URL is saved (fixture event.url_verification). */
export function urlVerification(verificationToken: string, challenge: string): Record<string, any> {
  return { ...fixture('event.url_verification'), token: verificationToken, challenge };
}

/** `im.message.receive_v1` for a message (fixtures event.im.message.receive_v1[.thread_reply]). */
export function messageEvent(message: LarkMessage, eventId: string, verificationToken: string): Record<string, any> {
  const envelope = fixture(message.root_id ? 'event.im.message.receive_v1.thread_reply' : 'event.im.message.receive_v1');
  const { sender, mentions, ...fields } = message;
  const { root_id: _root, parent_id: _parent, thread_id: _thread, mentions: _mentions, ...base } = envelope.event.message;
  return {
    ...envelope,
    header: { ...envelope.header, event_id: eventId, create_time: message.create_time, token: verificationToken, app_id: TENANT.appId, tenant_key: TENANT.tenantKey },
    event: {
      sender: { ...envelope.event.sender, sender_id: { ...envelope.event.sender.sender_id, open_id: sender.id }, tenant_key: TENANT.tenantKey },
      message: { ...base, ...fields, message_type: message.msg_type, update_time: message.create_time, ...(mentions ? { mentions } : {}) },
    },
  };
}

export interface CardButton {
  text: { content: string };
  type?: string;
  value: Record<string, any>;
}

/** Every button on a card message (JSON 1.0: beside a div as `extra`, and in `action` elements). */
export function buttonsOf(message: Pick<LarkMessage, 'content'>): CardButton[] {
  const card = JSON.parse(message.content) as { elements?: any[] };
  return (card.elements ?? []).flatMap((e) => (e.tag === 'action' ? e.actions : e.extra ? [e.extra] : [])).filter((b) => b.tag === 'button');
}

/**
 * `card.action.trigger` (fixture callback.card.action.trigger) for a press of a button on a card message as
 * the person sees it (the button whose text starts with `pick`, or that `pick` selects): the action carries
 * that button's value.
 */
export function cardAction(message: LarkMessage, pick: string | ((button: CardButton) => boolean), operatorOpenId: string, eventId: string, verificationToken: string): Record<string, any> {
  const button = buttonsOf(message).find(typeof pick === 'string' ? (b) => b.text.content.startsWith(pick) : pick);
  if (!button) throw new Error(`no such button on ${message.message_id}: ${buttonsOf(message).map((b) => b.text.content).join(', ')}`);
  const callback = fixture('callback.card.action.trigger');
  return {
    ...callback,
    header: { ...callback.header, event_id: eventId, token: verificationToken, app_id: TENANT.appId, tenant_key: TENANT.tenantKey, create_time: String(Date.now() * 1000) },
    event: {
      ...callback.event,
      operator: { ...callback.event.operator, open_id: operatorOpenId, tenant_key: TENANT.tenantKey },
      action: { ...callback.event.action, value: button.value, tag: 'button' },
      context: { ...callback.event.context, open_message_id: message.message_id, open_chat_id: message.chat_id },
    },
  };
}
