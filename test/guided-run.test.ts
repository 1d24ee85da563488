// The spine, end to end on real parts: a guided run over two demo repositories through proposal,
// confirmation, a failing check fixed in the next round, review, one feedback round, approval and PRs.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from '@temporalio/worker';
import { publishReleased } from '../registry/seed';
import type { Scenario } from '../activities/agent/scenarios';
import { shortRunId } from '../domain/change-set';
import { recordHistory } from './helpers/histories';
import { cardFor } from '../domain/card';
import { branchCommits, createWorld, forgePulls, demoScenarios, waitForPhase, waitForState, workflowBundle, type World } from './helpers/world';

const exec = promisify(execFile);

jest.setTimeout(180_000);

let world: World;
let scenarios: Scenario[];

beforeAll(async () => {
  world = await createWorld();
  // The demo's currency scenario, plus a review comment that concerns the web app only.
  scenarios = (await demoScenarios()).map((s) =>
    s.id !== 'currency'
      ? s
      : {
          ...s,
          edit: {
            ...s.edit,
            'web-app': {
              ...s.edit['web-app']!,
              feedback: [{
                when: ['changelog'],
                turns: [
                  { calls: [{ name: 'write_file', input: { path: 'CHANGELOG.md', content: '# Changelog\n\n- Prices show their currency code (USD 12.50).\n' } }], expect: ['changelog'], delayMs: 0 },
                  { calls: [{ name: 'finish', input: { summary: 'Added a changelog entry for the currency display.' } }], expect: [], delayMs: 0 },
                ],
              }],
            },
          },
        },
  );
});

afterAll(async () => world?.close());

