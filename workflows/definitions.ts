// Signals and the query of the `changeRequest` workflow. Payloads arrive as `unknown` on purpose: the
// workflow validates every one, so a malformed signal is refused and recorded instead of failing a task.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Spend } from '../domain/budget';
import type { InputRecord, RunState, Transcript } from '../domain/contracts';
import { SIGNAL_NAMES, type SignalName } from '../domain/human-inputs';

/** One signal per human input (domain/human-inputs.ts), named as the input. */
export const HUMAN_SIGNALS = Object.fromEntries(SIGNAL_NAMES.map((name) => [name, defineSignal<[unknown]>(name)])) as Record<SignalName, ReturnType<typeof defineSignal<[unknown]>>>;

/** The run's verdict on one human input, by its idempotency key (null: not taken yet). */
export const inputVerdictQuery = defineQuery<InputRecord | null, [string]>('inputVerdict');

/** Sent by the run's own agent activities: turn, tokens and last tool, for the `state` query. */
export const agentProgressSignal = defineSignal<[unknown]>('agentProgress');

/** Sent by the run's agent activities before each model call: the most the step may have spent (StepSpendSchema). */
export const stepSpendSignal = defineSignal<[unknown]>('stepSpend');

/** What a step recorded so far (null: nothing), read by a retried attempt so it starts from there. */
export const stepSpendQuery = defineQuery<Spend | null, [string]>('stepSpend');

/**
 * Sent when a webhook says one of the run's pull requests changed: tracking looks at them now instead of
 * at its next time. It carries nothing the run trusts; the look reads the pull requests themselves.
 */
export const pullRequestsChangedSignal = defineSignal<[]>('pullRequestsChanged');

export const stateQuery = defineQuery<RunState>('state');

/** One agent transcript by id (ids are listed in `state.transcripts`); null when unknown. */
export const transcriptQuery = defineQuery<Transcript | null, [string]>('transcript');
