// Faults on real parts: a worker killed (SIGKILL) during checks and during publishing, the Temporal server
// restarted on its database while runs wait for people, and a work branch that moved under the agent.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Scenario } from '../activities/agent/scenarios';
import { ChangeRequestGateway } from '../client/gateway';
import { loadCatalog } from '../domain/catalog-loader';
import { createChangeRequestWorker, type ChangeRequestWorkers } from '../worker/create-worker';
import {
  branchCommits,
  commitToBranch,
  createWorld,
  runChannelsVia,
  demoScenarios,
  forgePulls,
  startTemporal,
  waitForPhase,
  waitForState,
  workflowBundle,
  type World,
} from './helpers/world';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';

jest.setTimeout(300_000);

const SALE = 'Show a Sale badge with the discount percentage on discounted products';
let world: World;
let demo: Scenario[];
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  // ui-kit's checks take a few seconds, so a kill can land while they run.
  world = await createWorld({ repos: { 'ui-kit': { checks: [{ name: 'test', run: 'sleep 3 && node --test', timeoutSeconds: 60 }] } } });
  demo = await demoScenarios();
});

afterAll(async () => {
  for (const p of processes) await p.kill();
  await world?.close();
});

async function expectOneCommitPerRoundAndOnePr(runId: string, repos: string[]): Promise<void> {
  const state = await world.gateway.state(runId);
  for (const repo of repos) {
    const rounds = state.repos[repo]!.commits.map((c) => c.round);
    expect(new Set(rounds).size).toBe(rounds.length);
    // One commit per round, and for the app the one that points its range at the planned ui-kit release.
    expect(await branchCommits(world, repo, `change-request/${runId}`)).toHaveLength(rounds.length + (state.repos[repo]!.rangeBump ? 1 : 0));
    const pulls = (await forgePulls(world, repo)).filter((p) => p.head.ref === `change-request/${runId}`);
    expect(pulls).toHaveLength(1);
  }
}

test('a worker killed while checks run is replaced; nothing is done twice', async () => {
  const first = await startWorkerProcess(world, demo, 'checks-1');
  processes.push(first);
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  await waitForState(world.gateway, runId, (s) => s.phase === 'checking' && s.repos['ui-kit']?.status === 'checking');
  await first.kill();

  const { stop } = await world.startWorker(demo);
  const review = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  expect(review.repos['ui-kit']!.checks).toHaveLength(1);
  expect(review.repos['ui-kit']!.checks[0]!.passed).toBe(true);
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
  await waitForPhase(world.gateway, runId, 'tracking');
  await expectOneCommitPerRoundAndOnePr(runId, ['ui-kit', 'web-app']);
  await stop();
});

