// The autonomy presets, cancelling, and bad human inputs: each refused with a reason in state while the
// run carries on as if nothing happened.
import type { Scenario } from '../activities/agent/scenarios';
import { RefusedError, UnknownRunError } from '../client/gateway';
import type { RunState } from '../domain/contracts';
import { cardFor } from '../domain/card';
import { ConversationRouter } from '../im-adapters/core/router';
import { recordHistory } from './helpers/histories';
import { createWorld, demoScenarios, forgePulls, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(180_000);

let world: World;
let scenarios: Scenario[];
let stopWorker: () => Promise<void>;
const SALE = 'Show a Sale badge with the discount percentage on discounted products';

beforeAll(async () => {
  world = await createWorld();
  const demo = await demoScenarios();
  // A copy of the sale-badge scenario whose web-app edit takes a while, to cancel it mid-flight.
  const sale = demo.find((s) => s.id === 'sale-badge')!;
  const slowWebApp = { ...sale.edit['web-app']!, initial: sale.edit['web-app']!.initial.map((t) => ({ ...t, delayMs: 2000 })) };
  // More keywords than sale-badge's, whose keywords it also contains, so that it wins (the most specific plays).
  scenarios = [{ ...sale, id: 'slow', match: ['slow', 'sale', 'badge'], requirement: `slow ${SALE}`, edit: { ...sale.edit, 'web-app': slowWebApp } }, ...demo];
  ({ stop: stopWorker } = await world.startWorker(scenarios));
});

afterAll(async () => {
  await stopWorker?.();
  await world?.close();
});

const phasesOf = (state: RunState) => state.phaseHistory.map((p) => p.phase);

test('fixed preset: no proposal and no confirmation wait, only the named repositories', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  const state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(state.proposal).toBeNull();
  expect(phasesOf(state)).toEqual(['intake', 'editing', 'checking', 'awaiting_review']);
  expect(Object.keys(state.repos)).toEqual(['ui-kit']);
  expect(state.repos['ui-kit']!.commits).toHaveLength(1);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel`, reason: 'test over' });
  await waitForPhase(world.gateway, runId, 'cancelled');
  await recordHistory(world.env.client, runId, 'fixed-preset-then-cancel');
});

test('free preset: the proposal is used without waiting, minus what the requester may not target', async () => {
  // pam (product) may not target bff-api, which the scripted proposal names: code drops it with a note.
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'pam', autonomy: 'free' });
  const state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(phasesOf(state)).not.toContain('awaiting_confirmation');
  expect(state.confirmed).toEqual(['ui-kit', 'web-app']);
  expect(state.proposal!.notes.join(' ')).toMatch(/Dropped "bff-api": the requester may not target it/);
  expect(state.repos['web-app']!.checks.at(-1)!.passed).toBe(true);
  await world.gateway.send(runId, 'cancel', { by: 'pam', key: `${runId}-cancel` });
  await waitForPhase(world.gateway, runId, 'cancelled');
  await recordHistory(world.env.client, runId, 'free-preset-out-of-scope-dropped');
});

test("the proposal's open question is set aside with the card's button; a second press is refused", async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  const card = cardFor(state);
  expect(card.sections.find((s) => s.heading === 'Open questions')!.lines).toEqual([expect.stringMatching(/^1\. Should the badge show only the percentage/)]);
  expect(card.hint).toContain('Answer the open questions with a reply, or press “Open questions: not needed”.');
  const button = card.buttons.find((b) => b.label === 'Open questions: not needed')!;
  const router = new ConversationRouter(world.gateway);
  expect(await router.onButton({ platform: 'web', person: 'pam', value: button.value, eventId: 'not-needed-1' })).toMatchObject({ kind: 'accepted' });
  state = await waitForState(world.gateway, runId, (s) => s.questions?.[0]?.answer !== null);
  expect(state.questions![0]!.answer).toMatchObject({ by: 'pam', how: 'not needed' });
  expect(cardFor(state).sections.map((s) => s.heading)).not.toContain('Open questions');
  await expect(world.gateway.send(runId, 'dismissQuestions', { by: 'pam', key: 'not-needed-2' })).rejects.toThrow(/there are no open questions/);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel` });
  await waitForPhase(world.gateway, runId, 'cancelled');
});

