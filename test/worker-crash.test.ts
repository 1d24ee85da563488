// A worker dies (SIGKILL) in the middle of editing; another worker takes over. The run finishes with
// exactly one commit per round per repository and one pull request per repository.
import { temporal } from '@temporalio/proto';
import type { Scenario } from '../activities/agent/scenarios';
import { recordHistory } from './helpers/histories';
import { formatTimeline, Operator } from '../client/operator';
import { branchCommits, createWorld, demoScenarios, forgePulls, waitForPhase, waitForState, type World } from './helpers/world';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';
import { PolicySchema } from '../domain/catalog-schema';

const DEFAULT_POLICY_HEARTBEAT = PolicySchema.parse({}).activityHeartbeatTimeout;

jest.setTimeout(240_000);

let world: World;
const SALE = 'Show a Sale badge with the discount percentage on discounted products';

beforeAll(async () => {
  // The production heartbeat timeout (the catalog's default), not the tests' usual 5 s: recovery is timed here.
  world = await createWorld({ policy: { activityHeartbeatTimeout: undefined } });
});
let first: WorkerProcess | undefined;
afterAll(async () => {
  await first?.kill();
  await world?.close();
});

/** The sale-badge scenario, with the web-app edit slowed down so the kill lands mid-loop. */
function slowWebApp(scenarios: Scenario[]): Scenario[] {
  return scenarios.map((s) => {
    if (s.id !== 'sale-badge') return s;
    const webApp = s.edit['web-app']!;
    return { ...s, edit: { ...s.edit, 'web-app': { ...webApp, initial: webApp.initial.map((turn) => ({ ...turn, delayMs: 1500 })) } } };
  });
}

/** The web-app edit's second attempt has been picked up by a worker. */
async function secondAttemptRuns(runId: string): Promise<boolean> {
  const { raw } = await world.env.client.workflow.getHandle(runId).describe();
  return (raw.pendingActivities ?? []).some(
    (p) => p.activityType?.name === 'editRepository' && (p.attempt ?? 1) >= 2 && p.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
  );
}

test('a worker killed mid-edit is replaced and nothing is duplicated', async () => {
  const scenarios = slowWebApp(await demoScenarios());
  first = await startWorkerProcess(world, scenarios, 'first');
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'bff-api', 'web-app'] });

  // The web-app agent has taken at least one step when the machine "dies".
  const midEdit = await waitForState(world.gateway, runId, (s) => (s.repos['web-app']?.progress?.turn ?? 0) >= 1);
  expect(midEdit.phase).toBe('editing');
  expect(DEFAULT_POLICY_HEARTBEAT).toBe(20_000);
  await first.kill();
  const killedAt = Date.now();
  // Another worker is running, as in production: the lost step moves to it once the heartbeat times out.
  const { stop } = await world.startWorker(scenarios);
  const operator = new Operator(world.env.client, world.gateway, world.env.namespace ?? 'default');
  let shown = '';
  let recoveredAfterMs = Infinity;
  for (const until = killedAt + 40_000; recoveredAfterMs === Infinity && Date.now() < until; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    shown = formatTimeline(await operator.timeline(runId));
    if (await secondAttemptRuns(runId)) recoveredAfterMs = Date.now() - killedAt;
  }
  // The operator sees why the step ran again: its worker was lost.
  expect(shown).toMatch(/editRepository\s+edit web-app · round 1 \(initial\)\s+2 attempts[^\n]*running\n\s+retrying: the worker was lost/);
  // 20 s without a heartbeat, a 2 s retry backoff, and the other worker's poll: well within 30 s.
  expect(recoveredAfterMs).toBeLessThan(30_000);
  if (process.env.SHOW_FIGURES) console.log(`recovered after ${recoveredAfterMs} ms`);

  const review = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  for (const repo of ['ui-kit', 'bff-api', 'web-app']) {
    expect(review.repos[repo]!.commits).toHaveLength(1);
    expect(review.repos[repo]!.checks.at(-1)!.passed).toBe(true);
  }
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: 'approve' });
  const done = await waitForPhase(world.gateway, runId, 'tracking');
  for (const repo of ['ui-kit', 'bff-api', 'web-app']) {
    const pulls = await forgePulls(world, repo);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]!.head.sha).toBe(done.repos[repo]!.headSha);
    expect(await branchCommits(world, repo, `change-request/${runId}`)).toHaveLength(done.repos[repo]!.rangeBump ? 2 : 1);
  }
  // The interrupted edit was retried by the new worker: a second attempt in history.
  const history = await world.env.client.workflow.getHandle(runId).fetchHistory();
  const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!);
  expect(Math.max(...started.map((s) => s.attempt ?? 1))).toBeGreaterThanOrEqual(2);
  await recordHistory(world.env.client, runId, 'worker-killed-mid-edit');
  await stop();
});
