// The web chat in headless Chromium, used the way a person uses it: pick who you are, start the demo's
// currency request, amend and confirm the proposal, review the summary with its preview screenshot, see
// someone without the right refused, see an out-of-date card refused, approve, and find the pull requests.
// Real parts throughout: Temporal dev server, forge, worker with the scripted demo model, ConversationRouter.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ConversationRouter } from '../im-adapters/core/router';
import { startWebChat, type WebChat } from '../im-adapters/web/server';
import { loadCatalog } from '../domain/catalog-loader';
import { PROJECT_ROOT, createWorld, demoScenarios, forgePulls, waitForPhase, type World } from './helpers/world';
import { countingStateQueries } from './helpers/counting-gateway';
import { formatState } from '../client/format';

jest.setTimeout(300_000);

const REQUIREMENT = 'Show prices with the currency code, like USD 12.50, on product cards';
const SHOTS = path.join(PROJECT_ROOT, 'test-artifacts', 'web-chat');
// Without the networking switches Chromium waits for servers it cannot reach on a closed network.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];
const RUN_TIMEOUT_MS = 180_000;

let world: World;
let chat: WebChat;
let browser: Browser;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  // A short review reminder, so the thread has a service message to show.
  world = await createWorld({ policy: { remindToReviewAfter: '3s' } });
  const scenarios = await demoScenarios();
  stopWorker = (await world.startWorker(scenarios)).stop;
  chat = await startWebChat({
    gateway: world.gateway,
    router: new ConversationRouter(world.gateway),
    loadCatalog: () => loadCatalog(world.catalogPath),
    outboxDir: path.join(world.dataDir, 'worker'),
    demoRequirements: scenarios.map((s) => s.requirement),
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  await fs.rm(SHOTS, { recursive: true, force: true });
  await fs.mkdir(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await chat?.close();
  await stopWorker?.();
  await world?.close();
});

async function call(method: string, route: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const response = await fetch(`${chat.url}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function shot(page: Page, step: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${step}.png`), fullPage: true });
}

