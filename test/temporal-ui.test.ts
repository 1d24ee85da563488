// Operators find and understand runs in the Temporal Web UI: the list filtered by a custom search
// attribute shows the run, and its page shows the one-line summary and the details. Checked in headless
// Chromium against the dev server's own UI; screenshots are kept as test artifacts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ChangeRequestGateway } from '../client/gateway';
import { loadCatalog } from '../domain/catalog-loader';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { createChangeRequestWorker } from '../worker/create-worker';
import { createWorld, runChannelsVia, demoScenarios, PROJECT_ROOT, temporalCli, waitForPhase, workflowBundle, type World } from './helpers/world';

jest.setTimeout(180_000);

const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'temporal-ui');
let world: World;
let env: TestWorkflowEnvironment;
let browser: Browser;

beforeAll(async () => {
  world = await createWorld();
  const uiPort = 18_000 + Math.floor(Math.random() * 2000);
  env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: temporalCli() }, searchAttributes: ALL_SEARCH_ATTRIBUTES, ui: true, uiPort, log: { format: 'pretty', level: 'error' } },
  });
  (env as unknown as { uiPort: number }).uiPort = uiPort;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  await fs.mkdir(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await env?.teardown();
  await world?.close();
});

test('the list filtered by requester shows the run, and its page shows the summary and details', async () => {
  const gateway = new ChangeRequestGateway(env.client, { taskQueue: world.taskQueue, catalog: () => loadCatalog(world.catalogPath) });
  const worker = await createChangeRequestWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue: world.taskQueue, deps: world.activityDeps(await demoScenarios(), runChannelsVia(env.client)), workflowBundle: workflowBundle() });
  const running = worker.run();
  try {
    const { runId } = await gateway.start({ requirement: 'Show prices with the currency code, like USD 12.50, on product cards', requester: 'frank', autonomy: 'fixed', repos: ['ui-kit', 'web-app'] });
    await waitForPhase(gateway, runId, 'awaiting_review');
    const ui = `http://127.0.0.1:${(env as unknown as { uiPort: number }).uiPort}`;
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });

    const query = encodeURIComponent(`CrRequester="frank" AND CrRepos="web-app"`);
    await page.goto(`${ui}/namespaces/default/workflows?query=${query}`, { waitUntil: 'domcontentloaded' });
    await page.getByText(runId).first().waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'list-filtered-by-requester.png') });

    const description = await env.client.workflow.getHandle(runId).describe();
    await page.goto(`${ui}/namespaces/default/workflows/${runId}/${description.runId}/history`, { waitUntil: 'domcontentloaded' });
    await page.getByText(runId).first().waitFor({ timeout: 60_000 });
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    // The UI renders each Markdown block in its own frame: read them all.
    // The one-line summary, the static details, and the live details with per-repository progress.
    const text = await waitForText(page, [/frank: Show prices with the currency code, like USD 12\.50, on product cards/, /Requester:\s*frank/, /awaiting_review[\s\S]*ui-kit: checks_passed/]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-page-summary.png'), fullPage: true });
    expect(text).toMatch(/web-app: checks_passed/);
  } finally {
    worker.shutdown();
    await running;
  }
});

async function waitForText(page: import('playwright-core').Page, patterns: RegExp[]): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const texts = await Promise.all(page.frames().map((frame) => frame.locator('body').innerText().catch(() => '')));
    const all = texts.join('\n');
    const missing = patterns.filter((p) => !p.test(all));
    if (missing.length === 0) return all;
    if (Date.now() > deadline) throw new Error(`the page never showed ${missing.join(', ')}; it shows:\n${all}`);
    await page.waitForTimeout(250);
  }
}
