// `card.action.trigger`: a button press goes to the router with the button's value (what the card said when
// it was drawn), and the callback's answer is what the person sees: a toast, and the card redrawn in place
// when there is one to show. Lark waits 3 seconds for that answer and does not call again; a press the run
// has not decided by the deadline is answered "working on it", and its outcome follows by other means.
import type { InteractiveCard } from '@larksuiteoapi/node-sdk';
import { z } from 'zod';
import { ButtonValueSchema, type Card, type CardAction } from '../../domain/card';
import { personFor, type ButtonOutcome } from '../core/router';
import { larkCard } from './card';
import type { LarkInboundDeps } from './message-events';

/** The callback answer Lark reads (card.action.trigger response: toast, and a card of type raw or template). */
export interface CallbackAnswer {
  toast?: { type: 'info' | 'success' | 'error' | 'warning'; content: string };
  card?: { type: 'raw'; data: InteractiveCard };
}

const CardActionSchema = z.object({
  operator: z.object({ open_id: z.string().min(1) }),
  action: z.object({ value: z.unknown() }),
  context: z.object({ open_message_id: z.string().optional() }).optional(),
});

const ACCEPTED: Partial<Record<CardAction, string>> = {
  confirm: 'Confirmed: the agent starts editing.',
  approve: 'Approved: opening the pull requests.',
  cancel: 'Cancelled.',
  extend: 'Budget extended: the agent continues.',
  review_partial: 'Going to review with the work done so far.',
};
const ASK_FEEDBACK = 'Reply in this thread with your feedback: the agent works on it in a new round.';
const WORKING = 'Working on it: the card changes when the change request has decided.';

/**
 * Answers a press by `deadline` (epoch ms). `later` receives the follow-up of a press decided after it,
 * so the adapter can wait for it on shutdown.
 */
export async function answerCardAction(deps: LarkInboundDeps, eventId: string, event: unknown, deadline: number, later: (work: Promise<void>) => void): Promise<CallbackAnswer> {
  const parsed = CardActionSchema.safeParse(event);
  if (!parsed.success) return { toast: { type: 'error', content: 'This button is not one of ours.' } };
  const { operator, action, context } = parsed.data;
  const person = personFor(await deps.loadCatalog(), 'lark', operator.open_id);
  const pending = deps.router.onButton({ platform: 'lark', person, value: action.value, eventId });
  const outcome = await Promise.race([pending, sleep(deadline - Date.now()).then(() => null)]);
  if (outcome) return answerFor(outcome, action.value);
  const cardMessage = context?.open_message_id;
  later(pending.then((late) => (cardMessage ? followUp(deps, late, cardMessage, operator.open_id, eventId) : undefined)));
  return { toast: { type: 'info', content: WORKING } };
}

function answerFor(outcome: ButtonOutcome, value: unknown): CallbackAnswer {
  switch (outcome.kind) {
    case 'accepted': {
      const action = ButtonValueSchema.safeParse(value).data?.action;
      return { toast: { type: 'success', content: (action && ACCEPTED[action]) ?? 'Done.' }, card: raw(outcome.card) };
    }
    case 'rerender':
      return { card: raw(outcome.card) };
    case 'refused':
      return { toast: { type: 'error', content: outcome.reason }, ...(outcome.card ? { card: raw(outcome.card) } : {}) };
    case 'ask_feedback':
      return { toast: { type: 'info', content: ASK_FEEDBACK } };
    case 'duplicate':
      // Answered already; an empty answer leaves the card as it is.
      return {};
  }
}

/** After the deadline the answer is gone: the card is patched and the person told in the thread instead. */
async function followUp(deps: LarkInboundDeps, outcome: ButtonOutcome, cardMessage: string, openId: string, eventId: string): Promise<void> {
  switch (outcome.kind) {
    case 'rerender':
      await deps.patchCard(cardMessage, outcome.card);
      return;
    case 'refused':
      if (outcome.card) await deps.patchCard(cardMessage, outcome.card);
      await deps.reply(cardMessage, openId, outcome.reason, `refusal:${eventId}`);
      return;
    case 'ask_feedback':
      await deps.reply(cardMessage, openId, ASK_FEEDBACK, `ask-feedback:${eventId}`);
      return;
    case 'accepted':
    case 'duplicate':
      // The run redraws its card itself when a decision changes it.
      return;
  }
}

function raw(card: Card): CallbackAnswer['card'] {
  return { type: 'raw', data: larkCard(card) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}
