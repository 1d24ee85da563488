// policy.deciders: owners-not-requester. The requester confirms and gives feedback as usual, but may not
// approve publishing: each changed repository needs an approval from one of its owners other than the
// requester, and the card says who that is.
import { cardFor } from '../domain/card';
import type { RunState } from '../domain/contracts';
import { createWorld, demoScenarios, forgePulls, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(180_000);

let world: World;

beforeAll(async () => {
  // ui-kit is owned by the frontend group (fiona, frank); web-app by fiona and bob.
  world = await createWorld({ policy: { deciders: 'owners-not-requester' }, repos: { 'web-app': { owners: ['fiona', 'bob'] } } });
});
afterAll(async () => world?.close());

const verdict = (state: RunState, key: string) => state.inputs.find((i) => i.key === key);

test("the requester's approval is refused with a reason; an owner of each changed repository approves, and the PRs open", async () => {
  const { stop } = await world.startWorker(await demoScenarios());
  try {
    const { runId } = await world.gateway.start({ requirement: 'Show a Sale badge with the discount percentage on discounted products', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
    let state = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
    expect(state.approvals).toEqual({ needed: [{ repo: 'ui-kit', owners: ['frank'] }, { repo: 'web-app', owners: ['bob'] }], given: [] });
    let card = cardFor(state);
    expect(card.sections.find((s) => s.heading === 'Approvals')!.lines).toEqual(['ui-kit: needs an owner (frank)', 'web-app: needs an owner (bob)']);
    expect(card.hint).toContain('fiona asked for this change, so the approval must come from an owner of ui-kit (frank) and of web-app (bob).');

    // The gateway waits for the run's verdict and throws when it refuses; the state keeps the record too.
    const send = async (by: string, key: string) => {
      await world.gateway.send(runId, 'approve', { by, key }).catch((error: Error) => expect(error.message).toMatch(/^approve refused: /));
      return waitForState(world.gateway, runId, (s) => verdict(s, key) !== undefined);
    };
    state = await send('fiona', 'approve-by-requester');
    expect(verdict(state, 'approve-by-requester')).toMatchObject({ outcome: 'refused', reason: 'fiona asked for this change, so another person must approve it (policy owners-not-requester): an owner of ui-kit (frank) and of web-app (bob)' });
    state = await send('pam', 'approve-by-pam');
    expect(verdict(state, 'approve-by-pam')).toMatchObject({ outcome: 'refused', reason: 'pam may not approve: only an owner of the changed repositories other than fiona (the requester) may' });

    // frank's approval covers ui-kit; the run keeps waiting for web-app's.
    state = await send('frank', 'approve-by-frank');
    expect(verdict(state, 'approve-by-frank')).toMatchObject({ outcome: 'accepted' });
    expect(state.phase).toBe('awaiting_review');
    expect(state.approvals!.given).toEqual([{ by: 'frank', at: expect.any(Number), repos: ['ui-kit'] }]);
    card = cardFor(state);
    expect(card.sections.find((s) => s.heading === 'Approvals')!.lines).toEqual(['ui-kit: approved by frank', 'web-app: needs an owner (bob)']);
    state = await send('frank', 'approve-by-frank-again');
    expect(verdict(state, 'approve-by-frank-again')).toMatchObject({ outcome: 'refused', reason: 'ui-kit is already approved; still needed: an owner of web-app (bob)' });

    state = await send('bob', 'approve-by-bob');
    expect(verdict(state, 'approve-by-bob')).toMatchObject({ outcome: 'accepted' });
    state = await waitForState(world.gateway, runId, (s) => s.phase === 'tracking' || s.phase === 'done' || s.phase === 'failed', 120_000);
    expect(state.phase).toBe('tracking');
    for (const repo of ['ui-kit', 'web-app']) expect((await forgePulls(world, repo)).some((p) => p.head.ref === `change-request/${runId}`)).toBe(true);
  } finally {
    await stop();
  }
});
