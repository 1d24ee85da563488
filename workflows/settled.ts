// Waiting until the rest of the run has reacted to what just happened, before a side coroutine (the card
// keeper, the preview expiry) decides anything from the shared state.
//
// Why: a coroutine woken by an activity result reads the state while the main path may still be reacting
// to other results delivered with it. What it reads then depends on how the server's events were grouped
// into activations, and that grouping is not always the same live and in replay: a captured run
// (test/fixtures/nondeterminism/) executed two activity results in one activation and a third in the next,
// all within one workflow task, while a replay delivers all three at once. The card keeper decided
// differently in the two, started and cancelled a timer in one of them (which spends a timer number
// without leaving an event), and the replay failed with "Timer fired event did not have expected timer id".
import * as wf from '@temporalio/workflow';

/**
 * Resolves at the SDK's next re-evaluation of blocked conditions. It runs only once every continuation
 * queued by the activation's jobs has run, so the state read after it is the same however the jobs were
 * grouped. (A condition is evaluated eagerly when created; this one declines that first evaluation.)
 */
export function afterTheRunSettles(): Promise<void> {
  let askedOnce = false;
  return wf.condition(() => {
    if (askedOnce) return true;
    askedOnce = true;
    return false;
  });
}
