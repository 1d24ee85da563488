// Signals and the query of the `changeRequest` workflow. Payloads arrive as `unknown` on purpose: the
// workflow validates every one, so a malformed signal is refused and recorded instead of failing a task.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Spend } from '../domain/budget';
import type { RunState, SignalName, Transcript } from '../domain/contracts';

export const confirmReposSignal = defineSignal<[unknown]>('confirmRepos');
export const feedbackSignal = defineSignal<[unknown]>('feedback');
export const addContextSignal = defineSignal<[unknown]>('addContext');
export const approveSignal = defineSignal<[unknown]>('approve');
export const cancelSignal = defineSignal<[unknown]>('cancel');
export const extendBudgetSignal = defineSignal<[unknown]>('extendBudget');

export const HUMAN_SIGNALS: Record<SignalName, ReturnType<typeof defineSignal<[unknown]>>> = {
  confirmRepos: confirmReposSignal,
  feedback: feedbackSignal,
  addContext: addContextSignal,
  approve: approveSignal,
  cancel: cancelSignal,
  extendBudget: extendBudgetSignal,
};

/** Sent by the run's own agent activities: turn, tokens and last tool, for the `state` query. */
export const agentProgressSignal = defineSignal<[unknown]>('agentProgress');

/** Sent by the run's agent activities before each model call: the most the step may have spent (StepSpendSchema). */
export const stepSpendSignal = defineSignal<[unknown]>('stepSpend');

/** What a step recorded so far (null: nothing), read by a retried attempt so it starts from there. */
export const stepSpendQuery = defineQuery<Spend | null, [string]>('stepSpend');

export const stateQuery = defineQuery<RunState>('state');

/** One agent transcript by id (ids are listed in `state.transcripts`); null when unknown. */
export const transcriptQuery = defineQuery<Transcript | null, [string]>('transcript');
