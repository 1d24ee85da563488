// Long commands (installs, builds, checks) can be silent for minutes. Heartbeats say the worker is alive (a
// hung command is bounded by its own timeout), and they are how a cancellation reaches the activity.
import { Context } from '@temporalio/activity';

// The SDK throttles what reaches the server; calling it often only makes a dead worker visible sooner.
const HEARTBEAT_INTERVAL_MS = 1_000;

export async function whileHeartbeating<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat();
  const timer = setInterval(() => context.heartbeat(), HEARTBEAT_INTERVAL_MS);
  try {
    return await work(context.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}
