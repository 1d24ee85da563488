// Slack, as far as the adapter and the channel meet it, on local HTTP. Two directions:
// - its Web API (`/api/<method>`): the slice the service calls, answering with the shapes of Slack's
//   documented responses (test/fixtures/slack/api.*.json), keeping the messages it was asked to post so
//   conversations.replies returns them with their metadata, and recording every call;
// - its deliveries to the app: events, interactions and slash commands built from the recorded payloads in
//   test/fixtures/slack/, signed the way Slack signs them (v0 HMAC-SHA256 over `v0:<timestamp>:<body>`).
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'slack');

/** The workspace the fixtures describe. */
export const WORKSPACE = { teamId: 'T0DEMO0001', appId: 'A0CRAPP001', botUserId: 'U0CRBOT001', botId: 'B0CRBOT001', channel: 'C0SHOP0001' } as const;

export function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, any>;
}

export interface SlackMessage {
  type: 'message';
  channel: string;
  ts: string;
  thread_ts?: string;
  text: string;
  user?: string;
  bot_id?: string;
  blocks?: any[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  /** Set for a message with files (`file_share`), as the event carries them. */
  subtype?: 'file_share';
  files?: Record<string, any>[];
}

/** A file a person attaches: its content is served to the bot token at its private download address. */
export interface SharedFile {
  name: string;
  mimetype: string;
  content: string | Buffer;
  /** Where files.info says it downloads (default: this fake's /files-pri/ address). */
  downloadUrl?: string;
}

export interface RecordedCall {
  method: string;
  /** The arguments as Slack received them, JSON fields parsed, the token left out. */
  args: Record<string, any>;
}

export type InjectedFailure = { status: 429; retryAfterSeconds: number } | { error: string };

export interface FakeSlackApi {
  /** http://127.0.0.1:PORT/api/ — what WebClient's `slackApiUrl` takes. */
  url: string;
  botToken: string;
  calls: RecordedCall[];
  callsTo(method: string): RecordedCall[];
  /** Modals opened with views.open, with the ids Slack gave them. */
  openedViews: { id: string; triggerId: string; view: Record<string, any> }[];
  /** A message as it is now (after updates). */
  message(channel: string, ts: string): SlackMessage | undefined;
  /** Every message in a channel, threads included, oldest first. */
  messages(channel: string): SlackMessage[];
  /** The root and replies of a thread, oldest first. */
  thread(channel: string, threadTs: string): SlackMessage[];
  /** A message a person writes: Slack keeps it (replies include it) before it tells the app. */
  personWrites(user: string, text: string, options?: { channel?: string; thread?: string }): SlackMessage;
  /** A message with a file a person attaches in a thread (subtype file_share); files.info and the download serve it. */
  personShares(user: string, text: string, file: SharedFile, where: { channel?: string; thread: string }): SlackMessage;
  /** Requests for files' private download addresses, with the authorization they carried. */
  downloads: { path: string; authorization: string | undefined }[];
  /** The next call to `method` fails this way. */
  failNext(method: string, failure: InjectedFailure): void;
  close(): Promise<void>;
}

export async function startFakeSlackApi(options: { botToken: string }): Promise<FakeSlackApi> {
  const calls: RecordedCall[] = [];
  const messages: SlackMessage[] = [];
  const failures = new Map<string, InjectedFailure>();
  const openedViews: FakeSlackApi['openedViews'] = [];
  const clock = timestamps();
  const files = new Map<string, SharedFile & { id: string; user: string }>();
  const downloads: FakeSlackApi['downloads'] = [];
  let origin = '';
  const fileObject = (file: SharedFile & { id: string; user: string }): Record<string, any> => {
    const base = fixture('api.files.info').file;
    const download = file.downloadUrl ?? `${origin}/files-pri/${WORKSPACE.teamId}-${file.id}/download/${encodeURIComponent(file.name)}`;
    return {
      ...base,
      id: file.id,
      name: file.name,
      title: file.name,
      mimetype: file.mimetype,
      filetype: file.name.split('.').pop() ?? 'text',
      pretty_type: file.mimetype,
      user: file.user,
      size: Buffer.byteLength(file.content),
      url_private: download.replace('/download/', '/'),
      url_private_download: download,
      permalink: `https://demo.slack.com/files/${file.user}/${file.id}/${encodeURIComponent(file.name)}`,
    };
  };

  const handle = (method: string, args: Record<string, any>): { status?: number; headers?: Record<string, string>; body: unknown } => {
    const failure = failures.get(method);
    if (failure) {
      failures.delete(method);
      if ('status' in failure) return { status: 429, headers: { 'retry-after': String(failure.retryAfterSeconds) }, body: { ok: false, error: 'ratelimited' } };
      return { body: { ok: false, error: failure.error } };
    }
    switch (method) {
      case 'auth.test':
        return { body: fixture('api.auth.test') };
      case 'chat.postMessage': {
        if (!args.channel) return error('channel_not_found');
        const message: SlackMessage = {
          type: 'message',
          channel: args.channel,
          ts: clock(),
          ...(args.thread_ts ? { thread_ts: args.thread_ts } : {}),
          text: args.text ?? '',
          user: WORKSPACE.botUserId,
          bot_id: WORKSPACE.botId,
          ...(args.blocks ? { blocks: args.blocks } : {}),
          ...(args.metadata ? { metadata: args.metadata } : {}),
        };
        messages.push(message);
        const body = fixture('api.chat.postMessage');
        return { body: { ...body, channel: message.channel, ts: message.ts, message: { ...body.message, text: message.text, ts: message.ts, ...(message.blocks ? { blocks: message.blocks } : {}) } } };
      }
      case 'chat.update': {
        const message = messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!message) return error('message_not_found');
        if (message.bot_id !== WORKSPACE.botId) return error('cant_update_message');
        if (args.text !== undefined) message.text = args.text;
        if (args.blocks !== undefined) message.blocks = args.blocks;
        if (args.metadata !== undefined) message.metadata = args.metadata;
        const body = fixture('api.chat.update');
        return { body: { ...body, channel: message.channel, ts: message.ts, text: message.text, message: { ...body.message, text: message.text, blocks: message.blocks } } };
      }
      case 'chat.postEphemeral':
        if (!args.channel || !args.user) return error('channel_not_found');
        return { body: { ...fixture('api.chat.postEphemeral'), message_ts: clock() } };
      case 'conversations.replies': {
        const thread = threadOf(messages, args.channel, args.ts);
        if (!thread.length) return error('thread_not_found');
        const withMetadata = args.include_all_metadata === true || args.include_all_metadata === 'true';
        const from = args.cursor ? Number(Buffer.from(String(args.cursor), 'base64').toString()) : 0;
        const limit = Number(args.limit ?? 1000);
        const page = thread.slice(from, from + limit).map(({ metadata, ...rest }) => (withMetadata && metadata ? { ...rest, metadata } : rest));
        const next = from + limit < thread.length ? Buffer.from(String(from + limit)).toString('base64') : '';
        return { body: { ...fixture('api.conversations.replies'), messages: page, has_more: next !== '', response_metadata: { next_cursor: next } } };
      }
      case 'conversations.history': {
        // Root messages of the channel, newest first, as Slack lists them; `oldest` and `limit` honoured.
        if (!args.channel) return error('channel_not_found');
        const withMetadata = args.include_all_metadata === true || args.include_all_metadata === 'true';
        const roots = messages
          .filter((m) => m.channel === args.channel && (!m.thread_ts || m.thread_ts === m.ts) && (!args.oldest || m.ts > String(args.oldest)))
          .sort((a, b) => b.ts.localeCompare(a.ts));
        const from = args.cursor ? Number(Buffer.from(String(args.cursor), 'base64').toString()) : 0;
        const limit = Number(args.limit ?? 100);
        const page = roots.slice(from, from + limit).map(({ metadata, ...rest }) => (withMetadata && metadata ? { ...rest, metadata } : rest));
        const next = from + limit < roots.length ? Buffer.from(String(from + limit)).toString('base64') : '';
        return { body: { ...fixture('api.conversations.history'), messages: page, has_more: next !== '', response_metadata: { next_cursor: next } } };
      }
      case 'views.open': {
        if (!args.trigger_id) return error('invalid_trigger_id');
        const id = `V0CRVIEW${String(openedViews.length + 1).padStart(2, '0')}`;
        openedViews.push({ id, triggerId: args.trigger_id, view: args.view });
        const body = fixture('api.views.open');
        return { body: { ...body, view: { ...body.view, ...args.view, id, root_view_id: id, hash: `${clock()}.fake`, state: { values: {} } } } };
      }
      case 'files.info': {
        const file = files.get(String(args.file ?? ''));
        if (!file) return error('file_not_found');
        return { body: { ...fixture('api.files.info'), file: fileObject(file) } };
      }
      default:
        return error('unknown_method');
    }
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if ((request.url ?? '').startsWith('/files-pri/')) return serveFile(request, response);
      const method = (request.url ?? '').replace(/^\/api\//, '').split('?')[0]!;
      const raw = Buffer.concat(chunks).toString('utf8');
      const args = parseArgs(raw, request.headers['content-type'] ?? '');
      const answer =
        request.headers.authorization !== `Bearer ${options.botToken}` && args.token !== options.botToken
          ? { body: { ok: false, error: 'invalid_auth' } }
          : (calls.push({ method, args: withoutToken(args) }), handle(method, args));
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json; charset=utf-8', ...answer.headers });
      response.end(JSON.stringify(answer.body));
    });
  });
  /** Slack's private file host: the file to the bot token, a sign-in page to anyone else. */
  function serveFile(request: http.IncomingMessage, response: http.ServerResponse): void {
    downloads.push({ path: request.url ?? '', authorization: request.headers.authorization });
    const id = /^\/files-pri\/[A-Z0-9]+-(F[A-Z0-9]+)\//.exec(request.url ?? '')?.[1];
    const file = id ? files.get(id) : undefined;
    if (request.headers.authorization !== `Bearer ${options.botToken}`) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end('<html><body>Sign in to Slack</body></html>');
      return;
    }
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': file.mimetype, 'content-disposition': `attachment; filename="${file.name}"` });
    response.end(file.content);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: `http://127.0.0.1:${port}/api/`,
    botToken: options.botToken,
    calls,
    callsTo: (method) => calls.filter((c) => c.method === method),
    openedViews,
    message: (channel, ts) => messages.find((m) => m.channel === channel && m.ts === ts),
    messages: (channel) => messages.filter((m) => m.channel === channel),
    thread: (channel, threadTs) => threadOf(messages, channel, threadTs),
    personWrites(user, text, where = {}) {
      const message: SlackMessage = { type: 'message', channel: where.channel ?? WORKSPACE.channel, ts: clock(), ...(where.thread ? { thread_ts: where.thread } : {}), text, user };
      messages.push(message);
      return message;
    },
    personShares(user, text, file, where) {
      const id = `F0${String(files.size + 1).padStart(8, '0')}`;
      const shared = { ...file, id, user };
      files.set(id, shared);
      const message: SlackMessage = { type: 'message', subtype: 'file_share', channel: where.channel ?? WORKSPACE.channel, ts: clock(), thread_ts: where.thread, text, user, files: [fileObject(shared)] };
      messages.push(message);
      return message;
    },
    downloads,
    failNext: (method, failure) => void failures.set(method, failure),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function error(code: string) {
  return { body: { ...fixture('api.error'), error: code } };
}

