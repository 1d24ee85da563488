// Deploys with Worker Versioning, on a real Temporal server: workers of each role on their own task queues,
// a parked run pinned to the build that started it while new runs start on the current build, runs from
// before versioning following the current build, and an operator moving a parked run off a build nobody
// serves any more, only after its history replays against the current code.
import { temporal } from '@temporalio/proto';
import { Deployments } from '../client/deployments';
import { replayAgainstCurrentCode } from '../client/replay';
import { createChangeRequestWorker, type ChangeRequestWorkers } from '../worker/create-worker';
import { taskQueueFor } from '../workflows/task-queues';
import { createWorld, demoScenarios, waitForPhase, workflowBundle, type World } from './helpers/world';

jest.setTimeout(180_000);

const PRICES = 'Show prices with the currency code, like USD 12.50, on product cards';
const DEPLOYMENT = 'change-request';
const PINNED = temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED;

let world: World;
let deployments: Deployments;

beforeAll(async () => {
  world = await createWorld();
  deployments = new Deployments(world.env.client, 'default', DEPLOYMENT, world.taskQueue);
});
const started: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.allSettled(started.map((build) => build.stop()));
  await world?.close();
});

async function startBuild(buildId: string | null): Promise<{ workers: ChangeRequestWorkers; stop(): Promise<void> }> {
  const workers = await createChangeRequestWorker({
    connection: world.env.nativeConnection,
    namespace: 'default',
    taskQueue: world.taskQueue,
    deps: world.activityDeps(await demoScenarios()),
    workflowBundle: workflowBundle(),
    identity: `build-${buildId ?? 'unversioned'}`,
    version: buildId ? { deploymentName: DEPLOYMENT, buildId } : null,
  });
  const done = workers.run();
  const build = {
    workers,
    async stop() {
      workers.shutdown();
      await done;
    },
  };
  started.push(build);
  return build;
}

async function versioningOf(runId: string): Promise<temporal.api.workflow.v1.IWorkflowExecutionVersioningInfo | null | undefined> {
  return (await world.env.client.workflow.getHandle(runId).describe()).raw.workflowExecutionInfo?.versioningInfo;
}

/** Which worker process handled the run's latest workflow task (its identity names its build). */
async function lastDecidedBy(runId: string): Promise<string | undefined> {
  const { events } = await world.env.client.workflow.getHandle(runId).fetchHistory();
  return events?.filter((e) => e.workflowTaskStartedEventAttributes).at(-1)?.workflowTaskStartedEventAttributes?.identity ?? undefined;
}

test('a parked run stays on the build that started it, new runs start on the current one, and an operator moves runs off a drained build', async () => {
  // Before versioning: one unversioned run, parked for confirmation.
  const legacy = await startBuild(null);
  const beforeVersioning = await world.gateway.start({ requirement: PRICES, requester: 'fiona' });
  await waitForPhase(world.gateway, beforeVersioning.runId, 'awaiting_confirmation');
  await legacy.stop();

  // Build A is deployed and made current; the run from before versioning follows it.
  const buildA = await startBuild('build-a');
  expect((await deployments.makeCurrent('build-a')).previous).toBeNull();
  const onA = await world.gateway.start({ requirement: PRICES, requester: 'fiona' });
  await waitForPhase(world.gateway, onA.runId, 'awaiting_confirmation');
  expect(await versioningOf(onA.runId)).toMatchObject({ behavior: PINNED, deploymentVersion: { deploymentName: DEPLOYMENT, buildId: 'build-a' } });
  await world.gateway.send(beforeVersioning.runId, 'cancel', { by: 'fiona', key: 'cancel-legacy' });
  await waitForPhase(world.gateway, beforeVersioning.runId, 'cancelled');
  expect(await lastDecidedBy(beforeVersioning.runId)).toMatch(/^build-build-a\/workflows/);

  // Build B becomes current: new runs start on it; the parked run on A is still decided by A's workers.
  const buildB = await startBuild('build-b');
  // Until B's workers have polled every queue A serves, Temporal refuses: B's steps would have nowhere to go.
  expect((await deployments.makeCurrent('build-b', { waitMs: 30_000 })).previous).toBe('build-a');
  const onB = await world.gateway.start({ requirement: PRICES, requester: 'fiona' });
  await waitForPhase(world.gateway, onB.runId, 'awaiting_confirmation');
  expect(await versioningOf(onB.runId)).toMatchObject({ behavior: PINNED, deploymentVersion: { buildId: 'build-b' } });
  // The send returns once the run has judged the input, so a workflow task has run by then.
  await world.gateway.send(onA.runId, 'addContext', { by: 'fiona', key: 'context-on-a', text: 'Use the ISO code before the amount.' });
  expect(await lastDecidedBy(onA.runId)).toMatch(/^build-build-a\/workflows/);

  // The operator's view: which build is current, who serves each, how many runs each holds.
  const report = await deployments.report();
  expect(report.current).toBe('build-b');
  const line = (buildId: string) => report.versions.find((v) => v.buildId === buildId);
  expect(line('build-a')).toMatchObject({ status: 'draining', runningRuns: 1, pollers: { workflows: 1, agent: 1, work: 1, quick: 1 } });
  expect(line('build-b')).toMatchObject({ status: 'current', runningRuns: 1, pollers: { workflows: 1, agent: 1, work: 1, quick: 1 } });
  expect(report.unversionedRuns).toBe(0);

  // A is shut down with a run still pinned to it. A run that would not replay is never moved …
  await buildA.stop();
  const refused = await deployments.moveRuns('build-a', async () => ({ ok: false, eventId: 12, message: 'a stand-in for a change that does not replay' }));
  expect(refused).toEqual({ moved: [], kept: [{ runId: onA.runId, reason: expect.stringContaining('does not replay on build-b (event 12)') }] });
  expect(await versioningOf(onA.runId)).toMatchObject({ deploymentVersion: { buildId: 'build-a' } });
  // … and one that replays against the current code moves, and goes on on B's workers.
  const moved = await deployments.moveRuns('build-a', replayAgainstCurrentCode);
  expect(moved).toEqual({ moved: [onA.runId], kept: [] });
  expect(await versioningOf(onA.runId)).toMatchObject({ versioningOverride: { pinned: { version: { buildId: 'build-b' } } } });
  await world.gateway.send(onA.runId, 'confirmRepos', { by: 'fiona', key: 'confirm-on-b', repos: ['ui-kit'] });
  await waitForState(onA.runId, async () => (await world.gateway.state(onA.runId)).phase !== 'awaiting_confirmation');
  expect(await lastDecidedBy(onA.runId)).toMatch(/^build-build-b\/workflows/);

  // Steps ran on their roles' queues.
  const { events } = await world.env.client.workflow.getHandle(onA.runId).fetchHistory();
  const queues = new Set(events?.flatMap((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name ?? []));
  expect([...queues].sort()).toEqual(expect.arrayContaining([taskQueueFor(world.taskQueue, 'agent'), taskQueueFor(world.taskQueue, 'quick')]));

  for (const runId of [onA.runId, onB.runId]) await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `end-${runId}` });
  await waitForPhase(world.gateway, onA.runId, 'cancelled');
  await buildB.stop();
});

async function waitForState(runId: string, holds: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await holds())) {
    if (Date.now() > deadline) throw new Error(`${runId}: the expected change never happened`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
