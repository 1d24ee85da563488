// Token authentication: on a forge with a token, every request must present it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { sendJson } from './responses';

export interface Admission {
  /** Who git records as the pusher; undefined on a forge without a token. */
  remoteUser: string | undefined;
}

/** Lets the request in, or answers 401 with a Basic challenge and returns null. */
export function admit(req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined, isApi: boolean): Admission | null {
  if (token === undefined) return { remoteUser: undefined };
  const caller = presentedCredentials(req.headers.authorization);
  if (caller && sameSecret(caller.token, token)) return { remoteUser: caller.user };
  sendJson(res, 401, { message: isApi ? 'Bad credentials' : 'Authentication required' }, { 'WWW-Authenticate': 'Basic realm="forge"' });
  return null;
}

/** HTTP Basic (any username, token as password) as git clients send it, or `token`/`Bearer` as Octokit does. */
function presentedCredentials(header: string | undefined): { user: string; token: string } | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  if (space === -1) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'token' || scheme === 'bearer') return { user: 'token', token: value };
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  // The username becomes REMOTE_USER, which git writes into reflogs: keep it to plain characters, never empty.
  const user = decoded.slice(0, colon).replace(/[^A-Za-z0-9._@-]/g, '').slice(0, 64);
  return { user: user || 'token', token: decoded.slice(colon + 1) };
}

/** Whether a token typed into one of the forge's forms is the forge's (always true on a forge without one). */
export function isForgeToken(presented: string, token: string | undefined): boolean {
  return token === undefined || sameSecret(presented, token);
}

/** Compares digests so the time taken says nothing about how much of the token was right. */
function sameSecret(presented: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
