// `/change <requirement>`: a slash command leaves no message of its own in the channel, so the app posts the
// request as a root message and starts the run in that message's thread, where its card and replies live.
import type { SlashCommand } from '@slack/bolt';
import { personFor } from '../core/router';
import { escapeMrkdwn } from './blocks';
import { plainText, tellRefusal, type InboundDeps, type TellPerson } from './messages';

export const CHANGE_COMMAND = '/change';

export interface SlashCommandCalls {
  /** Posts a root message in the channel; resolves with where it landed. */
  postRoot(channel: string, text: string): Promise<{ channel: string; ts: string }>;
  /** Answers only the person who typed the command (works even where the app may not post). */
  answer(text: string): Promise<void>;
  tell: TellPerson;
}

export async function onChangeCommand(deps: InboundDeps, command: SlashCommand, calls: SlashCommandCalls): Promise<void> {
  const requirement = plainText(command.text);
  if (!requirement) {
    await calls.answer(`Describe the change: \`${CHANGE_COMMAND} Show prices with the currency code on product cards\``);
    return;
  }
  const person = personFor(await deps.loadCatalog(), 'slack', command.user_id);
  const root = await calls.postRoot(command.channel_id, `Change request from <@${command.user_id}>: ${escapeMrkdwn(requirement)}`);
  const outcome = await deps.router.onMessage({
    platform: 'slack',
    channel: root.channel,
    thread: root.ts,
    person,
    text: requirement,
    // Slack does not redeliver slash commands; the trigger id is unique per invocation all the same.
    eventId: `command:${command.trigger_id}`,
    startsRun: true,
  });
  await tellRefusal(outcome, { channel: root.channel, user: command.user_id, thread: root.ts }, calls.tell);
}
