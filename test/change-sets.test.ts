// The change set is one thing: a dependent repository is installed, checked and previewed against the
// in-flight changes of the repositories it depends on (ui-kit published to a real Verdaccio as the run's
// prerelease, bff-api running as a service preview that web-app's preview reads from), and the PRs carry
// the merge and release plan instead of any pin to the run.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { chromium, type Browser } from 'playwright-core';
import type { Scenario } from '../activities/agent/scenarios';
import { readPackument } from '../activities/packages/npm';
import { listServicesOnHost } from '../previews/control-client';
import { isProcessGroupAlive } from '../previews/process-group';
import { cardFor } from '../domain/card';
import { shortRunId } from '../domain/change-set';
import { renderSummaryMarkdown } from '../domain/summary';
import { recordHistory } from './helpers/histories';
import { createWorld, demoScenarios, forgePulls, waitForPhase, waitForState, type World } from './helpers/world';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';

jest.setTimeout(240_000);

const SALE = 'Show a Sale badge with the discount percentage on discounted products';
const BROKEN = 'Mark the ui-kit release as broken for the change-set test';

let world: World;
let browser: Browser;
let scenarios: Scenario[];

/** A scenario whose ui-kit round leaves a file that makes the package's publish build fail. */
function brokenBuildScenario(): Scenario {
  const finish = (summary: string) => ({ calls: [{ name: 'finish', input: { summary } }], expect: [], delayMs: 0 });
  return {
    id: 'broken-build',
    requirement: BROKEN,
    match: ['broken', 'change-set test'],
    propose: [],
    edit: {
      'ui-kit': { initial: [{ calls: [{ name: 'write_file', input: { path: 'BROKEN', content: 'the publish build refuses to run while this file exists\n' } }], expect: [], delayMs: 0 }, finish('Left a BROKEN marker.')], fix: [], feedback: [], continue: [] },
      'web-app': {
        initial: [
          { calls: [{ name: 'write_file', input: { path: 'NOTES.md', content: '# Notes\n\nThe storefront renders prices with ui-kit.\n' } }], expect: [], delayMs: 0 },
          finish('Added a short notes file about how the storefront uses ui-kit.'),
        ],
        fix: [],
        feedback: [],
        continue: [],
      },
    },
  };
}

