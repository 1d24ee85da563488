// Delivery on real parts: checks with an install cache, tests that were deleted or skipped flagged in the
// summary, and the combined summary rendered as Markdown with its merge order, before and after feedback.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Scenario } from '../activities/agent/scenarios';
import { renderSummaryMarkdown } from '../domain/summary';
import { createWorld, demoScenarios, waitForPhase, type World } from './helpers/world';

jest.setTimeout(180_000);

let world: World;
let stop: () => Promise<void>;
let installLog: string;

beforeAll(async () => {
  world = await createWorld({
    repos: {
      // A real install step: it writes node_modules and leaves a line in a log outside the checkout, in the
      // npm cache (the one folder beyond its workspace a confined command may write, shared by all installs).
      'ui-kit': { install: [{ name: 'install', run: `mkdir -p node_modules/left-pad && echo ok > node_modules/left-pad/index.js && echo installed >> "$npm_config_cache/installs.log"`, timeoutSeconds: 30 }] },
    },
  });
  installLog = path.join(world.dataDir, 'worker', 'package-caches', 'npm', 'installs.log');
  const demo = await demoScenarios();
  const currency = demo.find((s) => s.id === 'currency')!;
  const withNarrative: Scenario = {
    ...currency,
    narrative: 'Prices now show their currency code. The shared formatter in ui-kit gained the code, and the shop uses it on every card.',
    edit: {
      ...currency.edit,
      'web-app': {
        ...currency.edit['web-app']!,
        feedback: [{ when: ['changelog'], turns: [{ calls: [{ name: 'write_file', input: { path: 'CHANGELOG.md', content: '# Changelog\n\n- Prices show their currency code.\n' } }], expect: [], delayMs: 0 }] }],
      },
    },
  };
  const testRemoval: Scenario = {
    id: 'drop-tests',
    requirement: 'drop-tests requirement',
    match: ['drop-tests'],
    propose: [],
    edit: {
      'ui-kit': {
        initial: [{
          calls: [
            { name: 'delete_file', input: { path: 'test/badge.test.js' } },
            { name: 'replace_in_file', input: { path: 'test/price.test.js', old: "test('formatPrice groups thousands'", new: "test.skip('formatPrice groups thousands'" } },
          ],
          expect: [],
          delayMs: 0,
        }],
        fix: [],
        feedback: [],
        continue: [],
      },
    },
  };
  ({ stop } = await world.startWorker([withNarrative, testRemoval, ...demo]));
});

afterAll(async () => {
  await stop?.();
  await world?.close();
});

test('a second round restores the install from the cache instead of installing again', async () => {
  const { runId } = await world.gateway.start({ requirement: 'Show prices with the currency code, like USD 12.50, on product cards', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
  let state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  const uiKit = state.repos['ui-kit']!;
  expect(uiKit.checks.map((c) => c.passed)).toEqual([false, true]); // the demo's deliberate bug, fixed in round 2
  // Round 1's publish of ui-kit (before its checks) installed it for real and filled the cache; its checks,
  // round 2's publish and round 2's checks all restored that install instead of installing again.
  expect(uiKit.publishes.map((p) => p.status)).toEqual(['published', 'published']);
  expect(uiKit.publishes[0]!.output).toContain('echo installed');
  expect(uiKit.publishes[1]!.output).toContain("restored node_modules from this worker's install cache");
  expect(uiKit.checks[0]!.results[0]).toMatchObject({ kind: 'install', status: 'passed', fromCache: true });
  expect(uiKit.checks[1]!.results[0]).toMatchObject({ kind: 'install', status: 'passed', fromCache: true });
  expect((await fs.readFile(installLog, 'utf8')).trim().split('\n')).toEqual(['installed']);

  // The summary: a narrative from the (scripted) model, merge order, per-repository sections.
  expect(state.summary).toMatchObject({ narrativeBy: 'model', mergeOrder: ['ui-kit', 'web-app'], sincePrevious: [] });
  let markdown = renderSummaryMarkdown(state.summary!);
  expect(markdown).toContain('Prices now show their currency code.');
  expect(markdown).toContain('### Merge order\n\n1. ui-kit\n2. web-app');
  expect(markdown).toMatch(/### ui-kit \(package\) — checks passing[\s\S]*`src\/price\.js` modified[\s\S]*install `install`: passed \(from the install cache\)/);
  expect(markdown).toMatch(/### web-app \(app\) — checks passing/);
  expect(markdown).toMatch(/<summary>Key changes<\/summary>[\s\S]*```diff[\s\S]*formatPrice/);
  expect(markdown).toContain('Agent spending for the whole change:');

  // After a feedback round the summary says what changed since the previous one.
  await world.gateway.send(runId, 'feedback', { by: 'fiona', key: 'fb', text: 'Please add a changelog entry', repos: ['web-app'] });
  state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(state.summary!.round).toBe(3);
  markdown = renderSummaryMarkdown(state.summary!);
  expect(markdown).toMatch(/### Since the previous summary\n\n- Round 3 \(feedback from fiona: "Please add a changelog entry"\) edited web-app\.\n- {3}web-app: 1 file\(s\) changed \(CHANGELOG\.md\)/);
  expect(markdown).toContain('### Merge order\n\n1. ui-kit\n2. web-app');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
});

test('a change that deletes or skips tests is flagged in the summary, even when the checks pass', async () => {
  const { runId } = await world.gateway.start({ requirement: 'drop-tests requirement', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  const state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(state.repos['ui-kit']!.checks.at(-1)!.passed).toBe(true);
  expect(state.summary!.risks).toEqual(expect.arrayContaining([
    'ui-kit: test file test/badge.test.js was deleted',
    expect.stringMatching(/^ui-kit: test\/price\.test\.js skips or focuses tests: test\.skip\('/),
  ]));
  expect(state.summary!.narrativeBy).toBe('plain');
  expect(renderSummaryMarkdown(state.summary!)).toContain('- ui-kit: test file test/badge.test.js was deleted');
  await world.gateway.send(runId, 'cancel', { by: 'fiona', key: `${runId}-end` });
});
