// Draws a run's card (domain/card.ts) in Slack's Block Kit. Pure. Slack rejects a whole message when one
// field breaks a limit, so every text is cut to what its field takes and button values are checked here,
// where the cause is plain, rather than as an `invalid_blocks` from the API.
import type { types } from '@slack/bolt';
import type { Card, CardButton, CardChoice, CardSection } from '../../domain/card';

type KnownBlock = types.KnownBlock;
type Button = types.Button;

/** Block Kit's limits for the fields used here (docs.slack.dev/reference/block-kit). */
const MAX = { blocks: 50, headerText: 150, text: 3000, buttonText: 75, buttonValue: 2000, altText: 2000 } as const;

/** Every action id on a card starts with this, so the adapter listens to its own buttons only. */
export const ACTION_ID_PREFIX = 'cr:';

/** Slack reads `&`, `<` and `>` as markup (links, mentions, `<!channel>`); text from people and agents must not be. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function cardBlocks(card: Card): KnownBlock[] {
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(card.title || 'Change request', MAX.headerText) } },
    mrkdwnSection(`*Status:* ${escapeMrkdwn(card.status)}`),
    ...card.choices.map(choiceBlock),
    ...card.sections.flatMap(sectionBlocks),
  ];
  if (card.links.length) blocks.push(mrkdwnSection(card.links.map((l) => `<${escapeMrkdwn(l.url)}|${escapeMrkdwn(l.label)}>`).join('  ·  ')));
  if (card.buttons.length) blocks.push({ type: 'actions', elements: card.buttons.map((b) => button(b, `${ACTION_ID_PREFIX}${b.value.action}`)) });
  if (card.hint) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: cut(escapeMrkdwn(card.hint), MAX.text) }] });
  if (blocks.length > MAX.blocks) throw new Error(`the card of ${card.runId} needs ${blocks.length} Slack blocks; a message may have ${MAX.blocks}`);
  return blocks;
}

function choiceBlock(choice: CardChoice): KnownBlock {
  const mark = choice.selected ? ':white_check_mark:' : ':white_large_square:';
  const confidence = choice.confidence === null ? '' : ` · confidence ${Math.round(choice.confidence * 100)}%`;
  return {
    ...mrkdwnSection(`${mark} *${escapeMrkdwn(choice.repo)}* (${escapeMrkdwn(choice.role)})${confidence}\n${escapeMrkdwn(choice.reason)}`),
    // One toggle per repository: its id must differ from its neighbours' on the same message.
    accessory: button(choice.toggle, `${ACTION_ID_PREFIX}toggle:${choice.repo}`),
  };
}

function sectionBlocks(section: CardSection): KnownBlock[] {
  const lines = section.lines.filter(Boolean).map(escapeMrkdwn);
  const blocks: KnownBlock[] = [mrkdwnSection([`*${escapeMrkdwn(section.heading)}*`, ...lines].join('\n'))];
  if (section.image && slackCanFetch(section.image.url)) {
    blocks.push({ type: 'image', image_url: section.image.url, alt_text: cut(section.image.alt || section.heading, MAX.altText) });
  }
  return blocks;
}

function button(source: CardButton, actionId: string): Button {
  const value = JSON.stringify(source.value);
  if (value.length > MAX.buttonValue) {
    throw new Error(`the "${source.label}" button of ${source.value.runId} carries ${value.length} characters; Slack allows ${MAX.buttonValue} in a button value`);
  }
  return {
    type: 'button',
    action_id: actionId,
    text: { type: 'plain_text', text: cut(source.label, MAX.buttonText) },
    value,
    ...(source.style === 'default' ? {} : { style: source.style }),
    // Cancelling ends the run for everyone in the thread: ask before sending it.
    ...(source.value.action === 'cancel'
      ? {
          confirm: {
            title: { type: 'plain_text', text: 'Cancel this change request?' },
            text: { type: 'plain_text', text: 'The agents stop and nothing is published.' },
            confirm: { type: 'plain_text', text: 'Cancel it' },
            deny: { type: 'plain_text', text: 'Keep going' },
            style: 'danger',
          },
        }
      : {}),
  };
}

function mrkdwnSection(text: string): types.SectionBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: cut(text, MAX.text) } };
}

/**
 * Slack downloads images itself and fails the whole message when it cannot, so a screenshot served on a
 * loopback or private address (the embedded preview server's default) is shown as its link only.
 */
function slackCanFetch(url: string): boolean {
  let host: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
    host = parsed.hostname;
  } catch {
    return false;
  }
  return !/^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|0\.0\.0\.0$|\[::1?\]$|\[f[cd])/i.test(host);
}

/** Shortens to `max` characters without leaving half an escape (`&am…`) behind. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 1).replace(/&[a-z]*$/, '')}…`;
}
