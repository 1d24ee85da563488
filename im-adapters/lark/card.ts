// Draws a run's card (domain/card.ts) as a Feishu/Lark interactive message card, JSON 1.0 schema. Pure.
// 1.0 rather than 2.0 because it does all this card needs (in-place updates with `im.message.patch`,
// buttons whose `value` object comes back in `card.action.trigger`), renders on every client version
// (2.0 needs 7.20+ and shows older clients an "upgrade" placeholder), and the SDK types it (InteractiveCard).
import type { InteractiveCard, InteractiveCardButtonActionItem, InteractiveCardDivElement, InteractiveCardElement } from '@larksuiteoapi/node-sdk';
import type { Card, CardButton, CardChoice, CardSection } from '../../domain/card';

/**
 * Lark refuses a card message over 30 KB (code 230025). Each text is cut well inside that, so a long
 * summary shortens instead of failing the update; the check in larkCard catches what slips through.
 */
const MAX = { cardBytes: 30 * 1024, title: 200, status: 500, reason: 1000, line: 1000, section: 4000, links: 10, buttonText: 100, hint: 500 } as const;

/**
 * Characters lark_md reads as markup (bold, italics, strike, links, headings, emoji codes, code, tags), as
 * numeric character references: Lark's card Markdown documentation says to write them that way to show
 * them as they are. `&` goes first so an escape already in the text is shown, not decoded.
 */
const LARK_MD_SPECIAL = /[&<>*_~[\]()#:`\\|]/g;

export function escapeLarkMd(text: string): string {
  return text.replace(LARK_MD_SPECIAL, (c) => `&#${c.charCodeAt(0)};`);
}

export function larkCard(card: Card): InteractiveCard {
  const elements: InteractiveCardElement[] = [
    larkMd(`**Status:** ${escapeLarkMd(cut(card.status, MAX.status))}`),
    ...card.choices.map(choiceElement),
    ...card.sections.map(sectionElement),
  ];
  if (card.links.length) elements.push(larkMd(card.links.slice(0, MAX.links).map((l) => link(l.label, l.url)).join('  ·  ')));
  if (card.buttons.length) elements.push({ tag: 'action', actions: card.buttons.map(button) });
  if (card.hint) elements.push({ tag: 'note', elements: [{ tag: 'plain_text', content: cut(card.hint, MAX.hint) }] });
  const drawn: InteractiveCard = {
    // update_multi: one card everyone in the chat sees, which im.message.patch and callback answers update in place.
    config: { wide_screen_mode: true, update_multi: true },
    header: { title: { tag: 'plain_text', content: cut(card.title || 'Change request', MAX.title) }, template: 'blue' },
    elements,
  };
  const bytes = Buffer.byteLength(JSON.stringify(drawn));
  if (bytes > MAX.cardBytes) throw new Error(`the card of ${card.runId} is ${bytes} bytes; Lark takes cards of at most ${MAX.cardBytes}`);
  return drawn;
}

function choiceElement(choice: CardChoice): InteractiveCardElement {
  const mark = choice.selected ? '✅' : '⬜';
  const confidence = choice.confidence === null ? '' : ` · confidence ${Math.round(choice.confidence * 100)}%`;
  return {
    ...larkMd(`${mark} **${escapeLarkMd(choice.repo)}** (${escapeLarkMd(choice.role)})${confidence}\n${escapeLarkMd(cut(choice.reason, MAX.reason))}`),
    // The Add/Remove button sits beside its repository.
    extra: button(choice.toggle),
  };
}

function sectionElement(section: CardSection): InteractiveCardElement {
  const lines = withinBudget(section.lines.filter(Boolean).map((line) => cut(line, MAX.line)), MAX.section).map(escapeLarkMd);
  // Lark shows an image only by the image_key its upload API returns (scope im:resource, and every
  // screenshot fetched and uploaded by the worker); a link also works when only reviewers can reach previews.
  if (section.image) lines.push(link(`Screenshot: ${section.image.alt || section.heading}`, section.image.url));
  return larkMd([`**${escapeLarkMd(cut(section.heading, MAX.line))}**`, ...lines].join('\n'));
}

/** The first lines that fit in `max` characters, then a note of how many were left out. */
function withinBudget(lines: string[], max: number): string[] {
  let used = 0;
  const kept = lines.filter((line) => (used += line.length) <= max);
  return kept.length < lines.length ? [...kept, `… ${lines.length - kept.length} more`] : kept;
}

function button(source: CardButton): InteractiveCardButtonActionItem {
  return {
    tag: 'button',
    text: { tag: 'plain_text', content: cut(source.label, MAX.buttonText) },
    type: source.style,
    // Comes back whole as action.value in card.action.trigger: the adapter needs nothing else.
    value: source.value,
    // Cancelling ends the run for everyone in the thread: ask before sending it.
    ...(source.value.action === 'cancel'
      ? { confirm: { title: { tag: 'plain_text', content: 'Cancel this change request?' }, text: { tag: 'plain_text', content: 'The agents stop and nothing is published.' } } }
      : {}),
  };
}

/** A lark_md link for http(s) addresses; anything else is shown as text, never as a link. */
function link(label: string, url: string): string {
  let href: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return escapeLarkMd(`${label}: ${url}`);
    // Parentheses would end the Markdown link early.
    href = parsed.href.replace(/\(/g, '%28').replace(/\)/g, '%29');
  } catch {
    return escapeLarkMd(`${label}: ${url}`);
  }
  return `[${escapeLarkMd(label)}](${href})`;
}

function larkMd(content: string): InteractiveCardDivElement {
  return { tag: 'div', text: { tag: 'lark_md', content } };
}

/** Cuts raw text (before escaping, so no escape is cut in half). */
function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