test("while the pull requests are followed, a reviewer's comments become a feedback round on the pull request's branch", async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
  let state = await waitForPhase(world.gateway, runId, 'tracking');
  const pr = state.repos['ui-kit']!.pr!;
  expect(cardFor(state).buttons.map((b) => b.label)).not.toContain('Work on the review comments');
  // A reviewer comments on the pull request on the forge.
  const review = await fetch(`${world.forge.apiUrl}/repos/demo/ui-kit/pulls/${pr.number}/comments`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`frank:${world.forgeToken}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ body: 'Could the sale badge be red so it stands out more?', path: 'src/badge.js', line: 3 }),
  });
  expect(review.status).toBe(201);
  state = await waitForState(world.gateway, runId, (s) => s.repos['ui-kit']!.pr!.reviewComments === 1, 30_000);
  const button = cardFor(state).buttons.find((b) => b.label === 'Work on the review comments')!;
  expect(await new ConversationRouter(world.gateway).onButton({ platform: 'web', person: 'fiona', value: button.value, eventId: `${runId}-comments` })).toMatchObject({ kind: 'accepted' });
  // One feedback round on ui-kit, pushed to the pull request's branch; then the run follows the PRs again.
  state = await waitForState(world.gateway, runId, (s) => s.rounds.length === 2 && s.phase === 'tracking', 120_000);
  expect(state.rounds[1]).toMatchObject({ kind: 'feedback', repos: ['ui-kit'], by: 'fiona', reason: 'Review comments on the pull requests:\nfrank on ui-kit src/badge.js:3: Could the sale badge be red so it stands out more?' });
  expect(state.repos['ui-kit']!.commits.map((c) => c.round)).toEqual([1, 2]);
  const [pull] = (await forgePulls(world, 'ui-kit')).filter((p) => p.number === pr.number);
  expect(pull!.head.sha).toBe(state.repos['ui-kit']!.headSha);
  expect(pull!.body).toContain('### Since the previous summary');
  expect(state.summary!.narrative).toContain('red');
  // Worked on: the button is gone, and pressing an old one again is refused.
  expect(cardFor(state).buttons.map((b) => b.label)).not.toContain('Work on the review comments');
  await expect(world.gateway.send(runId, 'addressReviewComments', { by: 'fiona', key: `${runId}-again` })).rejects.toThrow(/there are no new review comments/);
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel` });
  await waitForPhase(world.gateway, runId, 'cancelled');
});

test('cancel while waiting for confirmation ends the run cleanly', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cancel-1', reason: 'wrong requirement' });
  const state = await waitForPhase(world.gateway, runId, 'cancelled');
  expect(state.outcome).toMatchObject({ phase: 'cancelled', reason: 'wrong requirement', by: 'fiona' });
  expect(state.waiting).toBeNull();
  const description = await world.env.client.workflow.getHandle(runId).describe();
  expect(description.status.name).toBe('COMPLETED');
});

test('cancel while the agent is editing stops it promptly; nothing of that round is pushed', async () => {
  const { runId } = await world.gateway.start({ requirement: 'A slow sale badge', requester: 'fiona', autonomy: 'fixed', repos: ['web-app'] });
  await waitForState(world.gateway, runId, (s) => (s.repos['web-app']?.progress?.turn ?? 0) >= 1);
  const cancelledAt = Date.now();
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel`, reason: 'changed my mind' });
  const state = await waitForPhase(world.gateway, runId, 'cancelled');
  expect(Date.now() - cancelledAt).toBeLessThan(5000);
  expect(state.outcome).toMatchObject({ reason: 'changed my mind', by: 'fiona' });
  expect(state.repos['web-app']!.commits).toHaveLength(0);
  await recordHistory(world.env.client, runId, 'cancel-while-editing');
  const refs = await fetch(`${world.forge.url}/demo/web-app.git/info/refs?service=git-upload-pack`, { headers: { authorization: `token ${world.forgeToken}` } });
  expect(await refs.text()).not.toContain(`change-request/${runId}`);
});

test('bad inputs are refused with a reason and change nothing; the run then continues normally', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  const handle = world.env.client.workflow.getHandle(runId);
  const before = await world.gateway.state(runId);

  // Straight to the workflow, past the gateway's own checks: a malformed payload ...
  await handle.signal('confirmRepos', { by: 'fiona', key: 'bad-1', repos: 'ui-kit' });
  // ... an unknown repository, approval before review, and someone who may not decide.
  await handle.signal('confirmRepos', { by: 'fiona', key: 'bad-2', repos: ['ui-kit', 'payments'] });
  await handle.signal('approve', { by: 'fiona', key: 'bad-3' });
  await handle.signal('confirmRepos', { by: 'pam', key: 'bad-4', repos: ['ui-kit'] });
  await handle.signal('feedback', { nonsense: true });
  const state = await waitForState(world.gateway, runId, (s) => s.inputs.length >= 5);
  const refused = Object.fromEntries(state.inputs.map((i) => [i.key, i.reason]));
  expect(refused['bad-1']).toMatch(/malformed confirmRepos: .*repos/);
  expect(refused['bad-2']).toMatch(/unknown repository: payments/);
  expect(refused['bad-3']).toMatch(/approval is only possible while awaiting review/);
  expect(refused['bad-4']).toMatch(/pam may not confirm repositories: only fiona \(the requester\) or an owner/);
  expect(refused['(none)']).toMatch(/malformed feedback/);
  expect(state.inputs.every((i) => i.outcome === 'refused')).toBe(true);
  expect(state.phase).toBe('awaiting_confirmation');
  expect(state.confirmed).toEqual(before.confirmed);

  // The gateway refuses at the edge too, with the same kind of reason, and says why.
  await expect(world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'bad-5', repos: [] })).rejects.toThrow(/name at least one repository/);
  await expect(world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'bad-6', repos: ['nope'] })).rejects.toThrow(RefusedError);
  await expect(world.gateway.send('cr-does-not-exist', 'approve', { by: 'fiona', key: 'x' })).rejects.toThrow(UnknownRunError);

  // A good confirmation, then the same key again: the second changes nothing.
  await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'good-1', repos: ['ui-kit'] });
  const afterFirst = await world.gateway.state(runId);
  await handle.signal('confirmRepos', { by: 'fiona', key: 'good-1', repos: ['ui-kit', 'web-app'] });
  await handle.signal('addContext', { by: 'fiona', key: 'ctx-1', text: 'marker: processed after the repeat' });
  const afterRepeat = await waitForState(world.gateway, runId, (s) => s.inputs.some((i) => i.key === 'ctx-1'));
  expect(afterRepeat.inputs.filter((i) => i.key === 'good-1')).toHaveLength(1);
  expect(afterRepeat.confirmed).toEqual(['ui-kit']);
  expect(afterRepeat.inputs.length).toBe(afterFirst.inputs.length + 1);

  const review = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(review.repos['ui-kit']!.commits).toHaveLength(1);
  expect(review.context.map((c) => c.text)).toContain('marker: processed after the repeat');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel` });
  await waitForPhase(world.gateway, runId, 'cancelled');
  await recordHistory(world.env.client, runId, 'refused-inputs-then-confirm');
});

