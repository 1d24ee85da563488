// Long work (clones, installs, builds, checks, an agent's tool runs) can be silent for minutes. Heartbeats
// say the worker is alive (hung work is bounded by its own timeout), and they are how a cancellation
// reaches the activity. Some activities also carry details in their heartbeats (an agent step's spending,
// so a retry cannot reset it); the server keeps only the last heartbeat's details, so every beat here
// re-sends the last details given, and a plain "still alive" can never erase them.
import { Context } from '@temporalio/activity';

// The SDK throttles what reaches the server; calling it often only makes a dead worker visible sooner.
const HEARTBEAT_INTERVAL_MS = 1_000;

const lastDetails = new WeakMap<Context, unknown>();

/** Heartbeat now; with details, they become what every later beat of this attempt carries. */
export function heartbeat(details?: unknown): void {
  const context = Context.current();
  if (details !== undefined) lastDetails.set(context, details);
  context.heartbeat(lastDetails.get(context));
}

/** Runs work while beating every second, so no silent stretch of it can time the attempt out. */
export async function whileHeartbeating<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  const beat = () => context.heartbeat(lastDetails.get(context));
  beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  try {
    return await work(context.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}
