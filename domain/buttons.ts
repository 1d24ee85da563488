// What a card button is and what it carries back. Kept apart from the card so the inputs table can say which
// buttons send each input and the card can draw them from it, without the two importing each other. Pure.
import { z } from 'zod';

export const CARD_ACTIONS = ['toggle', 'confirm', 'approve', 'feedback', 'cancel', 'extend', 'review_partial', 'questions_not_needed', 'review_comments'] as const;
export type CardAction = (typeof CARD_ACTIONS)[number];

/** What a button carries back: enough to act without any state kept by the adapter. */
export const ButtonValueSchema = z.object({
  runId: z.string().min(1).max(200),
  action: z.enum(CARD_ACTIONS),
  cardVersion: z.number().int().min(0),
  /** For confirm: the selected repositories; for toggle: the selection before the toggle. */
  selection: z.array(z.string()).max(50).optional(),
  /** For toggle: the repository to add or remove. */
  repo: z.string().optional(),
});
export type ButtonValue = z.infer<typeof ButtonValueSchema>;

export type ButtonStyle = 'primary' | 'danger' | 'default';

export interface CardButton {
  label: string;
  style: ButtonStyle;
  value: ButtonValue;
}