test('a worker killed while pull requests are opened is replaced; no pull request is opened twice', async () => {
  // The dying worker pauses after the forge has created a pull request, before it can report it.
  const first = await startWorkerProcess(world, demo, 'publish-1', { CR_PUBLISH_DELAY_MS: '4000' });
  processes.push(first);
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
  const branch = `change-request/${runId}`;
  const deadline = Date.now() + 60_000;
  while (!(await forgePulls(world, 'ui-kit')).some((p) => p.head.ref === branch)) {
    if (Date.now() > deadline) throw new Error('no pull request was opened');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect((await world.gateway.state(runId)).phase).toBe('publishing');
  await first.kill();

  const { stop } = await world.startWorker(demo);
  const done = await waitForPhase(world.gateway, runId, 'tracking', 120_000);
  expect(Object.values(done.repos).every((r) => r.pr !== null)).toBe(true);
  await expectOneCommitPerRoundAndOnePr(runId, ['ui-kit', 'web-app']);
  await stop();
});

test('when someone pushes to the work branch meanwhile, their commit is merged in and the agent keeps its work', async () => {
  const sale = demo.find((s) => s.id === 'sale-badge')!;
  const slow: Scenario = {
    ...sale,
    id: 'moved',
    match: ['moved branch', 'sale', 'badge'],
    edit: { ...sale.edit, 'web-app': { ...sale.edit['web-app']!, initial: sale.edit['web-app']!.initial.map((t) => ({ ...t, delayMs: 1500 })) } },
  };
  const { stop } = await world.startWorker([slow, ...demo]);
  // With ui-kit: web-app's sale badge needs ui-kit's new saleBadge, installed from the run's prerelease.
  const { runId } = await world.gateway.start({ requirement: 'A moved branch sale badge', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  await waitForState(world.gateway, runId, (s) => (s.repos['web-app']?.progress?.turn ?? 0) >= 1);
  // A person pushes to the run's branch while the agent is still editing.
  await commitToBranch(world, 'web-app', `change-request/${runId}`, { 'NOTES.md': 'Pushed by a person while the agent worked.\n' }, 'Add notes');

  const review = await waitForPhase(world.gateway, runId, 'awaiting_review', 120_000);
  const files = review.repos['web-app']!.files.map((f) => f.path);
  expect(files).toEqual(expect.arrayContaining(['NOTES.md', 'src/render.js']));
  expect(review.repos['web-app']!.commits).toHaveLength(1);
  expect(review.repos['web-app']!.checks.at(-1)!.passed).toBe(true);
  const subjects = await branchCommits(world, 'web-app', `change-request/${runId}`);
  expect(subjects).toEqual(expect.arrayContaining(['Add notes', expect.stringMatching(/^web-app: .*\(round 1\)$/), expect.stringMatching(/^Merge what was pushed/)]));
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
  await stop();
});

test('the Temporal server restarted on its database: runs waiting for people carry on', async () => {
  const dbFilename = path.join(world.dataDir, 'restart.sqlite');
  const port = 17_000 + Math.floor(Math.random() * 2000);
  const gatewayFor = (env: Awaited<ReturnType<typeof startTemporal>>) => new ChangeRequestGateway(env.client, { taskQueue: world.taskQueue, catalog: () => loadCatalog(world.catalogPath) });
  const startWorker = async (env: Awaited<ReturnType<typeof startTemporal>>): Promise<{ worker: ChangeRequestWorkers; done: Promise<void> }> => {
    const worker = await createChangeRequestWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue: world.taskQueue, deps: world.activityDeps(demo, runChannelsVia(env.client)), workflowBundle: workflowBundle() });
    return { worker, done: worker.run() };
  };

  let env = await startTemporal({ dbFilename, port });
  let gateway = gatewayFor(env);
  let running = await startWorker(env);
  const waitingToConfirm = await gateway.start({ requirement: SALE, requester: 'fiona' });
  const waitingForReview = await gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  await waitForPhase(gateway, waitingToConfirm.runId, 'awaiting_confirmation');
  await waitForPhase(gateway, waitingForReview.runId, 'awaiting_review', 120_000);
  running.worker.shutdown();
  await running.done;
  await env.teardown();

  env = await startTemporal({ dbFilename, port });
  gateway = gatewayFor(env);
  running = await startWorker(env);
  try {
    expect((await gateway.state(waitingToConfirm.runId)).phase).toBe('awaiting_confirmation');
    await gateway.send(waitingToConfirm.runId, 'confirmRepos', { by: 'fiona', key: 'after-restart', repos: ['ui-kit'] });
    await gateway.send(waitingForReview.runId, 'approve', { by: 'fiona', key: 'after-restart' });
    await waitForPhase(gateway, waitingToConfirm.runId, 'awaiting_review', 120_000);
    const done = await waitForPhase(gateway, waitingForReview.runId, 'tracking', 120_000);
    expect(done.repos['ui-kit']!.pr).not.toBeNull();
    await gateway.send(waitingToConfirm.runId, 'cancel', { by: 'fiona', key: 'end' });
    await gateway.send(waitingForReview.runId, 'cancel', { by: 'fiona', key: 'end' });
  } finally {
    running.worker.shutdown();
    await running.done;
    await env.teardown();
  }
  await fs.rm(dbFilename, { force: true });
});