beforeAll(async () => {
  world = await createWorld({
    policy: { maxFixRounds: 0 },
    // The publish build fails while the scenario's BROKEN marker is in the checkout.
    repos: { 'ui-kit': { publish: { name: '@acme/ui-kit', release: 'minor', build: { name: 'build', run: 'test ! -e BROKEN || { echo "BROKEN marker present: refusing to build" >&2; exit 3; }', timeoutSeconds: 30 } } } },
  });
  scenarios = [...(await demoScenarios()), brokenBuildScenario()];
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

async function fileOnBranch(repo: string, branch: string, file: string): Promise<string> {
  const url = new URL(`${world.forge.url}/demo/${repo}.git`);
  url.username = 'x';
  url.password = world.forgeToken;
  const dir = await fs.mkdtemp(path.join(world.dataDir, `read-${repo}-`));
  const git = promisify(execFile);
  await git('git', ['clone', '--quiet', '--depth', '1', '--branch', branch, url.toString(), dir], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  return fs.readFile(path.join(dir, file), 'utf8');
}

test('three repositories are checked and previewed as one change set, and the PRs carry the release plan', async () => {
  const { stop } = await world.startWorker(scenarios);
  const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona' });
  await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'confirm', repos: ['ui-kit', 'bff-api', 'web-app'] });
  let state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
  const version = `1.4.0-cr.${shortRunId(runId)}.1`;

  // ui-kit's round was published before web-app was edited and checked; web-app's checks installed it.
  expect(state.repos['ui-kit']!.publishes).toEqual([expect.objectContaining({ round: 1, status: 'published', name: '@acme/ui-kit', version, sha: state.repos['ui-kit']!.headSha })]);
  const packument = await readPackument(world.registry, '@acme/ui-kit');
  expect(packument!.versions[version]).toMatchObject({ gitHead: state.repos['ui-kit']!.headSha });
  expect(packument!['dist-tags'][`cr-${shortRunId(runId)}`]).toBe(version);
  const webChecks = state.repos['web-app']!.checks;
  expect(webChecks.map((c) => c.passed)).toEqual([true]);
  expect(webChecks[0]!.against).toEqual([{ repo: 'ui-kit', name: '@acme/ui-kit', source: 'run', version, installed: version }]);
  expect(webChecks[0]!.results.map((r) => r.name)).toEqual(['install', 'change set', 'test', 'build']);

  // One change-set preview: bff-api's changed API running, web-app's page built against it.
  const api = state.previews.find((p) => p.repo === 'bff-api')!;
  const web = state.previews.find((p) => p.repo === 'web-app')!;
  expect(api).toMatchObject({ kind: 'service', status: 'ready', sha: state.repos['bff-api']!.headSha });
  expect(web).toMatchObject({ kind: 'static', status: 'ready', sha: state.repos['web-app']!.headSha });
  expect(api.url).toBe(`${api.rootUrl}api/products`);
  expect(web.upstream.previews).toEqual([{ repo: 'bff-api', sha: api.sha, url: api.rootUrl, variable: 'API_URL' }]);
  expect(web.upstream.packages).toEqual([expect.objectContaining({ name: '@acme/ui-kit', source: 'run', version })]);
  const products = (await (await fetch(new URL('api/products', api.rootUrl!))).json()) as { products: { discountPercent: number }[] };
  expect(products.products.filter((p) => p.discountPercent > 0)).toHaveLength(2); // the changed API's data
  const page = await browser.newPage();
  await page.goto(web.url!);
  expect(await page.locator('.badge--sale').allTextContents()).toEqual(['Sale −20%', 'Sale −15%']);
  expect(await page.locator('footer').textContent()).toContain(`products from ${new URL('api/products', api.rootUrl!).href}`);
  // The change-set page names what runs, repo@sha each.
  expect(web.changeSetUrl).toBe(`${world.previewServer.url}/${runId}/`);
  await page.goto(web.changeSetUrl!);
  const listing = await page.locator('body').textContent();
  for (const preview of [api, web]) expect(listing).toContain(`${preview.repo}@${preview.sha.slice(0, 7)}`);
  expect(listing).toContain(version);
  await page.close();
  const card = cardFor(state);
  expect(card.links).toContainEqual({ label: 'Change set preview', url: web.changeSetUrl });
  expect(card.sections.find((s) => s.heading === 'Change set preview')!.lines.join('\n')).toContain(`web-app@${web.sha.slice(0, 7)}`);
  expect(card.sections.find((s) => s.heading === 'Repositories')!.lines.find((l) => l.startsWith('web-app'))).toContain(`against @acme/ui-kit@${version} (this run)`);

  // The plan, visible before approval: ui-kit's next minor first, web-app waits for it.
  expect(state.summary!.releasePlan).toEqual([
    { repo: 'ui-kit', release: { name: '@acme/ui-kit', version: '1.5.0', bump: 'minor', from: '1.4.0', by: null }, needs: [] },
    { repo: 'web-app', release: null, needs: [{ repo: 'ui-kit', name: '@acme/ui-kit', range: '^1.5.0' }] },
  ]);
  const services = await listServicesOnHost({ url: world.previewServer.url, token: world.previewServer.token });
  const apiService = services.find((s) => s.runId === runId && s.repo === 'bff-api')!;
  expect(apiService.status).toBe('ready');

  await world.gateway.send(runId, 'approve', { by: 'fiona', key: 'approve' });
  state = await waitForPhase(world.gateway, runId, 'tracking');
  const branch = `change-request/${runId}`;
  const [uiPull] = await forgePulls(world, 'ui-kit');
  const [webPull] = await forgePulls(world, 'web-app');
  expect(uiPull!.body).toContain('release @acme/ui-kit 1.5.0 (next minor, from 1.4.0)');
  expect(webPull!.body).toContain(`**This pull request is blocked by [ui-kit #${uiPull!.number}]`);
  expect(webPull!.body).toContain(`checked against @acme/ui-kit@${version} (this run)`);
  // web-app's branch depends on the planned release, never on the run's prerelease.
  const manifest = JSON.parse(await fileOnBranch('web-app', branch, 'package.json')) as { dependencies: Record<string, string> };
  expect(manifest.dependencies['@acme/ui-kit']).toBe('^1.5.0');
  expect(await fileOnBranch('web-app', branch, 'package.json')).not.toMatch(/-cr\.|cr-|change-request\//);
  expect(state.repos['web-app']!.rangeBump!.message).toContain('depend on @acme/ui-kit ^1.5.0 (planned release)');
  expect(state.repos['web-app']!.headSha).toBe(state.repos['web-app']!.rangeBump!.sha);
  // The repository's change is still its whole change against main, the bump included.
  expect(state.repos['web-app']!.files.map((f) => f.path)).toEqual(expect.arrayContaining(['package.json', 'src/render.js', 'test/render.test.js']));
  expect(renderSummaryMarkdown(state.summary!)).toContain('### Merge and release plan');

  // While the pull requests are open, the API's preview runs for their reviewers. Once each is closed on
  // the forge, the run is over: its service preview is stopped, with no process left behind.
  expect((await listServicesOnHost({ url: world.previewServer.url, token: world.previewServer.token })).find((s) => s.runId === runId && s.repo === 'bff-api')!.status).toBe('ready');
  for (const repo of ['ui-kit', 'bff-api', 'web-app']) {
    const closed = await fetch(`${world.forge.apiUrl}/repos/demo/${repo}/pulls/${state.repos[repo]!.pr!.number}`, { method: 'PATCH', headers: { authorization: `token ${world.forgeToken}`, 'content-type': 'application/json' }, body: '{"state":"closed"}' });
    expect(closed.status).toBe(200);
  }
  state = await waitForPhase(world.gateway, runId, 'done', 60_000);
  expect(state.previews.every((p) => p.status === 'removed')).toBe(true);
  expect((await listServicesOnHost({ url: world.previewServer.url, token: world.previewServer.token })).filter((s) => s.runId === runId)).toEqual([]);
  expect(await isProcessGroupAlive(apiService.pid!)).toBe(false);
  await recordHistory(world.env.client, runId, 'change-set-three-repos-approve');
  await stop();
});

test('with change sets switched off, the app is checked against the released package, and that check fails', async () => {
  const catalog = YAML.parse(await fs.readFile(world.catalogPath, 'utf8')) as { policy: Record<string, unknown> };
  catalog.policy.integrateChangeSets = false;
  await fs.writeFile(world.catalogPath, YAML.stringify(catalog));
  const { stop } = await world.startWorker(scenarios);
  try {
    const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
    const state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    expect(state.repos['ui-kit']!.publishes).toEqual([]);
    const check = state.repos['web-app']!.checks[0]!;
    expect(check.passed).toBe(false);
    expect(check.against).toEqual([expect.objectContaining({ name: '@acme/ui-kit', source: 'released', version: null, installed: '1.4.0' })]);
    expect(check.results.find((r) => r.name === 'test')!.outputTail).toMatch(/does not provide an export named 'saleBadge'/);
    expect(state.summary!.risks.join('\n')).toContain("web-app: checked against the released @acme/ui-kit, not this run's change to ui-kit");
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cancel-off' });
    await waitForPhase(world.gateway, runId, 'cancelled');
  } finally {
    catalog.policy.integrateChangeSets = true;
    await fs.writeFile(world.catalogPath, YAML.stringify(catalog));
    await stop();
  }
});

test('a package whose build fails is reported, and its dependents are still checked against what exists', async () => {
  const { stop } = await world.startWorker(scenarios);
  try {
    const { runId } = await world.gateway.start({ requirement: BROKEN, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
    const state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    const [publish] = state.repos['ui-kit']!.publishes;
    expect(publish).toMatchObject({ round: 1, status: 'failed' });
    expect(publish!.output).toContain('BROKEN marker present: refusing to build');
    const check = state.repos['web-app']!.checks[0]!;
    expect(check.passed).toBe(true);
    expect(check.against).toEqual([expect.objectContaining({ source: 'released', installed: '1.4.0', note: expect.stringContaining('round 1 could not be published') })]);
    expect(state.summary!.risks.join('\n')).toContain('ui-kit: round 1 could not be published to the registry, so its dependents were checked against the released version');
    expect(state.lastError?.message).toContain('ui-kit: round 1 could not be published');
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cancel-broken' });
    await waitForPhase(world.gateway, runId, 'cancelled');
    await recordHistory(world.env.client, runId, 'change-set-package-build-failed');
  } finally {
    await stop();
  }
});

/**
 * A registry in front of the real one that carries out the first publish of a package and then never
 * answers it: the worker dies in the worst moment, after the registry stored the version and before the
 * worker could record it.
 */
async function registryThatLosesAPublishAnswer(target: string, onPublishStored: () => void): Promise<{ url: string; close(): Promise<void> }> {
  let held = false;
  const server = http.createServer((request, response) => {
    const upstream = http.request(new URL(request.url!, target), { method: request.method, headers: { ...request.headers, host: new URL(target).host } }, (answer) => {
      if (request.method === 'PUT' && !held) {
        held = true;
        answer.resume();
        onPublishStored();
        return; // the answer is lost
      }
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('a worker killed mid-publish leaves exactly one prerelease per package and round', async () => {
  let first: WorkerProcess | undefined;
  let publishStored!: () => void;
  const stored = new Promise<void>((resolve) => (publishStored = resolve));
  const proxy = await registryThatLosesAPublishAnswer(world.registry.url, () => publishStored());
  try {
    first = await startWorkerProcess(world, scenarios, 'publisher', { CR_REGISTRY_URL: proxy.url });
    const { runId } = await world.gateway.start({ requirement: SALE, requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
    await Promise.race([stored, new Promise((_, reject) => setTimeout(() => reject(new Error('the worker never published through the proxy')), 90_000))]);
    await first.kill();
    const { stop } = await world.startWorker(scenarios);
    const state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    const version = `1.4.0-cr.${shortRunId(runId)}.1`;
    // The retried attempt found its commit already published under the round's version and published nothing.
    expect(state.repos['ui-kit']!.publishes).toEqual([expect.objectContaining({ round: 1, status: 'published', version, reused: true })]);
    const ofThisRun = Object.keys((await readPackument(world.registry, '@acme/ui-kit'))!.versions).filter((v) => v.includes(`-cr.${shortRunId(runId)}.`));
    expect(ofThisRun).toEqual([version]);
    expect(state.repos['web-app']!.checks[0]).toMatchObject({ passed: true, against: [expect.objectContaining({ version, installed: version })] });
    const history = await world.env.client.workflow.getHandle(runId).fetchHistory();
    const publishAttempts = history.events!.filter((e) => e.activityTaskStartedEventAttributes && history.events!.some((s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString() && s.activityTaskScheduledEventAttributes?.activityType?.name === 'publishPackage'));
    expect(publishAttempts.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([2]);
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'cancel-kill' });
    await waitForState(world.gateway, runId, (s) => s.phase === 'cancelled');
    await recordHistory(world.env.client, runId, 'change-set-worker-killed-mid-publish');
    await stop();
  } finally {
    // (a failed assertion above leaves `stop` to world.close)
    await first?.kill();
    await proxy.close();
  }
});