/** Opens the page as someone, optionally straight into a thread. */
async function openAs(person: string, hash = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${chat.url}/${hash}`);
  await page.getByLabel('You are').selectOption(person);
  return page;
}

test('the API says what is wrong with bad input, and never fails on it', async () => {
  expect((await call('POST', '/api/threads', 'as=fiona', 'text/plain')).status).toBe(415);
  expect(await call('POST', '/api/threads', '{"as": "fiona",')).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
  expect(await call('POST', '/api/threads', { as: 'fiona' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('text') } });
  expect(await call('POST', '/api/threads', { as: 'fiona', text: 'x', extra: 1 })).toMatchObject({ status: 400 });
  expect(await call('POST', '/api/threads', { as: 'mallory', text: 'Make it pop' })).toMatchObject({
    status: 400,
    body: { error: expect.stringContaining('"mallory" is not one of the catalog\'s people') },
  });
  expect((await call('POST', '/api/threads', { as: 'fiona', text: 'x'.repeat(200_000) })).status).toBe(413);
  expect(await call('GET', '/api/runs/cr-web-0123456789abcdef')).toMatchObject({ status: 404, body: { error: expect.stringContaining('no change request') } });
  expect(await call('GET', '/api/runs/cr-20260101-abcd1234')).toMatchObject({ status: 404, body: { error: expect.stringContaining('not a web chat thread') } });
  expect((await call('GET', '/api/runs/cr-web-0123456789abcdef?after=soon')).status).toBe(400);
  expect((await call('GET', '/api/runs/cr-web-0123456789abcdef?selection=Not%20A%20Repo')).status).toBe(400);
  expect((await call('POST', '/api/runs/cr-web-0123456789abcdef/buttons', { as: 'fiona', value: { action: 'launch' }, eventId: 'event-0001' })).status).toBe(400);
  expect((await call('POST', '/api/runs/cr-web-0123456789abcdef/messages', { as: 'fiona', text: 'hi', eventId: 'no spaces allowed' })).status).toBe(400);
  expect((await call('GET', '/api/runs/cr-web-0123456789abcdef/buttons')).status).toBe(405);
  expect((await call('GET', '/api/runs/%E0%A4%A')).status).toBe(404);
  expect((await call('GET', '/api/nothing-here')).status).toBe(404);
  expect((await call('GET', '/../package.json')).status).toBe(404);

  const { body } = await call('GET', '/api/people');
  expect(body.people).toContainEqual({ handle: 'pam', name: 'Pam (product manager)', groups: ['product'], owns: [], mayTarget: ['ui-kit', 'web-app'] });
  expect(body.people).toContainEqual(expect.objectContaining({ handle: 'fiona', owns: ['ui-kit', 'web-app'] }));
  expect((await call('GET', '/api/demos')).body.requirements).toContain(REQUIREMENT);
});

test('a page on another site, or behind a rebound DNS name, cannot use the web chat', async () => {
  const { port } = new URL(chat.url);
  const raw = (headers: Record<string, string>, method = 'POST') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, path: '/api/threads', method, headers: { 'content-type': 'application/json', ...headers } }, (response) => {
        let body = '';
        response.on('data', (c: Buffer) => (body += c.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', reject);
      request.end(method === 'POST' ? JSON.stringify({ as: 'fiona', text: REQUIREMENT }) : undefined);
    });
  const before = (await call('GET', '/api/threads')).body;
  expect(await raw({ origin: 'http://evil.example' })).toMatchObject({ status: 403, body: expect.stringContaining('requests from http://evil.example are refused') });
  expect(await raw({ host: `evil.example:${port}` })).toMatchObject({ status: 403, body: expect.stringContaining('does not answer to the host \\"evil.example') });
  expect((await raw({ host: `evil.example:${port}` }, 'GET')).status).toBe(403);
  expect((await raw({ origin: 'null' })).status).toBe(403);
  // Nothing was started; the page's own origin still works.
  expect((await call('GET', '/api/threads')).body).toEqual(before);
  expect((await raw({ origin: chat.url }, 'GET')).status).not.toBe(403);
});

test('a guided run from the web chat: propose, amend, confirm, review, a refusal, approve, pull requests', async () => {
  const started = Date.now();
  const timings: string[] = [];
  const mark = (step: string) => timings.push(`${step}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const page = await openAs('fiona');
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  // A demo requirement is one click away; starting it opens its thread.
  await page.getByRole('button', { name: REQUIREMENT }).click();
  expect(await page.getByRole('textbox', { name: 'Requirement', exact: true }).inputValue()).toBe(REQUIREMENT);
  await shot(page, '01-new-request');
  await page.getByRole('button', { name: 'Start change request' }).click();
  await page.waitForURL(/#\/runs\/cr-web-[0-9a-f]{16}$/);
  const runId = page.url().split('#/runs/')[1]!;

  // The proposal, with each repository's reason, and bff-api offered but not proposed.
  await page.getByText('Please confirm which repositories to change.').waitFor({ timeout: RUN_TIMEOUT_MS });
  mark('proposal shown');
  const proposed = (await world.gateway.state(runId)).proposal!.repos;
  expect(proposed.map((r) => r.id).sort()).toEqual(['ui-kit', 'web-app']);
  for (const repo of proposed) await page.getByText(repo.reason).waitFor();
  await page.getByRole('button', { name: 'Add bff-api' }).waitFor();
  await page.getByRole('link', { name: new RegExp(REQUIREMENT.slice(0, 30)) }).waitFor();
  await shot(page, '02-proposal');

  // A second page stays on this card: it loads the thread once, and then hears nothing more.
  const stale = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await stale.route((url) => url.pathname.startsWith('/api/runs/') && url.searchParams.has('after'), (route) => route.abort());
  await stale.goto(`${chat.url}/#/runs/${runId}`);
  await stale.getByLabel('You are').selectOption('fiona');
  await stale.getByRole('button', { name: 'Confirm 2 repositories' }).waitFor();

  // Remove web-app and add it back: the card follows each toggle.
  await page.getByRole('button', { name: 'Remove web-app' }).click();
  await page.getByRole('button', { name: 'Confirm 1 repository' }).waitFor();
  await page.getByRole('button', { name: 'Add web-app' }).waitFor();
  await shot(page, '03-web-app-removed');
  await page.getByRole('button', { name: 'Add web-app' }).click();
  await page.getByRole('button', { name: 'Confirm 2 repositories' }).click();
  mark('confirmed');

  // Review: the summary, per-repository lines, the preview screenshot, and the review reminder.
  await page.getByText('Ready for review.').waitFor({ timeout: RUN_TIMEOUT_MS });
  mark('ready for review');
  let state = await world.gateway.state(runId);
  expect(state.confirmed.sort()).toEqual(['ui-kit', 'web-app']);
  await page.getByRole('heading', { name: 'What changed' }).waitFor();
  await page.getByText(/^web-app: \d+ file\(s\).*checks pass against @acme\/ui-kit@[\d.]+-cr\.\w+\.\d+ \(this run\)$/).waitFor();
  await page.getByRole('img', { name: 'web-app preview' }).waitFor();
  await page.waitForFunction(`(() => { const img = document.querySelector('img[alt="web-app preview"]'); return !!img && img.complete && img.naturalWidth > 0; })()`, undefined, { timeout: 30_000 });
  expect(await page.evaluate<number>(`document.querySelector('img[alt="web-app preview"]').naturalWidth`)).toBe(1024);
  await page.getByRole('link', { name: 'web-app preview' }).first().waitFor();
  await page.getByText('Reminder: this change request is waiting for your review.').waitFor({ timeout: 30_000 });
  await shot(page, '04-ready-for-review');

  // Each repository's diff, rendered in the page: in total, then one round's, each file collapsible.
  const diff = page.getByRole('region', { name: 'web-app diff' });
  await diff.locator('.d2h-ins', { hasText: 'USD 12.50' }).first().waitFor();
  expect(await diff.locator('details.diff-file > summary').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^src\/render\.js \+\d+ −\d+$/), expect.stringMatching(/^test\/render\.test\.js /)]));
  const kitDiff = page.getByRole('region', { name: 'ui-kit diff' });
  // ui-kit changed four files: in a panel of every repository's diff they start collapsed; a click opens one.
  const priceFile = kitDiff.locator('details.diff-file').filter({ has: page.locator('summary', { hasText: /^src\/price\.js / }) });
  await priceFile.waitFor({ state: 'attached' });
  expect(await kitDiff.locator('details.diff-file[open]').count()).toBe(0);
  await priceFile.locator('summary').click();
  await priceFile.locator('.d2h-ins', { hasText: 'const CURRENCY_CODE' }).first().waitFor();
  // ui-kit took two rounds (the padding fix): round 2 alone is that one line.
  expect(await kitDiff.getByRole('combobox', { name: 'Diff of ui-kit' }).locator('option').allTextContents()).toEqual(['all rounds', 'round 1', 'round 2']);
  await kitDiff.getByRole('combobox', { name: 'Diff of ui-kit' }).selectOption('2');
  await kitDiff.locator('details.diff-file > summary', { hasText: /^src\/price\.js \+1 −1$/ }).waitFor();
  expect(await kitDiff.locator('details.diff-file').count()).toBe(1);
  await kitDiff.locator('details.diff-file > summary').first().click();
  expect(await kitDiff.locator('details.diff-file').first().getAttribute('open')).toBeNull();
  await shot(page, '04b-diffs');

  // Pam may not approve: the refusal is said in the thread, and the run stays where it was.
  await page.getByLabel('You are').selectOption('pam');
  await page.getByRole('button', { name: 'Approve and open pull requests' }).click();
  await page.getByText('pam may not approve: only fiona (the requester) or an owner of the repositories may').waitFor();
  state = await world.gateway.state(runId);
  expect(state.phase).toBe('awaiting_review');
  expect(state.inputs.filter((i) => i.by === 'pam')).toEqual([expect.objectContaining({ signal: 'approve', outcome: 'refused' })]);
  await shot(page, '05-pam-refused');

  // The stale page's Confirm carries the proposal's card version: refused, and it shows the current card.
  await stale.getByRole('button', { name: 'Confirm 2 repositories' }).click();
  await stale.getByText('this card is out of date; here is the current one').waitFor();
  await stale.getByRole('button', { name: 'Approve and open pull requests' }).waitFor();
  await shot(stale, '06-stale-card-refused');
  // The same through the API: an old version, a refusal with the current card, and nothing changed.
  const outdated = await call('POST', `/api/runs/${runId}/buttons`, { as: 'fiona', value: { runId, action: 'approve', cardVersion: state.cardVersion - 1 }, eventId: 'outdated-approve-1' });
  expect(outdated).toMatchObject({ status: 200, body: { kind: 'refused', reason: 'this card is out of date; here is the current one', card: { cardVersion: state.cardVersion } } });
  expect((await world.gateway.state(runId)).phase).toBe('awaiting_review');
  await stale.close();

  // Fiona approves: one pull request per repository, linked from the card and present on the forge.
  await page.getByLabel('You are').selectOption('fiona');
  await page.getByRole('button', { name: 'Approve and open pull requests' }).click();
  await page.getByText('Pull requests are open: following them until each is merged or closed.').waitFor({ timeout: RUN_TIMEOUT_MS });
  mark('pull requests open');
  state = await waitForPhase(world.gateway, runId, 'tracking');
  for (const repo of ['ui-kit', 'web-app']) {
    const pulls = (await forgePulls(world, repo)).filter((p) => p.head.ref === `change-request/${runId}`);
    expect(pulls).toHaveLength(1);
    const link = page.getByRole('link', { name: `${repo} PR #${pulls[0]!.number}` });
    expect(await link.getAttribute('href')).toBe(state.repos[repo]!.pr!.url);
  }
  // Replies go to the pull requests now: the box says so and takes none.
  expect(await page.getByRole('textbox', { name: 'Reply in this thread' }).isDisabled()).toBe(true);
  await page.getByText('The pull requests are open: comment on them there').waitFor();
  await shot(page, '07-pull-requests-open');

  // Every link the page shows answers 200 in a browser without any token: the previews (they last while
  // the pull requests are open), each repository's diff on the forge, the pull requests.
  const hrefs = [...new Set(await page.locator('#card a[href], #changes a[href]').evaluateAll((links) => links.map((a) => String(Reflect.get(a, 'href')))))];
  expect(hrefs).toEqual(expect.arrayContaining([state.repos['web-app']!.pr!.url, state.repos['ui-kit']!.pr!.url, state.previews.find((p) => p.repo === 'web-app')!.originUrl]));
  // The preview people open is on its own origin, which the browser resolves to this machine.
  expect(hrefs).toContainEqual(expect.stringMatching(new RegExp(`^http://web-app--${runId}\\.localhost:\\d+/$`)));
  for (const repo of ['ui-kit', 'web-app']) expect(hrefs.some((href) => href.includes(`/demo/${repo}/compare/`))).toBe(true);
  // And every address the CLI prints for the run (`npm run cli -- show <run> --summary`).
  const printed = formatState(state, { summary: true }).match(/https?:\/\/[^\s)>\]"]+/g) ?? [];
  expect(printed.length).toBeGreaterThan(3);
  hrefs.push(...printed.filter((url) => !hrefs.includes(url)));
  const visitor = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  for (const href of hrefs) {
    const response = await visitor.goto(href);
    expect({ href, status: response?.status() }).toEqual({ href, status: 200 });
  }
  // The forge's pull request page: the body rendered as Markdown, with its sections and links, and the diff.
  await visitor.goto(state.repos['web-app']!.pr!.url);
  expect(await visitor.locator('article.markdown-body h3').allTextContents()).toEqual(expect.arrayContaining(['Pull requests in this change', 'Merge order', 'ui-kit (package) — checks passing', 'web-app (app) — checks passing']));
  expect(await visitor.locator('article.markdown-body a', { hasText: `ui-kit #${state.repos['ui-kit']!.pr!.number}` }).first().getAttribute('href')).toBe(state.repos['ui-kit']!.pr!.url);
  await visitor.locator('details.diff-file .d2h-ins', { hasText: 'USD 12.50' }).first().waitFor();
  await shot(visitor, '08-forge-pull-request');
  await visitor.close();

  expect(pageErrors).toEqual([]);
  console.log(`web chat run ${runId}\n${timings.join('\n')}`);
});

