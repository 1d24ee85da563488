// The command line against a real server: start, show, confirm, and one clear line with a non-zero exit
// for an unknown run, a refused input or a server that cannot be reached.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createWorld, demoScenarios, PROJECT_ROOT, waitForPhase, type World } from './helpers/world';

jest.setTimeout(120_000);

let world: World;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  world = await createWorld();
  ({ stop: stopWorker } = await world.startWorker(await demoScenarios()));
});
afterAll(async () => {
  await stopWorker?.();
  await world?.close();
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = promisify(execFile);
  return run(process.execPath, [require.resolve('tsx/cli'), path.join(PROJECT_ROOT, 'client', 'cli.ts'), ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: world.env.address, TEMPORAL_TASK_QUEUE: world.taskQueue, CATALOG_PATH: world.catalogPath, ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

test('a person drives a run from the command line', async () => {
  const demos = await cli(['demos']);
  expect(demos.stdout).toContain('Show prices with the currency code');

  const started = await cli(['start', '--as', 'fiona', 'Show prices with the currency code, like USD 12.50, on product cards']);
  expect(started.code).toBe(0);
  const runId = /Started (cr-[0-9a-f-]+)\./.exec(started.stdout)![1]!;
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');

  const shown = await cli(['show', runId]);
  expect(shown.stdout).toContain('AWAITING_CONFIRMATION');
  expect(shown.stdout).toMatch(/ui-kit \(90%\): formatPrice/);

  const refused = await cli(['confirm', runId, '--as', 'pam']);
  expect(refused.code).toBe(1);
  expect(refused.stderr.trim().split('\n')).toEqual(['confirmRepos refused: pam may not confirm repositories: only fiona (the requester) or an owner of the repositories may']);

  // Each input's subcommand comes from the CLI's table; the run judges what it is sent.
  const context = await cli(['context', runId, '--as', 'fiona', 'Use', 'the', 'ISO', 'code']);
  expect(context.stdout.trim()).toBe('Context added.');
  expect((await world.gateway.state(runId)).inputs.find((i) => i.signal === 'addContext')).toMatchObject({ by: 'fiona', outcome: 'accepted' });
  const early = await cli(['approve', runId, '--as', 'fiona', '--release', 'ui-kit=major']);
  expect(early.stderr.trim()).toBe('approve refused: approval is only possible while awaiting review (the run is awaiting_confirmation)');
  const badRelease = await cli(['approve', runId, '--as', 'fiona', '--release', 'ui-kit']);
  expect(badRelease.code).toBe(1);
  expect(badRelease.stderr).toContain('--release ui-kit: write it as <repo>=<major|minor|patch>');

  const confirmed = await cli(['confirm', runId, '--as', 'fiona']);
  expect(confirmed.stdout).toContain('Confirmed ui-kit, web-app.');
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  const cancelled = await cli(['cancel', runId, '--as', 'fiona', '--reason', 'demo over']);
  expect(cancelled.code).toBe(0);
  expect((await waitForPhase(world.gateway, runId, 'cancelled')).outcome!.reason).toBe('demo over');
});

test('errors are one clear line and a non-zero exit', async () => {
  const unknown = await cli(['show', 'cr-20990101-deadbeef']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr.trim()).toBe('no run with id cr-20990101-deadbeef');

  const unreachable = await cli(['runs', 'list'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
  expect(unreachable.stderr).toMatch(/^cannot reach the Temporal server at 127\.0\.0\.1:1/);

  // Without --as or CR_USER the CLI does not act as the machine's login name: it refuses, naming people.
  const nobody = await cli(['start', 'Add a thing'], { CR_USER: '' });
  expect(nobody.code).toBe(1);
  expect(nobody.stderr.trim()).toMatch(/^say who you are with --as <person> or CR_USER=<person>; the catalog knows .*\bfiona\b/);
  expect((await cli(['runs', 'list'])).stdout).not.toContain('Add a thing');
  const asEnv = await cli(['start', 'Add a thing'], { CR_USER: 'fiona' });
  const second = /Started (cr-[0-9a-f-]+)\./.exec(asEnv.stdout)![1]!;
  expect((await world.gateway.state(second)).request.requester).toBe('fiona');

  const badRepo = await cli(['start', '--as', 'fiona', '--autonomy', 'fixed', '--repos', 'payments', 'Add a thing']);
  expect(badRepo.code).toBe(1);
  expect(badRepo.stderr.trim()).toMatch(/^unknown repository: payments/);
});
