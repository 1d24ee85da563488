// Card buttons and the feedback form. A press goes to the router with the button's value (what the card
// said when it was drawn); the answer decides what the person sees: the card redrawn with a new selection,
// the current card plus a private note saying why nothing happened, or a form for feedback.
import type { BlockAction, ButtonAction, types, ViewOutput } from '@slack/bolt';
import type { Card } from '../../domain/card';
import { personFor } from '../core/router';
import { tellRefusal, type Audience, type InboundDeps, type TellPerson } from './messages';

export const FEEDBACK_CALLBACK_ID = 'change_request_feedback';
const FEEDBACK_BLOCK_ID = 'feedback';
const FEEDBACK_ACTION_ID = 'text';

/** The Slack calls a press may need, as the adapter's client makes them. */
export interface InteractionCalls {
  updateCard(where: { channel: string; ts: string }, card: Card): Promise<void>;
  openModal(triggerId: string, view: types.ModalView): Promise<void>;
  tell: TellPerson;
}

/** Carried through the modal so its submission knows the run and where to answer. */
interface FeedbackContext {
  runId: string;
  channel: string;
  thread?: string;
}

export async function onButtonPress(deps: InboundDeps, body: BlockAction<ButtonAction>, action: ButtonAction, calls: InteractionCalls): Promise<void> {
  const channel = body.channel?.id ?? stringField(body.container, 'channel_id');
  const messageTs = body.message?.ts ?? stringField(body.container, 'message_ts');
  const thread = (body.message?.thread_ts as string | undefined) ?? stringField(body.container, 'thread_ts');
  const person = personFor(await deps.loadCatalog(), 'slack', body.user.id);
  // action_ts is unique per click; the user is added because two people can click in the same instant.
  const outcome = await deps.router.onButton({ platform: 'slack', person, value: parseButtonValue(action.value), eventId: `${action.action_ts}:${body.user.id}` });
  const cardAt = channel && messageTs ? { channel, ts: messageTs } : null;
  switch (outcome.kind) {
    case 'rerender':
      if (cardAt) await calls.updateCard(cardAt, outcome.card);
      return;
    case 'refused':
      if (cardAt && outcome.card) await calls.updateCard(cardAt, outcome.card);
      if (channel) await calls.tell({ channel, user: body.user.id, ...(thread ? { thread } : {}) }, outcome.reason);
      return;
    case 'ask_feedback':
      if (channel) await calls.openModal(body.trigger_id, feedbackModal({ runId: outcome.runId, channel, ...(thread ? { thread } : {}) }));
      return;
    case 'accepted':
    case 'duplicate':
      // The run redraws its card itself when a decision changes it.
      return;
  }
}

export async function onFeedbackSubmitted(deps: InboundDeps, user: string, view: ViewOutput, tell: TellPerson): Promise<void> {
  const context = JSON.parse(view.private_metadata) as FeedbackContext;
  const text = view.state.values[FEEDBACK_BLOCK_ID]?.[FEEDBACK_ACTION_ID]?.value ?? '';
  const person = personFor(await deps.loadCatalog(), 'slack', user);
  // A view is submitted once (it closes), so its id identifies the delivery.
  const outcome = await deps.router.onFeedback('slack', context.runId, person, text, `view:${view.id}`);
  const audience: Audience = { channel: context.channel, user, ...(context.thread ? { thread: context.thread } : {}) };
  await tellRefusal(outcome, audience, tell);
}

function feedbackModal(context: FeedbackContext): types.ModalView {
  return {
    type: 'modal',
    callback_id: FEEDBACK_CALLBACK_ID,
    private_metadata: JSON.stringify(context),
    title: { type: 'plain_text', text: 'Feedback' },
    submit: { type: 'plain_text', text: 'Send' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      {
        type: 'input',
        block_id: FEEDBACK_BLOCK_ID,
        label: { type: 'plain_text', text: 'What should the agent change?' },
        element: { type: 'plain_text_input', action_id: FEEDBACK_ACTION_ID, multiline: true, max_length: 3000 },
        hint: { type: 'plain_text', text: 'The agent works on it in a new round; the card shows when it is ready again.' },
      },
    ],
  };
}

/** The value as our cards wrote it (JSON); anything else goes to the router as it is, which refuses it. */
function parseButtonValue(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function stringField(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  return typeof value === 'string' ? value : undefined;
}