function threadOf(messages: SlackMessage[], channel: string, threadTs: string): SlackMessage[] {
  const root = messages.find((m) => m.channel === channel && m.ts === threadTs);
  if (!root) return [];
  return [root, ...messages.filter((m) => m.channel === channel && m.thread_ts === threadTs && m.ts !== threadTs)].sort((a, b) => a.ts.localeCompare(b.ts));
}

/** Slack message timestamps: seconds, a dot, six digits, unique and increasing within a channel. */
function timestamps(): () => string {
  const seconds = Math.floor(Date.now() / 1000);
  let n = 0;
  return () => `${seconds}.${String(++n).padStart(6, '0')}`;
}

/** WebClient sends form fields, objects among them as JSON strings; JSON bodies are taken as they are. */
function parseArgs(raw: string, contentType: string): Record<string, any> {
  if (contentType.includes('application/json')) return raw ? (JSON.parse(raw) as Record<string, any>) : {};
  const args: Record<string, any> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    args[key] = /^[[{]/.test(value) ? safeJson(value) : value;
  }
  return args;
}

function safeJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function withoutToken(args: Record<string, any>): Record<string, any> {
  const { token: _token, ...rest } = args;
  return rest;
}

// ---------------------------------------------------------------------------------------------------------
// Deliveries to the app

export interface DeliveryOptions {
  signingSecret: string;
  /** Seconds since the epoch written in X-Slack-Request-Timestamp (default: now). */
  timestamp?: number;
  /** Replaces the computed signature (to send a bad one). */
  signature?: string;
  /** Slack's redelivery headers. */
  retry?: { num: number; reason: string };
}

export interface Delivered {
  status: number;
  body: string;
  /** How long the app took to answer. */
  ms: number;
}

/** POSTs a body to the app the way Slack does: JSON for events, `payload=` for interactions, form fields for commands. */
export async function deliver(url: string, body: { json: unknown } | { payload: unknown } | { form: Record<string, string> }, options: DeliveryOptions): Promise<Delivered> {
  const [raw, contentType] =
    'json' in body
      ? [JSON.stringify(body.json), 'application/json']
      : 'payload' in body
        ? [new URLSearchParams({ payload: JSON.stringify(body.payload) }).toString(), 'application/x-www-form-urlencoded']
        : [new URLSearchParams(body.form).toString(), 'application/x-www-form-urlencoded'];
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = options.signature ?? `v0=${createHmac('sha256', options.signingSecret).update(`v0:${timestamp}:${raw}`).digest('hex')}`;
  const started = Date.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature,
      ...(options.retry ? { 'x-slack-retry-num': String(options.retry.num), 'x-slack-retry-reason': options.retry.reason } : {}),
    },
    body: raw,
  });
  return { status: response.status, body: await response.text(), ms: Date.now() - started };
}

