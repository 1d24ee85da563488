// Decides whether a request really comes from Lark, before anything in it is acted on. Lark signs event and
// callback requests when the app has an Encrypt Key: X-Lark-Signature = sha256(X-Lark-Request-Timestamp +
// X-Lark-Request-Nonce + Encrypt Key + the raw body), hex. The URL verification challenge is not signed
// (Lark's Go SDK checks only its token), so it is answered on its Verification Token alone.
//
// Own code rather than the SDK's dispatcher, which checks the signature over JSON.stringify of the parsed
// body instead of the bytes received (any difference in spacing or escaping fails it), accepts any request
// when no Encrypt Key is set, never checks the age of a request or the Verification Token of an event, and
// answers a failed check with HTTP 200. The SDK's AESCipher is used for decryption: it does what Lark
// specifies (AES-256-CBC, key = SHA-256 of the Encrypt Key, IV = the first 16 bytes of the decoded data).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { AESCipher } from '@larksuiteoapi/node-sdk';
import { lark } from './sdk';

export interface LarkSecrets {
  verificationToken: string;
  encryptKey: string;
}

/**
 * How far a request's timestamp may be from this machine's clock. A captured request replayed later than
 * this is refused; within it, the event id de-duplication catches it. Five minutes, as Slack uses, allows
 * for clock drift. This assumes Lark stamps each delivery when it sends it, redeliveries included.
 */
export const MAX_REQUEST_AGE_SECONDS = 5 * 60;

export type Authenticated =
  | { kind: 'challenge'; challenge: string }
  /** A signed event or callback, decrypted and parsed: `{ schema: '2.0', header, event }`. */
  | { kind: 'event'; body: Record<string, unknown> }
  | { kind: 'refused'; status: 400 | 401; why: string };

export class RequestAuthenticator {
  private readonly cipher: AESCipher;

  constructor(private readonly secrets: LarkSecrets) {
    if (!secrets.encryptKey) throw new Error('the Lark adapter needs the app\'s Encrypt Key (LARK_ENCRYPT_KEY): without it Lark signs nothing');
    if (!secrets.verificationToken) throw new Error('the Lark adapter needs the app\'s Verification Token (LARK_VERIFICATION_TOKEN)');
    this.cipher = new lark.AESCipher(secrets.encryptKey);
  }

  authenticate(rawBody: Buffer, headers: IncomingHttpHeaders, now = Date.now()): Authenticated {
    const signature = header(headers, 'x-lark-signature');
    const timestamp = header(headers, 'x-lark-request-timestamp');
    const nonce = header(headers, 'x-lark-request-nonce');
    const signed = signature !== undefined || timestamp !== undefined || nonce !== undefined;
    if (signed) {
      // Checked before the body is parsed or decrypted: nothing unsigned is worked on beyond a challenge.
      const problem = this.signatureProblem(rawBody, signature, timestamp, nonce, now);
      if (problem) return { kind: 'refused', status: 401, why: problem };
    }
    let body: Record<string, unknown>;
    try {
      body = this.open(JSON.parse(rawBody.toString('utf8')));
    } catch {
      // Unsigned, the same answer as every other refusal, so nobody learns which ciphertexts decrypt.
      return { kind: 'refused', status: signed ? 400 : 401, why: 'the body is neither JSON nor encrypted with this Encrypt Key' };
    }
    if (body.type === 'url_verification') {
      if (!this.tokenMatches(body.token)) return { kind: 'refused', status: 401, why: 'the challenge carries another Verification Token' };
      return typeof body.challenge === 'string' ? { kind: 'challenge', challenge: body.challenge } : { kind: 'refused', status: 400, why: 'the challenge has no challenge value' };
    }
    if (!signed) return { kind: 'refused', status: 401, why: 'the request is not signed' };
    // Schema 2.0 carries the token in its header; older payloads at the top.
    const token = isRecord(body.header) ? body.header.token : body.token;
    if (!this.tokenMatches(token)) return { kind: 'refused', status: 401, why: 'the request carries another Verification Token' };
    return { kind: 'event', body };
  }

  private signatureProblem(rawBody: Buffer, signature: string | undefined, timestamp: string | undefined, nonce: string | undefined, now: number): string | null {
    if (signature === undefined || timestamp === undefined || nonce === undefined) return 'the signature headers are incomplete';
    const seconds = Number(timestamp);
    if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - seconds) > MAX_REQUEST_AGE_SECONDS) {
      return `the request timestamp is more than ${MAX_REQUEST_AGE_SECONDS / 60} minutes from now`;
    }
    const expected = createHash('sha256').update(`${timestamp}${nonce}${this.secrets.encryptKey}`).update(rawBody).digest('hex');
    return sameText(signature.toLowerCase(), expected) ? null : 'the signature does not match';
  }

  /** The body itself, or what `{ "encrypt": "…" }` decrypts to. */
  private open(parsed: unknown): Record<string, unknown> {
    if (!isRecord(parsed)) throw new Error('not an object');
    if (typeof parsed.encrypt !== 'string') return parsed;
    const inner: unknown = JSON.parse(this.cipher.decrypt(parsed.encrypt));
    if (!isRecord(inner)) throw new Error('not an object');
    return inner;
  }

  private tokenMatches(token: unknown): boolean {
    return typeof token === 'string' && sameText(token, this.secrets.verificationToken);
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
