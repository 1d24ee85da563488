// Every human input of a run, defined once: its payload, who may send it, the phases it is taken in, how
// a refusal names it, and the card buttons that send it. The workflow's signal handlers and rules, the
// gateway, the command model, the router's buttons and the cards all derive from this table; adding an
// input means a definition here and its handler in workflows/human-inputs.ts. Pure.
import { z } from 'zod';
import { BudgetPatchSchema } from './budget';
import type { ButtonStyle, ButtonValue, CardAction } from './buttons';
import { PersonSchema, ReleaseBumpSchema, RepoIdSchema } from './catalog-schema';
import { hasNewReviewComments, IdempotencyKeySchema, PHASES, RepoListSchema, TERMINAL_PHASES, TextSchema, type Phase, type QuestionRecord, type RunState } from './contracts';

/** Every human input names who sent it and carries an idempotency key (a repeated key changes nothing). */
const Common = {
  by: PersonSchema,
  key: IdempotencyKeySchema,
  /** Sent by IM cards: the card's version; an input from an outdated card is refused. */
  cardVersion: z.number().int().min(0).optional(),
};

export interface HumanInputDefinition<Payload extends z.ZodType> {
  payload: Payload;
  /** `deciders`: the requester and, by policy, the repositories' owners; `access`: anyone who may target one of them. */
  from: 'deciders' | 'access';
  /** The phases it is accepted in (terminal phases never). */
  phases: readonly Phase[];
  /** The refusal outside those phases. */
  outOfPhase: (phase: Phase) => string;
  /** As in "bob may not <verb>". */
  verb: string;
  /**
   * For an input that stands for another depending on the phase (a reply in the thread): which one it is.
   * The run judges, applies and records it as that one, so an adapter sends it without reading the run.
   */
  resolve?: (phase: Phase) => 'feedback' | 'addContext';
  /** The card buttons that send it, shown on every card of the phases it is taken in (and, with `shownWhen`, only when that holds). */
  buttons?: Partial<Record<CardAction, ButtonDefinition<Payload>>>;
  shownWhen?: (state: Pick<RunState, 'questions' | 'repos'>) => boolean;
}

export interface ButtonDefinition<Payload extends z.ZodType> {
  /** A function of the repositories ticked on the card, for a label that counts them. */
  label: string | ((selection: readonly string[]) => string);
  style: ButtonStyle;
  /** The button carries the card's ticked repositories back. */
  carriesSelection?: true;
  /**
   * What a press adds to the common fields (who, key, card version). Absent: the press sends nothing by
   * itself; the adapter asks for the rest first (a feedback form) and sends the input with it.
   */
  sends?: (value: ButtonValue, person: string) => Partial<z.input<Payload>>;
}

function input<Payload extends z.ZodType>(definition: HumanInputDefinition<Payload>): HumanInputDefinition<Payload> {
  return definition;
}

const LIVE_PHASES = PHASES.filter((phase) => !TERMINAL_PHASES.includes(phase));

/** The refusal of an input from a card older than the run's (and the adapters' word for it). */
export const CARD_OUT_OF_DATE = 'this card is out of date; here is the current one';

/** Refused once the pull requests are open: what changes then is said on them, or in a new request. */
export const PULL_REQUESTS_ARE_OPEN = 'the pull requests are open: comment on them there, or start a new change request for more changes';

/** Context and a reply take the same payload from the same people, at any time until the pull requests open. */
const CONTEXT_INPUT = {
  payload: z.object({ ...Common, text: TextSchema }).strict(),
  from: 'access',
  phases: LIVE_PHASES.filter((phase) => phase !== 'tracking'),
  outOfPhase: (phase: Phase) => (phase === 'tracking' ? PULL_REQUESTS_ARE_OPEN : `the run is already ${phase}`),
} as const;

