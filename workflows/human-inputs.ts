// How the run takes each human input (domain/human-inputs.ts defines them): the rules beyond payload,
// sender and phase, and what an accepted input changes. Pure: the workflow calls judgeInput from its
// signal handlers and then applyInput. Adding an input means its definition and its handler here.
import { z } from 'zod';
import { isOwner, mayTarget, type Catalog } from '../domain/catalog-schema';
import { hasNewReviewComments, TERMINAL_PHASES, type RunState } from '../domain/contracts';
import { judgeApproval, stillNeeded } from '../domain/approvals';
import { CARD_OUT_OF_DATE, HUMAN_INPUTS, openQuestions, type HumanInput, type SignalName, type SignalPayload } from '../domain/human-inputs';

export type AcceptedInput = HumanInput;

export type Judgement = { outcome: 'accepted'; input: AcceptedInput } | { outcome: 'refused'; reason: string };

export interface PendingInputs {
  confirmation: { by: string; repos: string[] } | null;
  feedback: { by: string; text: string; repos: string[] | null; at: number }[];
  approval: { by: string } | null;
  cancellation: { by: string; reason: string } | null;
  budgetDecision: SignalPayload<'extendBudget'> | null;
  /** A feedback round on the pull requests' review comments, asked for while tracking (absent in older runs). */
  reviewRound?: { by: string } | null;
}

export function emptyInbox(): PendingInputs {
  return { confirmation: null, feedback: [], approval: null, cancellation: null, budgetDecision: null, reviewRound: null };
}

/** What a handler sees: the run's state and its inbox of decisions the workflow has not acted on yet. */
export interface InputContext {
  state: RunState;
  catalog: Catalog;
  inbox: PendingInputs;
  now: number;
}

interface InputHandler<S extends SignalName> {
  /** A reason to refuse it beyond payload, sender and phase; undefined to accept. */
  check?(payload: SignalPayload<S>, context: InputContext): string | undefined;
  /** What an accepted input changes. */
  apply(payload: SignalPayload<S>, context: InputContext): void;
}

const HANDLERS: { [S in SignalName]: InputHandler<S> } = {
  confirmRepos: {
    check: (payload, { state, catalog }) => repoProblems(payload.repos, state, catalog),
    apply: (payload, { inbox }) => {
      inbox.confirmation = { by: payload.by, repos: payload.repos };
    },
  },
  dismissQuestions: {
    check: (payload, { state }) => {
      const open = openQuestions(state).map((q) => q.n);
      if (open.length === 0) return 'there are no open questions';
      const unknown = (payload.questions ?? []).filter((n) => !open.includes(n));
      return unknown.length ? `no open question ${unknown.join(', ')} (open: ${open.join(', ')})` : undefined;
    },
    apply: (payload, { state, now }) => {
      for (const question of openQuestions(state)) {
        if (!payload.questions || payload.questions.includes(question.n)) question.answer = { by: payload.by, text: 'not needed', at: now, how: 'not needed' };
      }
    },
  },
  feedback: {
    check: (payload, { state, inbox }) => {
      if (inbox.approval) return 'the change was already approved';
      const outside = (payload.repos ?? []).filter((r) => !state.confirmed.includes(r));
      if (outside.length) return `feedback names ${outside.join(', ')}, which ${outside.length > 1 ? 'are' : 'is'} not part of this change (${state.confirmed.join(', ')})`;
      return undefined;
    },
    // Feedback is about the change, not an answer: a question stays open through it (or is set aside).
    apply: (payload, { inbox, now }) => {
      inbox.feedback.push({ by: payload.by, text: payload.text, repos: payload.repos ?? null, at: now });
    },
  },
  addContext: {
    apply: (payload, { state, now }) => {
      state.context.push({ by: payload.by, text: payload.text, at: now });
      answerOpenQuestions(state, payload.by, payload.text, now);
    },
  },
  reply: {
    // Never applied as itself: the run takes a reply as feedback or context (resolveInput) before judging.
    apply: () => undefined,
  },
  approve: {
    check: (payload, { state, catalog, inbox }) => {
      if (inbox.feedback.length) return 'feedback is being applied; review the new summary first';
      const duties = judgeApproval(payload.by, state, catalog);
      if ('refused' in duties) return duties.refused;
      return releaseChoiceProblems(payload.releases ?? {}, payload.by, state, catalog);
    },
    apply: (payload, { state, catalog, inbox, now }) => {
      // Under owners-not-requester an approval covers the approver's repositories; publishing waits for all.
      const duties = judgeApproval(payload.by, state, catalog);
      if (state.approvals && 'covers' in duties) state.approvals.given.push({ by: payload.by, at: now, repos: duties.covers });
      if (!state.approvals || stillNeeded(state.approvals).length === 0) inbox.approval = { by: payload.by };
      for (const [repo, bump] of Object.entries(payload.releases ?? {})) state.releaseChoices[repo] = { bump, by: payload.by };
    },
  },
  cancel: {
    apply: (payload, { inbox }) => {
      inbox.cancellation = { by: payload.by, reason: payload.reason ?? 'cancelled by a person' };
    },
  },
  addressReviewComments: {
    check: (_payload, { state, inbox }) => {
      if (inbox.reviewRound) return 'a round on the review comments is already under way';
      return Object.values(state.repos).some((repo) => hasNewReviewComments(repo.pr)) ? undefined : 'there are no new review comments';
    },
    apply: (payload, { inbox }) => {
      inbox.reviewRound = { by: payload.by };
    },
  },
  extendBudget: {
    check: (_payload, { inbox }) => (inbox.budgetDecision ? 'a budget decision was already made' : undefined),
    apply: (payload, { inbox }) => {
      inbox.budgetDecision = payload;
    },
  },
};