test('starting is refused at the edge for unknown or out-of-scope repositories, and nothing starts', async () => {
  await expect(world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['payments'] }, 'cr-refused-1')).rejects.toThrow(/unknown repository: payments/);
  await expect(world.gateway.start({ requirement: SALE, requester: 'pam', autonomy: 'fixed', repos: ['bff-api'] }, 'cr-refused-2')).rejects.toThrow(/pam may not target bff-api/);
  await expect(world.gateway.start({ requirement: ' ', requester: 'pam' }, 'cr-refused-3')).rejects.toThrow(/requirement/);
  for (const id of ['cr-refused-1', 'cr-refused-2', 'cr-refused-3']) {
    await expect(world.gateway.state(id)).rejects.toThrow(UnknownRunError);
  }
});

test('a requirement the demo model does not know fails readably, asking for a model key', async () => {
  const { runId } = await world.gateway.start({ requirement: 'Rewrite the checkout in Svelte', requester: 'fiona' });
  const state = await waitForPhase(world.gateway, runId, 'failed');
  expect(state.outcome!.reason).toMatch(/ANTHROPIC_API_KEY/);
  const description = await world.env.client.workflow.getHandle(runId).describe();
  expect(description.status.name).toBe('FAILED');
  await recordHistory(world.env.client, runId, 'unknown-requirement-fails');
});

test('a reply is taken as context before review and as feedback in review, and recorded as what it became', async () => {
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  const asContext = await world.gateway.send(runId, 'reply', { by: 'fiona', key: 'reply-1', text: 'The badge must stay readable in dark mode' });
  expect(asContext).toMatchObject({ key: 'reply-1', signal: 'addContext', outcome: 'accepted' });
  // Malformed, straight to the workflow: refused and recorded as the context it would have been.
  await world.env.client.workflow.getHandle(runId).signal('reply', { by: 'fiona', key: 'reply-2', text: '' });
  const proposal = await world.gateway.state(runId);
  await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'reply-confirm', repos: proposal.proposal!.repos.map((r) => r.id) });
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  const asFeedback = await world.gateway.send(runId, 'reply', { by: 'fiona', key: 'reply-3', text: 'Use a lighter red' });
  expect(asFeedback).toMatchObject({ signal: 'feedback', outcome: 'accepted' });
  const state = await waitForState(world.gateway, runId, (s) => s.rounds.some((r) => r.kind === 'feedback'));
  expect(state.context.map((c) => c.text)).toContain('The badge must stay readable in dark mode');
  expect(state.rounds.find((r) => r.kind === 'feedback')!.reason).toContain('Use a lighter red');
  expect(state.inputs.filter((i) => /^reply-\d/.test(i.key)).map((i) => [i.key, i.signal, i.outcome])).toEqual([
    ['reply-1', 'addContext', 'accepted'],
    ['reply-2', 'addContext', 'refused'],
    ['reply-3', 'feedback', 'accepted'],
  ]);
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-cancel` });
  await waitForPhase(world.gateway, runId, 'cancelled');
  await recordHistory(world.env.client, runId, 'replies-as-context-then-feedback');
});