/** The Events API envelope of an `app_mention` (fixture event.app_mention), for this message. */
export function appMentionEvent(message: SlackMessage, eventId: string): Record<string, any> {
  const envelope = fixture('event.app_mention');
  const event = { ...envelope.event, user: message.user, text: message.text, ts: message.ts, channel: message.channel, event_ts: message.ts, ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}) };
  return { ...envelope, event, event_id: eventId, event_time: Math.floor(Number(message.ts)) };
}

/** The Events API envelope of a `message` in a thread (fixture event.message.thread_reply). */
export function threadReplyEvent(message: SlackMessage, eventId: string, parentUser: string): Record<string, any> {
  const envelope = fixture(message.files ? 'event.message.file_share' : 'event.message.thread_reply');
  const event = { ...envelope.event, user: message.user, text: message.text, ts: message.ts, event_ts: message.ts, thread_ts: message.thread_ts, parent_user_id: parentUser, channel: message.channel, ...(message.files ? { files: message.files } : {}) };
  return { ...envelope, event, event_id: eventId, event_time: Math.floor(Number(message.ts)) };
}

/**
 * A `block_actions` payload (fixture interaction.block_actions) for a click on the button `actionId` of a
 * message as Slack holds it now: the action carries that button's text, style and value.
 */
export function buttonClick(message: SlackMessage, actionId: string, user: { id: string; name: string }, actionTs: string): Record<string, any> {
  const button = buttonsOf(message).find((b) => b.action_id === actionId);
  if (!button) throw new Error(`no button ${actionId} on message ${message.ts}: ${buttonsOf(message).map((b) => b.action_id).join(', ')}`);
  const payload = fixture('interaction.block_actions');
  return {
    ...payload,
    user: { ...payload.user, id: user.id, username: user.name, name: user.name },
    container: { ...payload.container, message_ts: message.ts, channel_id: message.channel, thread_ts: message.thread_ts },
    channel: { ...payload.channel, id: message.channel },
    message: { ...payload.message, text: message.text, ts: message.ts, thread_ts: message.thread_ts, blocks: message.blocks ?? [] },
    actions: [{ ...payload.actions[0], action_id: button.action_id, text: button.text, value: button.value, style: button.style, action_ts: actionTs }],
  };
}

