// Slack answers failures with `ok: false` and a short code (`not_in_channel`, `missing_scope` …) or with
// HTTP 429. The Web API client turns those into its own error classes; this turns them into one error a
// person can act on, and keeps the wait a rate limit asks for so the caller can retry at the right time.
import { webApi } from '@slack/bolt';

/** What to do about the codes people meet when setting the app up. */
const ADVICE: Record<string, string> = {
  not_in_channel: 'invite the app to the channel (/invite @app-name)',
  channel_not_found: 'the channel does not exist or the app cannot see it; invite the app to it',
  missing_scope: 'add the scope to the app (see im-adapters/slack/README.md) and reinstall it',
  invalid_auth: 'check SLACK_BOT_TOKEN',
  not_authed: 'check SLACK_BOT_TOKEN',
  token_revoked: 'the bot token was revoked: reinstall the app and update SLACK_BOT_TOKEN',
  account_inactive: 'the bot token belongs to a deactivated app or user: reinstall the app',
  is_archived: 'the channel is archived',
  thread_not_found: 'the thread this run belongs to was deleted',
};

export class SlackApiError extends Error {
  override readonly name = 'SlackApiError';

  constructor(
    readonly method: string,
    /** Slack's error code (`message_not_found` …), `ratelimited`, `http_<status>` or `unreachable`. */
    readonly code: string,
    message: string,
    /** Set for rate limits: how long Slack asked to wait. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Runs one Web API call; its failure comes back as a SlackApiError. */
export async function callSlack<T>(method: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toSlackApiError(method, error);
  }
}

export function toSlackApiError(method: string, error: unknown): SlackApiError {
  if (error instanceof SlackApiError) return error;
  if (error instanceof webApi.WebAPIRateLimitedError) {
    return new SlackApiError(method, 'ratelimited', `Slack rate-limited ${method}; retry after ${error.retryAfter} s`, error.retryAfter);
  }
  if (error instanceof webApi.WebAPIPlatformError) {
    const code = error.data.error;
    if (code === 'ratelimited') return new SlackApiError(method, code, `Slack rate-limited ${method}`);
    // missing_scope names the scope it lacks in `needed`, which the client's result type leaves out.
    const { needed } = error.data as { needed?: unknown };
    const scope = typeof needed === 'string' ? ` (needs ${needed})` : '';
    // invalid_blocks and friends explain themselves in response_metadata.messages.
    const details = error.data.response_metadata?.messages?.length ? `: ${error.data.response_metadata.messages.join('; ')}` : '';
    const advice = ADVICE[code] ? `; ${ADVICE[code]}` : '';
    return new SlackApiError(method, code, `Slack refused ${method}: ${code}${scope}${details}${advice}`);
  }
  if (error instanceof webApi.WebAPIHTTPError) {
    return new SlackApiError(method, `http_${error.statusCode}`, `Slack answered ${method} with HTTP ${error.statusCode} ${error.statusMessage}`);
  }
  if (error instanceof webApi.WebAPIRequestError) {
    return new SlackApiError(method, 'unreachable', `Slack could not be reached for ${method}: ${error.original.message}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SlackApiError(method, 'unknown', `Slack ${method} failed: ${message}`);
}