export const HUMAN_INPUTS = {
  confirmRepos: input({
    payload: z.object({ ...Common, repos: RepoListSchema }).strict(),
    from: 'deciders',
    phases: ['awaiting_confirmation'],
    outOfPhase: (phase) => `repositories can only be confirmed while awaiting confirmation (the run is ${phase})`,
    verb: 'confirm repositories',
    buttons: {
      confirm: {
        label: (selection) => `Confirm ${selection.length} repositor${selection.length === 1 ? 'y' : 'ies'}`,
        style: 'primary',
        carriesSelection: true,
        sends: (value) => ({ repos: value.selection ?? [] }),
      },
    },
  }),
  feedback: input({
    payload: z.object({ ...Common, text: TextSchema, repos: RepoListSchema.optional() }).strict(),
    from: 'deciders',
    phases: ['awaiting_review'],
    outOfPhase: (phase) => `feedback is taken while awaiting review (the run is ${phase})`,
    verb: 'give feedback',
    buttons: { feedback: { label: 'Give feedback', style: 'default' } },
  }),
  addContext: input({ ...CONTEXT_INPUT, verb: 'add context' }),
  /** A message in the run's thread: feedback while the run awaits review, context otherwise. */
  reply: input({
    ...CONTEXT_INPUT,
    verb: 'reply',
    resolve: (phase) => (phase === 'awaiting_review' ? 'feedback' : 'addContext'),
  }),
  approve: input({
    payload: z
      .object({
        ...Common,
        /** An owner of a package repository may plan another release than the catalog's (e.g. a major). */
        releases: z.record(RepoIdSchema, ReleaseBumpSchema).optional(),
      })
      .strict(),
    from: 'deciders',
    phases: ['awaiting_review'],
    outOfPhase: (phase) => `approval is only possible while awaiting review (the run is ${phase})`,
    verb: 'approve',
    buttons: { approve: { label: 'Approve and open pull requests', style: 'primary', sends: () => ({}) } },
  }),
  cancel: input({
    payload: z.object({ ...Common, reason: z.string().trim().max(2000).optional() }).strict(),
    from: 'deciders',
    phases: LIVE_PHASES.filter((phase) => phase !== 'publishing'),
    outOfPhase: () => 'pull requests are being opened; close them on the forge instead',
    verb: 'cancel',
    buttons: { cancel: { label: 'Cancel', style: 'danger', sends: (_value, person) => ({ reason: `cancelled by ${person}` }) } },
  }),
  /** The proposal's open questions set aside as not needed (all of them, or the numbered ones). */
  dismissQuestions: input({
    payload: z.object({ ...Common, questions: z.array(z.number().int().min(1)).min(1).max(50).optional() }).strict(),
    from: 'access',
    phases: LIVE_PHASES.filter((phase) => phase !== 'tracking'),
    outOfPhase: (phase: Phase) => (phase === 'tracking' ? PULL_REQUESTS_ARE_OPEN : `the run is already ${phase}`),
    verb: 'set questions aside',
    shownWhen: (state) => openQuestions(state).length > 0,
    buttons: { questions_not_needed: { label: 'Open questions: not needed', style: 'default', sends: () => ({}) } },
  }),
  /** While the pull requests are followed: a feedback round on what reviewers wrote on them. */
  addressReviewComments: input({
    payload: z.object({ ...Common }).strict(),
    from: 'deciders',
    phases: ['tracking'],
    outOfPhase: (phase) => `review comments are worked on while the pull requests are open (the run is ${phase})`,
    verb: 'start a round on the review comments',
    shownWhen: (state) => Object.values(state.repos).some((repo) => hasNewReviewComments(repo.pr)),
    buttons: { review_comments: { label: 'Work on the review comments', style: 'primary', sends: () => ({}) } },
  }),
  /** After a budget ran out: add to it and let the agent continue, or review the partial work. */
  extendBudget: input({
    payload: z
      .object({
        ...Common,
        decision: z.enum(['extend', 'continue']),
        perStep: BudgetPatchSchema.optional(),
        perRun: BudgetPatchSchema.optional(),
      })
      .strict(),
    from: 'deciders',
    phases: ['awaiting_budget'],
    outOfPhase: (phase) => `the budget can be extended when a budget has run out (the run is ${phase})`,
    verb: 'decide on the budget',
    buttons: {
      extend: { label: 'Extend the budget', style: 'primary', sends: () => ({ decision: 'extend' as const }) },
      review_partial: { label: 'Review what was done', style: 'default', sends: () => ({ decision: 'continue' as const }) },
    },
  }),
};

export type SignalName = keyof typeof HUMAN_INPUTS;
export const SIGNAL_NAMES = Object.keys(HUMAN_INPUTS) as SignalName[];
export type SignalPayloadSchema<S extends SignalName> = (typeof HUMAN_INPUTS)[S]['payload'];
export type SignalPayload<S extends SignalName> = z.infer<SignalPayloadSchema<S>>;
/** The payload schemas by input name (for code that validates any input). */
export const SignalPayloadSchemas = Object.fromEntries(SIGNAL_NAMES.map((name) => [name, HUMAN_INPUTS[name].payload])) as { [S in SignalName]: SignalPayloadSchema<S> };

/** A payload with its input's name, as a union, so a switch on `signal` narrows the payload. */
export type HumanInput = { [S in SignalName]: { signal: S; payload: SignalPayload<S> } }[SignalName];

/** The input a signal stands for in this phase (itself, unless it resolves to another). */
export function resolveInput(signal: SignalName, phase: Phase): SignalName {
  return (HUMAN_INPUTS[signal] as HumanInputDefinition<z.ZodType>).resolve?.(phase) ?? signal;
}

type AnyButton = ButtonDefinition<z.ZodType<Record<string, unknown>>>;
const buttonsOf = (signal: SignalName) => Object.entries(HUMAN_INPUTS[signal].buttons ?? {}) as [CardAction, AnyButton][];

/** The input a card button sends and what it adds to the common fields; null for buttons an adapter handles itself (toggle, feedback). */
export function inputForButton(value: ButtonValue, person: string): { signal: SignalName; fields: Record<string, unknown> } | null {
  for (const signal of SIGNAL_NAMES) {
    const button = buttonsOf(signal).find(([action]) => action === value.action)?.[1];
    if (button?.sends) return { signal, fields: button.sends(value, person) };
  }
  return null;
}

const STYLE_ORDER: Record<ButtonStyle, number> = { primary: 0, default: 1, danger: 2 };

/** The proposal's questions nobody has answered or set aside yet. */
export function openQuestions(state: Pick<RunState, 'questions'>): QuestionRecord[] {
  return (state.questions ?? []).filter((q) => q.answer === null);
}

/** The buttons a card in this phase shows: those of every input the phase takes, primary first, danger last. */
export function buttonsFor(phase: Phase, selection: readonly string[], state: Pick<RunState, 'questions' | 'repos'> = { repos: {} }): { action: CardAction; label: string; style: ButtonStyle; carries: Partial<ButtonValue> }[] {
  return SIGNAL_NAMES.filter((signal) => HUMAN_INPUTS[signal].phases.includes(phase) && ((HUMAN_INPUTS[signal] as HumanInputDefinition<z.ZodType>).shownWhen?.(state) ?? true))
    .flatMap(buttonsOf)
    .map(([action, button]) => ({
      action,
      label: typeof button.label === 'function' ? button.label(selection) : button.label,
      style: button.style,
      carries: button.carriesSelection ? { selection: [...selection] } : {},
    }))
    .sort((a, b) => STYLE_ORDER[a.style] - STYLE_ORDER[b.style]);
}