test('text from a run is shown as text, never as HTML, and a retried start starts one run', async () => {
  const requirement = 'Make <b>prices</b> bold <img src=x onerror="window.injected = 1">';
  const first = await call('POST', '/api/threads', { as: 'pam', text: requirement, eventId: 'escape-test-0001' });
  expect(first.body).toMatchObject({ kind: 'started', alreadyStarted: false });
  const retried = await call('POST', '/api/threads', { as: 'pam', text: requirement, eventId: 'escape-test-0001' });
  expect(retried.body).toMatchObject({ kind: 'started', runId: first.body.runId, alreadyStarted: true });

  const page = await openAs('pam', `#/runs/${first.body.runId}`);
  await page.getByRole('heading', { name: requirement }).waitFor();
  expect(await page.locator('#thread-title b, #thread-title img, #card img, #threads img').count()).toBe(0);
  expect(await page.evaluate('window.injected')).toBeUndefined();
  await page.close();
});

/** A long poll from a client at `localAddress` (the whole of 127.0.0.0/8 is this machine): its status and body. */
function longPoll(url: string, localAddress: string, signal: AbortSignal): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { localAddress, signal }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    request.on('error', (error) => (signal.aborted ? resolve({ status: 0, body: null }) : reject(error)));
  });
}

test('100 pages long-polling one run share one watch; one client may hold only a few polls open', async () => {
  const counted = countingStateQueries(world.gateway);
  const { gateway } = counted;
  const pollChat = await startWebChat({ gateway, router: new ConversationRouter(gateway), loadCatalog: () => loadCatalog(world.catalogPath), outboxDir: path.join(world.dataDir, 'worker'), demoRequirements: [] });
  const stop = new AbortController();
  try {
    const started = await fetch(`${pollChat.url}/api/threads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ as: 'pam', text: 'Make the sale badge red', eventId: 'poll-share-0001' }) }).then((r) => r.json() as Promise<any>);
    const runId = started.runId as string;
    await waitForPhase(world.gateway, runId, 'awaiting_confirmation');
    const seen = await fetch(`${pollChat.url}/api/runs/${runId}`).then((r) => r.json() as Promise<any>);
    const url = `${pollChat.url}/api/runs/${runId}?after=${seen.state.version}&messages=${seen.messages.length}`;
    const queriesDuring = async (clients: number) => {
      const before = counted.count();
      const polls = Array.from({ length: clients }, (_, i) => longPoll(url, `127.0.${Math.floor(i / 250)}.${(i % 250) + 2}`, stop.signal));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return { queries: counted.count() - before, polls };
    };
    const one = await queriesDuring(1);
    const hundred = await queriesDuring(100);
    // 101 pages wait now; one watch reads the run about ten times a second for all of them.
    expect(one.queries).toBeGreaterThan(5);
    expect(hundred.queries).toBeLessThan(one.queries * 1.5 + 5);

    // When the run moves, every page hears of it.
    await fetch(`${pollChat.url}/api/runs/${runId}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ as: 'pam', text: 'Also on the cart page', eventId: 'poll-share-0002' }) });
    const answers = await Promise.all([...one.polls, ...hundred.polls]);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers.every((a) => a.body.state.version > seen.state.version)).toBe(true);

    // One client address: the 9th open poll is refused plainly (the page shows "Reconnecting…" and retries).
    const fresh = await fetch(`${pollChat.url}/api/runs/${runId}`).then((r) => r.json() as Promise<any>);
    const waitingUrl = `${pollChat.url}/api/runs/${runId}?after=${fresh.state.version}&messages=${fresh.messages.length}`;
    const held = Array.from({ length: 8 }, () => longPoll(waitingUrl, '127.0.0.1', stop.signal));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ninth = await longPoll(waitingUrl, '127.0.0.1', stop.signal);
    expect(ninth).toMatchObject({ status: 429, body: { error: expect.stringMatching(/^too many open views from 127\.0\.0\.1: at most 8 at once/) } });
    // Another client is not affected: its poll waits like any other.
    const other = await Promise.race([longPoll(waitingUrl, '127.0.0.99', stop.signal), new Promise((resolve) => setTimeout(() => resolve('waiting'), 500))]);
    expect(other).toBe('waiting');
    stop.abort();
    await Promise.all(held);
    await world.gateway.send(runId, 'cancel', { by: 'pam', key: 'poll-share-cleanup' });
  } finally {
    stop.abort();
    await pollChat.close();
  }
});