/** Every button on a message: in actions blocks and as section accessories. */
export function buttonsOf(message: SlackMessage): any[] {
  return (message.blocks ?? []).flatMap((block) => (block.type === 'actions' ? block.elements : block.accessory ? [block.accessory] : [])).filter((e) => e.type === 'button');
}

/** A `view_submission` payload (fixture interaction.view_submission) for a modal the app opened, with one input filled. */
export function viewSubmission(openedView: Record<string, any>, viewId: string, user: { id: string; name: string }, values: Record<string, Record<string, string>>): Record<string, any> {
  const payload = fixture('interaction.view_submission');
  const state = Object.fromEntries(Object.entries(values).map(([block, actions]) => [block, Object.fromEntries(Object.entries(actions).map(([action, value]) => [action, { type: 'plain_text_input', value }]))]));
  return {
    ...payload,
    user: { ...payload.user, id: user.id, username: user.name, name: user.name },
    view: { ...payload.view, ...openedView, id: viewId, root_view_id: viewId, state: { values: state } },
  };
}

/** The form fields of a slash command (fixture command.change). */
export function slashCommand(user: { id: string; name: string }, text: string, triggerId: string): Record<string, string> {
  return { ...(fixture('command.change') as Record<string, string>), user_id: user.id, user_name: user.name, text, trigger_id: triggerId };
}