test('a guided run goes from requirement to one PR per repository', async () => {
  const { stop } = await world.startWorker(scenarios);
  const { runId } = await world.gateway.start({ requirement: 'Show prices with the currency code, like USD 12.50, on product cards', requester: 'fiona' });

  // The agent proposes, with reasons; the run waits for people.
  let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
  expect(state.proposal!.repos.map((r) => r.id).sort()).toEqual(['ui-kit', 'web-app']);
  expect(state.proposal!.repos.every((r) => r.reason.length > 20)).toBe(true);
  expect(state.proposal!.questions.join(' ')).toContain('bff-api');
  expect(state.waiting?.what).toBe('confirmation');
  // The proposal's question stays on the card until someone answers it; a reply in the thread does.
  expect(state.questions).toEqual([expect.objectContaining({ n: 1, answer: null })]);
  expect(cardFor(state).sections.find((s) => s.heading === 'Open questions')!.lines[0]).toMatch(/^1\. I left bff-api out/);
  expect(cardFor(state).buttons.map((b) => b.label)).toContain('Open questions: not needed');
  await world.gateway.send(runId, 'reply', { by: 'fiona', key: 'answer-1', text: 'USD only is right for now; no API change.' });
  state = await waitForState(world.gateway, runId, (s) => s.questions?.[0]?.answer !== null);
  expect(state.questions![0]!.answer).toMatchObject({ by: 'fiona', how: 'reply', text: 'USD only is right for now; no API change.' });
  expect(state.context.at(-1)!.text).toBe('USD only is right for now; no API change.');
  expect(cardFor(state).sections.map((s) => s.heading)).not.toContain('Open questions');
  expect(cardFor(state).buttons.map((b) => b.label)).not.toContain('Open questions: not needed');

  await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'confirm-1', repos: ['ui-kit', 'web-app'] });

  // Round 1 edits both; ui-kit's new test fails; round 2 fixes only ui-kit; then review.
  state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(state.rounds.map((r) => [r.n, r.kind, r.repos])).toEqual([
    [1, 'initial', ['ui-kit', 'web-app']],
    [2, 'fix', ['ui-kit']],
  ]);
  const uiKit = state.repos['ui-kit']!;
  expect(uiKit.checks.map((c) => [c.round, c.passed])).toEqual([[1, false], [2, true]]);
  expect(uiKit.checks[0]!.results[0]!.outputTail).toContain('pads single-digit cents');
  expect(uiKit.commits.map((c) => c.round)).toEqual([1, 2]);
  // ui-kit is published as this run's prerelease after each round that changed it; web-app installs it for its
  // checks. Round 1's prerelease has the padding slip, so web-app's new price test fails too; it gets no fix
  // round of its own, and passes when checked again against round 2's fix.
  const short = shortRunId(runId);
  expect(uiKit.publishes.map((p) => [p.round, p.status, p.version, p.distTag])).toEqual([
    [1, 'published', `1.4.0-cr.${short}.1`, `cr-${short}`],
    [2, 'published', `1.4.0-cr.${short}.2`, `cr-${short}`],
  ]);
  const webApp = state.repos['web-app']!;
  expect(webApp.checks.map((c) => [c.round, c.passed, c.against.map((a) => [a.name, a.source, a.version, a.installed])])).toEqual([
    [1, false, [['@acme/ui-kit', 'run', `1.4.0-cr.${short}.1`, `1.4.0-cr.${short}.1`]]],
    [2, true, [['@acme/ui-kit', 'run', `1.4.0-cr.${short}.2`, `1.4.0-cr.${short}.2`]]],
  ]);
  expect(webApp.checks[0]!.results.find((r) => r.name === 'test')!.outputTail).toContain('USD 14.05');
  expect(webApp.commits.map((c) => c.round)).toEqual([1]);
  expect(state.summary!.repos.find((r) => r.id === 'web-app')!.checkedAgainst[0]).toMatchObject({ version: `1.4.0-cr.${short}.2` });
  expect(state.summary!.mergeOrder).toEqual(['ui-kit', 'web-app']);
  expect(state.phaseHistory.map((p) => p.phase)).toContain('previewing');
  // The web app's preview: built from the work branch, served, screenshotted in Chromium.
  const preview = state.previews.find((p) => p.repo === 'web-app')!;
  expect(preview).toMatchObject({ status: 'ready', sha: state.repos['web-app']!.headSha, screenshot: { width: 1024, height: 640 } });
  const page = await fetch(preview.url!);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('USD ');
  expect((await fetch(preview.screenshot!.url)).headers.get('content-type')).toBe('image/png');
  expect(state.summary!.repos.find((r) => r.id === 'ui-kit')!.files.map((f) => f.path)).toContain('src/price.js');
  expect(state.budget.used.turns).toBeGreaterThan(0);

  // Feedback about the web app only: round 3 touches web-app alone.
  await world.gateway.send(runId, 'feedback', { by: 'fiona', key: 'feedback-1', text: 'Please add a changelog entry', repos: ['web-app'] });
  state = await waitForPhase(world.gateway, runId, 'awaiting_review');
  expect(state.rounds.at(-1)).toMatchObject({ n: 3, kind: 'feedback', repos: ['web-app'] });
  expect(state.repos['ui-kit']!.commits).toHaveLength(2);
  expect(state.repos['web-app']!.commits.map((c) => c.round)).toEqual([1, 3]);
  // A feedback round on web-app alone publishes nothing new: it is checked against ui-kit's round 2 again.
  expect(state.repos['web-app']!.checks.at(-1)).toMatchObject({ round: 3, passed: true, against: [expect.objectContaining({ version: `1.4.0-cr.${short}.2` })] });
  expect(state.summary!.sincePrevious.join('\n')).toContain('CHANGELOG.md');
  // The summary remembers: the narrative was written again for the feedback, and ui-kit's round 1 notes
  // (the fix round's are its latest) are kept short beside the latest ones, in the state and the PR body.
  expect(state.summary!.narrative).toContain('the shop now keeps a changelog');
  expect(state.summary!.repos.find((r) => r.id === 'ui-kit')!.earlierNotes).toEqual([{ round: 1, text: expect.stringMatching(/^formatPrice now takes an optional ISO currency code/) }]);
  expect(state.repos['web-app']!.notes!.map((n) => n.round)).toEqual([1, 3]);
  expect(state.feedback).toEqual([expect.objectContaining({ by: 'fiona', round: 3, repos: ['web-app'] })]);

  await world.gateway.send(runId, 'approve', { by: 'fiona', key: 'approve-1' });
  // The pull requests are open and the run follows them; the preview lives on for their reviewers.
  state = await waitForPhase(world.gateway, runId, 'tracking');
  const latestPreview = state.previews.find((p) => p.repo === 'web-app')!;
  expect(latestPreview.status).toBe('ready');
  expect((await fetch(latestPreview.url!)).status).toBe(200);
  expect((await fetch(latestPreview.screenshot!.url)).status).toBe(200);

  // One PR per repository on the forge, from the run's branch, each body naming its sibling.
  const branch = `change-request/${runId}`;
  const [uiPulls, webPulls] = [await forgePulls(world, 'ui-kit'), await forgePulls(world, 'web-app')];
  expect(uiPulls).toHaveLength(1);
  expect(webPulls).toHaveLength(1);
  expect(uiPulls[0]!.head.ref).toBe(branch);
  expect(webPulls[0]!.head.ref).toBe(branch);
  expect(uiPulls[0]!.body).toContain(`web-app #${webPulls[0]!.number}`);
  expect(webPulls[0]!.body).toContain(`ui-kit #${uiPulls[0]!.number}`);
  expect(state.repos['ui-kit']!.pr).toMatchObject({ number: uiPulls[0]!.number, state: 'open' });

  // Exactly one commit per round per repository on the pushed branches, and on web-app's the planned release:
  // it depends on @acme/ui-kit ^1.5.0 (the next minor), never on the run's prerelease.
  expect(await branchCommits(world, 'ui-kit', branch)).toHaveLength(2);
  const webCommits = await branchCommits(world, 'web-app', branch);
  expect(webCommits).toHaveLength(3);
  expect(webCommits[0]).toContain('depend on @acme/ui-kit ^1.5.0');
  expect(uiPulls[0]!.body).toContain('release @acme/ui-kit 1.5.0');
  expect(webPulls[0]!.body).toContain(`blocked by [ui-kit #${uiPulls[0]!.number}]`);
  expect(uiPulls[0]!.body).toContain('### Questions from the proposal\n\n1. I left bff-api out');
  expect(uiPulls[0]!.body).toContain('— answered by fiona: USD only is right for now; no API change.');
  expect(uiPulls[0]!.body).toMatch(/Earlier rounds:\n\n- round 1: formatPrice now takes an optional ISO currency code/);

  // Merging ui-kit's pull request on the forge moves the run on: it sees the merge, web-app stays followed.
  const forgeApi = (route: string, init: RequestInit = {}) => fetch(`${world.forge.apiUrl}/repos/demo/${route}`, { ...init, headers: { authorization: `token ${world.forgeToken}`, 'content-type': 'application/json' } });
  expect((await forgeApi(`ui-kit/pulls/${uiPulls[0]!.number}/merge`, { method: 'PUT', body: '{}' })).status).toBe(200);
  state = await waitForState(world.gateway, runId, (s) => s.repos['ui-kit']!.pr!.state === 'merged', 30_000);
  expect(state.phase).toBe('tracking');
  expect(state.repos['web-app']!.pr).toMatchObject({ state: 'open', ci: null, review: null });
  // web-app's pull request now waits for the release ui-kit's merge leads to.
  state = await waitForState(world.gateway, runId, (s) => (s.tracking?.releases ?? []).length > 0, 30_000);
  expect(state.tracking!.releases).toEqual([{ dependent: 'web-app', upstream: 'ui-kit', name: '@acme/ui-kit', range: '^1.5.0', planned: '1.5.0', released: null, movedTo: null, check: null }]);
  expect(cardFor(state).sections.find((s) => s.heading === 'Pull requests')!.lines).toEqual([
    `ui-kit #${uiPulls[0]!.number}: merged`,
    `web-app #${webPulls[0]!.number}: open`,
    `ui-kit #${uiPulls[0]!.number} is merged; web-app waits for the release @acme/ui-kit@1.5.0 on the registry, then is checked against it`,
    expect.stringMatching(/^Followed until \d{4}-\d\d-\d\d; next look at \d\d:\d\d UTC\.$/),
  ]);
  // ui-kit's maintainers release 1.5.0 from the merged main, as its release plan says: web-app is checked
  // again against the real release, and its pull request says it is no longer blocked.
  const released = path.join(world.dataDir, 'ui-kit-release');
  const cloneUrl = new URL(`${world.forge.url}/demo/ui-kit.git`);
  cloneUrl.username = 'x';
  cloneUrl.password = world.forgeToken;
  await exec('git', ['clone', '--quiet', cloneUrl.toString(), released]);
  const manifest = JSON.parse(await fs.readFile(path.join(released, 'package.json'), 'utf8')) as { version: string };
  await fs.writeFile(path.join(released, 'package.json'), JSON.stringify({ ...manifest, version: '1.5.0' }, null, 2));
  await publishReleased(world.registry, released);
  state = await waitForState(world.gateway, runId, (s) => s.tracking?.releases?.[0]?.check != null, 120_000);
  expect(state.tracking!.releases![0]).toMatchObject({ released: '1.5.0', movedTo: null, check: { passed: true, installed: '1.5.0', failing: [] } });
  // The bodies are written again right after the check.
  let webPullAfter = (await forgePulls(world, 'web-app'))[0];
  for (const until = Date.now() + 30_000; !webPullAfter!.body.includes('no longer blocked') && Date.now() < until; webPullAfter = (await forgePulls(world, 'web-app'))[0]) await new Promise((resolve) => setTimeout(resolve, 200));
  expect(webPullAfter!.body).toContain(`**This pull request is no longer blocked:** [ui-kit #${uiPulls[0]!.number}](${state.repos['ui-kit']!.pr!.url}) is merged and \`@acme/ui-kit@1.5.0\` is released; web-app was checked against it: passing.`);
  // Merging web-app's too ends tracking, and the run: done, its preview taken down with its decision.
  // (A closed pull request ends tracking for it as well: change-sets.test.ts closes them.)
  expect((await forgeApi(`web-app/pulls/${webPulls[0]!.number}/merge`, { method: 'PUT', body: '{}' })).status).toBe(200);
  state = await waitForPhase(world.gateway, runId, 'done', 30_000);
  expect(state.outcome!.reason).toBe(`every pull request is decided: ui-kit #${uiPulls[0]!.number} merged, web-app #${webPulls[0]!.number} merged`);
  expect(state.previews.every((p) => p.status === 'removed')).toBe(true);
  expect((await fetch(preview.url!)).status).toBe(404);

  // The history replays cleanly against the current workflow code.
  const history = await world.env.client.workflow.getHandle(runId).fetchHistory();
  // The edits read the question with its answer.
  const firstEdit = history.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'editRepository')!;
  const editInput = JSON.parse(Buffer.from(firstEdit.activityTaskScheduledEventAttributes!.input!.payloads![0]!.data!).toString()) as { context: string[] };
  expect(editInput.context).toEqual(['USD only is right for now; no API change.', expect.stringMatching(/^The proposal asked: "I left bff-api out.*" fiona answered: "USD only is right for now; no API change\."$/)]);
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, runId);
  await recordHistory(world.env.client, runId, 'guided-approve-tracked-until-decided');
  await stop();
});
