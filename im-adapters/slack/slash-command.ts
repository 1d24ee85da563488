// `/change <requirement>`: a slash command leaves no message of its own in the channel, so the app posts the
// request as a root message and starts the run in that message's thread, where its card and replies live.
// Both are idempotent across adapter restarts: the root message carries the command's trigger id and is
// looked for before posting (Slack's history is the durable record), and the run id comes from the root
// message, so the same command always lands on the same message and the same run.
import type { SlashCommand } from '@slack/bolt';
import type { EventDeduper } from '../core/dedupe';
import { personFor } from '../core/router';
import { escapeMrkdwn } from './blocks';
import { plainText, tellRefusal, type InboundDeps, type TellPerson } from './messages';

export const CHANGE_COMMAND = '/change';

export interface SlashCommandCalls {
  /** The root message for this trigger: the one already posted for it, or a new one; resolves with where it is. */
  postRoot(channel: string, text: string, triggerKey: string): Promise<{ channel: string; ts: string }>;
  /** Answers only the person who typed the command (works even where the app may not post). */
  answer(text: string): Promise<void>;
  tell: TellPerson;
}

/** `seen`: this adapter's record of commands in hand, so two deliveries at once do not both post. */
export async function onChangeCommand(deps: InboundDeps, command: SlashCommand, calls: SlashCommandCalls, seen: EventDeduper): Promise<void> {
  const requirement = plainText(command.text);
  if (!requirement) {
    await calls.answer(`Describe the change: \`${CHANGE_COMMAND} Show prices with the currency code on product cards\``);
    return;
  }
  const eventId = `command:${command.trigger_id}`;
  // Two deliveries of one command at once in this process would both look before either posts.
  if (!seen.firstTime(eventId)) return;
  const person = personFor(await deps.loadCatalog(), 'slack', command.user_id);
  const root = await calls.postRoot(command.channel_id, `Change request from <@${command.user_id}>: ${escapeMrkdwn(requirement)}`, command.trigger_id);
  const outcome = await deps.router.onMessage({
    platform: 'slack',
    channel: root.channel,
    thread: root.ts,
    person,
    text: requirement,
    eventId,
    startsRun: true,
  });
  await tellRefusal(outcome, { channel: root.channel, user: command.user_id, thread: root.ts }, calls.tell);
}
