// A chat platform's rate limit, met inside an activity, becomes a failure Temporal retries after the wait
// the platform asked for (the platform clients' own retries are off: they would outlast the activity's
// timeout). Each platform says how it recognises one; other errors stay as they are.
import { ApplicationFailure } from '@temporalio/activity';

export interface RateLimit {
  /** The failure's type, as operators see it in the Temporal UI (e.g. SlackRateLimited). */
  type: string;
  message: string;
  retryAfterSeconds?: number;
}

export function retryingAfterRateLimits(rateLimitOf: (error: unknown) => RateLimit | null) {
  return async function retryableOnRateLimit<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const limit = rateLimitOf(error);
      if (!limit) throw error;
      throw ApplicationFailure.create({
        message: limit.message,
        type: limit.type,
        ...(limit.retryAfterSeconds !== undefined ? { nextRetryDelay: Math.ceil(limit.retryAfterSeconds * 1000) } : {}),
      });
    }
  };
}
