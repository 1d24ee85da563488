// Whether a human input (a signal) is accepted: valid payload, a person allowed to send it, the right
// phase, repositories in the catalog and in scope. Pure: the workflow calls it from its signal handlers.
import { z } from 'zod';
import { isOwner, mayTarget, type Catalog } from '../domain/catalog-schema';
import { SignalPayloadSchemas, TERMINAL_PHASES, type RunState, type SignalName, type SignalPayload } from '../domain/contracts';

export type AcceptedInput = { [S in SignalName]: { signal: S; payload: SignalPayload<S> } }[SignalName];

export type Judgement = { outcome: 'accepted'; input: AcceptedInput } | { outcome: 'refused'; reason: string };

export interface PendingInputs {
  confirmation: { by: string; repos: string[] } | null;
  feedback: { by: string; text: string; repos: string[] | null; at: number }[];
  approval: { by: string } | null;
  cancellation: { by: string; reason: string } | null;
  budgetDecision: SignalPayload<'extendBudget'> | null;
}

export function emptyInbox(): PendingInputs {
  return { confirmation: null, feedback: [], approval: null, cancellation: null, budgetDecision: null };
}

/** Who may confirm, give feedback, approve and cancel: the requester, and (by policy) the repositories' owners. */
export function mayDecide(person: string, state: RunState, catalog: Catalog): boolean {
  if (person === state.request.requester) return true;
  if (catalog.policy.deciders === 'requester') return false;
  const involved = new Set([...state.confirmed, ...(state.proposal?.repos.map((r) => r.id) ?? [])]);
  return [...involved].some((repo) => isOwner(catalog, person, repo));
}

export function judgeInput(signal: SignalName, raw: unknown, state: RunState, catalog: Catalog, inbox: PendingInputs): Judgement {
  const parsed = SignalPayloadSchemas[signal].safeParse(raw);
  if (!parsed.success) return { outcome: 'refused', reason: `malformed ${signal}: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}` };
  const input = { signal, payload: parsed.data } as AcceptedInput;
  const by = input.payload.by;
  const phase = state.phase;
  if (TERMINAL_PHASES.includes(phase)) return refuse(`the run is already ${phase}`);
  if (input.payload.cardVersion !== undefined && input.payload.cardVersion !== state.cardVersion) {
    return refuse('this card is out of date; here is the current one');
  }

  const needsDecider = signal !== 'addContext';
  if (needsDecider && !mayDecide(by, state, catalog)) {
    const who = catalog.policy.deciders === 'requester' ? `only ${state.request.requester} (the requester)` : `only ${state.request.requester} (the requester) or an owner of the repositories`;
    return refuse(`${by} may not ${verb(signal)}: ${who} may`);
  }

  switch (input.signal) {
    case 'confirmRepos': {
      if (phase !== 'awaiting_confirmation') return refuse(`repositories can only be confirmed while awaiting confirmation (the run is ${phase})`);
      const problem = repoProblems(input.payload.repos, state, catalog);
      return problem ? refuse(problem) : { outcome: 'accepted', input };
    }
    case 'feedback': {
      if (phase !== 'awaiting_review') return refuse(`feedback is taken while awaiting review (the run is ${phase})`);
      if (inbox.approval) return refuse('the change was already approved');
      const outside = (input.payload.repos ?? []).filter((r) => !state.confirmed.includes(r));
      if (outside.length) return refuse(`feedback names ${outside.join(', ')}, which ${outside.length > 1 ? 'are' : 'is'} not part of this change (${state.confirmed.join(', ')})`);
      return { outcome: 'accepted', input };
    }
    case 'addContext': {
      const involved = state.confirmed.length ? state.confirmed : state.scope;
      if (by !== state.request.requester && !involved.some((repo) => mayTarget(catalog, by, repo))) {
        return refuse(`${by} has no access to the repositories of this change`);
      }
      return { outcome: 'accepted', input };
    }
    case 'approve': {
      if (phase !== 'awaiting_review') return refuse(`approval is only possible while awaiting review (the run is ${phase})`);
      if (inbox.feedback.length) return refuse('feedback is being applied; review the new summary first');
      const releaseProblem = releaseChoiceProblems(input.payload.releases ?? {}, by, state, catalog);
      return releaseProblem ? refuse(releaseProblem) : { outcome: 'accepted', input };
    }
    case 'cancel': {
      if (phase === 'publishing') return refuse('pull requests are being opened; close them on the forge instead');
      return { outcome: 'accepted', input };
    }
    case 'extendBudget': {
      if (phase !== 'awaiting_budget') return refuse(`the budget can be extended when a budget has run out (the run is ${phase})`);
      if (inbox.budgetDecision) return refuse('a budget decision was already made');
      return { outcome: 'accepted', input };
    }
  }
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

function verb(signal: SignalName): string {
  return { confirmRepos: 'confirm repositories', feedback: 'give feedback', addContext: 'add context', approve: 'approve', cancel: 'cancel', extendBudget: 'decide on the budget' }[signal];
}

/** Unknown ids and ids outside the requester's scope, said plainly; undefined when all are fine. */
export function repoProblems(repos: readonly string[], state: RunState, catalog: Catalog): string | undefined {
  const unknown = repos.filter((r) => !catalog.repositories.some((c) => c.id === r));
  if (unknown.length) return `unknown repositor${unknown.length > 1 ? 'ies' : 'y'}: ${unknown.join(', ')} (the catalog has ${catalog.repositories.map((r) => r.id).join(', ')})`;
  const outside = repos.filter((r) => !state.scope.includes(r));
  if (outside.length) return `${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} outside what ${state.request.requester} may target`;
  return undefined;
}