/**
 * Context in the thread (a reply before review) answers every question still open: people answer in a
 * reply, and a thread has no way to say which question a reply is for. The answer goes to the agent with
 * the question.
 */
function answerOpenQuestions(state: RunState, by: string, text: string, at: number): void {
  for (const question of openQuestions(state)) question.answer = { by, text, at, how: 'reply' };
}

/**
 * Who may confirm, give feedback, approve and cancel: the requester, and (by policy) the repositories'
 * owners. Under owners-not-requester the approval has its own rule on top (domain/approvals.ts).
 */
export function mayDecide(person: string, state: RunState, catalog: Catalog): boolean {
  if (person === state.request.requester) return true;
  if (catalog.policy.deciders === 'requester') return false;
  const involved = new Set([...state.confirmed, ...(state.proposal?.repos.map((r) => r.id) ?? [])]);
  return [...involved].some((repo) => isOwner(catalog, person, repo));
}

/** Whether an input is accepted: a valid payload, from someone allowed to send it, in its phase, and its own rules. */
export function judgeInput(signal: SignalName, raw: unknown, context: InputContext): Judgement {
  const definition = HUMAN_INPUTS[signal];
  const parsed = definition.payload.safeParse(raw);
  if (!parsed.success) return { outcome: 'refused', reason: `malformed ${signal}: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}` };
  const input = { signal, payload: parsed.data } as AcceptedInput;
  const { state, catalog } = context;
  const { by } = input.payload;
  const phase = state.phase;
  if (TERMINAL_PHASES.includes(phase)) return refuse(`the run is already ${phase}`);
  if (input.payload.cardVersion !== undefined && input.payload.cardVersion !== state.cardVersion) {
    return refuse(CARD_OUT_OF_DATE);
  }
  if (definition.from === 'deciders' && !mayDecide(by, state, catalog)) {
    const requester = state.request.requester;
    const who = catalog.policy.deciders === 'requester'
      ? `only ${requester} (the requester)`
      : catalog.policy.deciders === 'owners-not-requester' && signal === 'approve'
        ? `only an owner of the changed repositories other than ${requester} (the requester)`
        : `only ${requester} (the requester) or an owner of the repositories`;
    return refuse(`${by} may not ${definition.verb}: ${who} may`);
  }
  if (definition.from === 'access') {
    const involved = state.confirmed.length ? state.confirmed : state.scope;
    if (by !== state.request.requester && !involved.some((repo) => mayTarget(catalog, by, repo))) return refuse(`${by} has no access to the repositories of this change`);
  }
  if (!definition.phases.includes(phase)) return refuse(definition.outOfPhase(phase));
  const problem = (HANDLERS[signal] as InputHandler<SignalName>).check?.(input.payload as never, context);
  return problem ? refuse(problem) : { outcome: 'accepted', input };
}

/** Carries out an accepted input. */
export function applyInput(input: AcceptedInput, context: InputContext): void {
  (HANDLERS[input.signal] as InputHandler<SignalName>).apply(input.payload as never, context);
}

/** A release other than the catalog's may be chosen for a changed package of this run, by one of its owners. */
function releaseChoiceProblems(releases: Record<string, string>, by: string, state: RunState, catalog: Catalog): string | undefined {
  for (const repo of Object.keys(releases)) {
    if (!state.confirmed.includes(repo)) return `${repo} is not part of this change, so no release can be chosen for it`;
    if (!catalog.repositories.find((r) => r.id === repo)?.publish) return `${repo} is not published as a package (no \`publish\` in the catalog), so it has no release to choose`;
    if (!isOwner(catalog, by, repo)) return `${by} may not choose ${repo}'s release: only its owners may`;
  }
  return undefined;
}

function refuse(reason: string): Judgement {
  return { outcome: 'refused', reason };
}

/** Unknown ids and ids outside the requester's scope, said plainly; undefined when all are fine. */
export function repoProblems(repos: readonly string[], state: RunState, catalog: Catalog): string | undefined {
  const unknown = repos.filter((r) => !catalog.repositories.some((c) => c.id === r));
  if (unknown.length) return `unknown repositor${unknown.length > 1 ? 'ies' : 'y'}: ${unknown.join(', ')} (the catalog has ${catalog.repositories.map((r) => r.id).join(', ')})`;
  const outside = repos.filter((r) => !state.scope.includes(r));
  if (outside.length) return `${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} outside what ${state.request.requester} may target`;
  return undefined;
}
