// The open platform client both sides use (the adapter's replies, the worker's channel), and its failures as
// one error a person can act on. Lark answers a failure with a non-zero `code` and a `msg`, usually with
// HTTP 400 (which the SDK throws as its HTTP client's error) and sometimes with HTTP 200 (which it returns);
// rate limits come as HTTP 429 or one of the codes below, with the wait in `x-ogw-ratelimit-reset`.
import type { Client, Logger } from '@larksuiteoapi/node-sdk';
import { lark } from './sdk';

export interface LarkAppOptions {
  appId: string;
  appSecret: string;
  /** The open platform's address: Feishu's unless set (Lark: https://open.larksuite.com; tests: a local server). */
  domain?: string;
}

const FEISHU_DOMAIN = 'https://open.feishu.cn';

/**
 * The frequency-limit codes (Feishu "frequency control" and message API error pages): 99991400 for any
 * open API (with HTTP 429), 230020 for messages sent to or updated in one chat, 11232 for the tenant's
 * message sending.
 */
const RATE_LIMIT_CODES = new Set([99991400, 230020, 11232]);

/** What to do about the codes people meet when setting the app up or using it. */
const ADVICE: Record<number, string> = {
  99991661: 'check LARK_APP_ID and LARK_APP_SECRET',
  99991663: 'check LARK_APP_ID and LARK_APP_SECRET',
  99991672: 'grant the app the scope named above on the open platform (see im-adapters/lark/README.md) and publish a new version of it',
  230002: 'add the bot to the chat',
  230011: 'the message was recalled',
  230025: 'the message is longer than Lark takes',
  230031: 'Lark lets a message be updated for 14 days after it was sent',
  1770002: 'the doc does not exist (or was deleted)',
  1770032: 'share the doc with the app (in the doc: … → More → Add apps)',
};

export class LarkApiError extends Error {
  override readonly name = 'LarkApiError';

  constructor(
    /** What was being done, e.g. `im.message.reply`. */
    readonly call: string,
    /** Lark's error code, or null when the request got no Lark answer (network, HTTP error without a body). */
    readonly code: number | null,
    message: string,
    readonly rateLimited = false,
    /** Set for rate limits when Lark said how long to wait. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export function larkClient(options: LarkAppOptions): Client {
  return new lark.Client({
    appId: options.appId,
    appSecret: options.appSecret,
    domain: options.domain ?? FEISHU_DOMAIN,
    appType: lark.AppType.SelfBuild,
    // A token cache of its own: the SDK's default is shared by every client in the process.
    cache: new lark.DefaultCache(),
    logger: sdkLogger,
    loggerLevel: lark.LoggerLevel.warn,
  });
}

/** Runs one API call; a failure, however Lark or the SDK reports it, comes back as a LarkApiError. */
export async function callLark<T extends { code?: number | undefined; msg?: string | undefined }>(call: string, request: () => Promise<T>): Promise<T> {
  let response: T;
  try {
    response = await request();
  } catch (error) {
    throw toLarkApiError(call, error);
  }
  if (response.code !== undefined && response.code !== 0) throw refusal(call, response.code, response.msg, undefined);
  return response;
}

export function toLarkApiError(call: string, error: unknown): LarkApiError {
  if (error instanceof LarkApiError) return error;
  if (isHttpClientError(error)) {
    const answer = error.response;
    if (!answer) return new LarkApiError(call, null, `Lark could not be reached for ${call}: ${error.message}`);
    const body = answer.data as { code?: unknown; msg?: unknown } | undefined;
    const reset = Number(answer.headers?.['x-ogw-ratelimit-reset']);
    const retryAfter = Number.isFinite(reset) && reset >= 0 ? reset : undefined;
    if (typeof body?.code === 'number') return refusal(call, body.code, typeof body.msg === 'string' ? body.msg : undefined, retryAfter, answer.status, error.config?.url);
    if (answer.status === 429) return new LarkApiError(call, null, `Lark rate-limited ${call}`, true, retryAfter);
    return new LarkApiError(call, null, `Lark answered ${call} with HTTP ${answer.status}`);
  }
  // The SDK's own errors (e.g. "failed to get tenant_access_token, code: …, msg: …") say what failed.
  return new LarkApiError(call, null, `Lark ${call} failed: ${error instanceof Error ? error.message : String(error)}`);
}

function refusal(call: string, code: number, msg: string | undefined, retryAfterSeconds: number | undefined, httpStatus?: number, url?: string): LarkApiError {
  const rateLimited = RATE_LIMIT_CODES.has(code) || httpStatus === 429;
  // The token request fails on the way to the real call; say so, or a bad secret reads as a bad message.
  const during = url && /tenant_access_token/.test(url) ? ' (getting the tenant access token)' : '';
  const advice = ADVICE[code] ? `; ${ADVICE[code]}` : '';
  const wait = rateLimited && retryAfterSeconds !== undefined ? `; retry after ${retryAfterSeconds} s` : '';
  return new LarkApiError(call, code, `Lark refused ${call}${during}: code ${code}${msg ? ` ${msg}` : ''}${advice}${wait}`, rateLimited, retryAfterSeconds);
}

/** The SDK's HTTP client (axios) error, by shape: importing axios would tie us to the SDK's copy of it. */
function isHttpClientError(error: unknown): error is {
  message: string;
  config?: { url?: string };
  response?: { status: number; headers?: Record<string, unknown>; data: unknown };
} {
  return typeof error === 'object' && error !== null && (error as { isAxiosError?: unknown }).isAxiosError === true;
}

/**
 * The SDK logs every failed request with the request itself, whose headers carry the tenant access token
 * (and, for token requests, whose body carries the app secret). Those failures reach us as thrown errors,
 * reported readably above, so only the SDK's plain-text messages are printed.
 */
const sdkLogger: Logger = {
  error: (...args: unknown[]) => printPlain(console.error, args),
  warn: (...args: unknown[]) => printPlain(console.warn, args),
  info: (...args: unknown[]) => printPlain(console.info, args),
  debug: (...args: unknown[]) => printPlain(console.debug, args),
  trace: (...args: unknown[]) => printPlain(console.debug, args),
};

function printPlain(print: (text: string) => void, args: unknown[]): void {
  const text = args
    .flat(Infinity)
    .filter((arg): arg is string => typeof arg === 'string')
    .join(' ');
  if (text) print(`lark sdk: ${text}`);
}
