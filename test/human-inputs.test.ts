// The cards' buttons come from the inputs table: each phase shows the buttons of the inputs it takes, and a
// press maps back to an input that phase accepts. Pure; no server.
import { ButtonValueSchema, CARD_ACTIONS } from '../domain/buttons';
import { PHASES, TERMINAL_PHASES } from '../domain/contracts';
import { buttonsFor, HUMAN_INPUTS, inputForButton } from '../domain/human-inputs';

const labels = (phase: (typeof PHASES)[number], selection: string[] = []) => buttonsFor(phase, selection).map((b) => `${b.label} (${b.style})`);

test('each phase shows the buttons of the inputs it takes, primary first and danger last', () => {
  expect(labels('awaiting_confirmation', ['web-app'])).toEqual(['Confirm 1 repository (primary)', 'Cancel (danger)']);
  expect(labels('awaiting_confirmation', ['web-app', 'ui-kit'])[0]).toBe('Confirm 2 repositories (primary)');
  expect(labels('awaiting_budget')).toEqual(['Extend the budget (primary)', 'Review what was done (default)', 'Cancel (danger)']);
  expect(labels('awaiting_review')).toEqual(['Approve and open pull requests (primary)', 'Give feedback (default)', 'Cancel (danger)']);
  for (const phase of ['intake', 'proposing', 'editing', 'checking', 'previewing'] as const) expect(labels(phase)).toEqual(['Cancel (danger)']);
  // Pull requests are being opened: nothing can be stopped from the card any more.
  expect(labels('publishing')).toEqual([]);
  for (const phase of TERMINAL_PHASES) expect(labels(phase)).toEqual([]);
});

test('the confirm button carries the ticked repositories back, and its press confirms exactly those', () => {
  const [confirm] = buttonsFor('awaiting_confirmation', ['web-app', 'ui-kit']);
  expect(confirm!.carries).toEqual({ selection: ['web-app', 'ui-kit'] });
  const value = ButtonValueSchema.parse({ runId: 'r', action: confirm!.action, cardVersion: 3, ...confirm!.carries });
  expect(inputForButton(value, 'fiona')).toEqual({ signal: 'confirmRepos', fields: { repos: ['web-app', 'ui-kit'] } });
});

test('every button shown sends an input its phase accepts, or (feedback) is left to the adapter to ask for the text', () => {
  for (const phase of PHASES) {
    for (const button of buttonsFor(phase, ['web-app'])) {
      const sent = inputForButton({ runId: 'r', action: button.action, cardVersion: 0, ...button.carries }, 'fiona');
      if (button.action === 'feedback') {
        expect(sent).toBeNull();
        continue;
      }
      expect(sent).not.toBeNull();
      expect(HUMAN_INPUTS[sent!.signal].phases).toContain(phase);
      // What the press adds is a valid payload once the common fields are there.
      expect(HUMAN_INPUTS[sent!.signal].payload.safeParse({ by: 'fiona', key: 'k', cardVersion: 0, ...sent!.fields }).success).toBe(true);
    }
  }
  // Toggling a repository is the card's own control, not an input.
  expect(inputForButton({ runId: 'r', action: 'toggle', cardVersion: 0, repo: 'web-app', selection: [] }, 'fiona')).toBeNull();
  expect(CARD_ACTIONS).toContain('toggle');
});
