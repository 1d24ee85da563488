// Service previews and the change-set page, with real parts only: the forge and git, a copy of the demo's
// bff-api started as a real process by the preview server, its reverse proxy, a static app preview whose
// build is pointed at the API's preview, and headless Chromium reading both. The activities run in the
// SDK's MockActivityEnvironment, which gives them an activity Context (heartbeats, cancellation).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { chromium, type Browser } from 'playwright-core';
import type { ActivityDeps } from '../activities/deps';
import { deployPreview, removePreviews } from '../activities/previews';
import { listServicesOnHost, type PreviewHost } from '../previews/control-client';
import { startPreviewServer, type PreviewServer } from '../previews/server';
import { isProcessGroupAlive, killRecordedGroup, processStartTicks } from '../previews/process-group';
import type { ServiceView } from '../previews/services';
import { seedRepositories } from '../forge/seed';
import { CatalogRepoSchema, type CatalogRepo, type PreviewSpec } from '../domain/catalog-schema';
import type { PreviewRecord, PreviewUpstream } from '../domain/contracts';
import { createWorld, PROJECT_ROOT, type World } from './helpers/world';

const CHROMIUM = '/usr/bin/chromium';
const VIEWPORT = { width: 1024, height: 640 };
const LIFETIME_MS = 3_600_000;
const CHANGED_PRODUCT = 'Changed-API Tote Bag';
const NO_UPSTREAM: PreviewUpstream = { packages: [], previews: [], unresolved: [] };
const git = promisify(execFile);

let world: World;
let server: PreviewServer;
let storeDir: string;
let host: PreviewHost;
let deps: ActivityDeps;
let browser: Browser;
let bffApi: CatalogRepo;
let storefront: CatalogRepo;
const timings: string[] = [];

// The main flow: one run with an API preview and an app preview pointed at it.
const RUN = 'cr-service-flow';
const BRANCH = `change-request/${RUN}`;
let apiSha: string;
let appSha: string;
let apiRecord: PreviewRecord;
let appRecord: PreviewRecord;
let apiService: ServiceView;

beforeAll(async () => {
  world = await createWorld();
  storeDir = path.join(world.dataDir, 'service-previews');
  const token = randomBytes(24).toString('hex');
  server = await startPreviewServer({ dir: storeDir, token, serviceGraceMs: 2_000 });
  host = { url: server.url, token };
  deps = previewDeps(server.url);

  const fixtures = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-service-fixtures-'));
  const bffCopy = path.join(fixtures, 'bff-api');
  await fs.cp(path.join(PROJECT_ROOT, 'demo', 'repos', 'bff-api'), bffCopy, { recursive: true, filter: (from) => !from.includes('node_modules') });
  const storefrontSource = path.join(fixtures, 'storefront');
  await fs.mkdir(storefrontSource);
  await fs.writeFile(path.join(storefrontSource, 'package.json'), JSON.stringify({ name: 'storefront', private: true, type: 'module' }, null, 2));
  await fs.writeFile(path.join(storefrontSource, 'build.mjs'), storefrontBuild('Shop'));
  await seedRepositories(world.forge, [
    { owner: 'fixtures', name: 'bff-api', sourceDir: bffCopy },
    { owner: 'fixtures', name: 'storefront', sourceDir: storefrontSource },
  ]);
  await fs.rm(fixtures, { recursive: true, force: true });

  bffApi = catalogRepo('bff-api', 'api', { kind: 'service', start: { name: 'serve', run: 'node src/server.js', timeoutSeconds: 20 }, health: '/healthz', env: {} });
  storefront = catalogRepo('storefront', 'app', { kind: 'static', build: { name: 'build', run: 'node build.mjs', timeoutSeconds: 30 }, outputDir: 'dist', env: { API_URL: '${preview:bff-api}' } });
  const dataJs = await fs.readFile(path.join(PROJECT_ROOT, 'demo', 'repos', 'bff-api', 'src', 'data.js'), 'utf8');
  [apiSha] = (await pushWorkBranch('bff-api', BRANCH, [{ 'src/data.js': dataJs.replace('Canvas Tote Bag', CHANGED_PRODUCT) }])) as [string];
  [appSha] = (await pushWorkBranch('storefront', BRANCH, [{ 'build.mjs': storefrontBuild('Acme Shop, change-set preview') }])) as [string];
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

afterAll(async () => {
  if (timings.length > 0) process.stdout.write(`\nservice preview timings:\n${timings.join('\n')}\n`);
  await browser?.close();
  await server?.close();
  await world?.close();
});

function previewDeps(baseUrl: string): ActivityDeps {
  return world.activityDeps([], { previews: { dir: storeDir, baseUrl, chromiumPath: CHROMIUM, viewport: VIEWPORT, host } });
}

function catalogRepo(id: string, role: 'api' | 'app', preview: PreviewSpec): CatalogRepo {
  return CatalogRepoSchema.parse({ id, url: `${world.forge.url}/fixtures/${id}.git`, defaultBranch: 'main', role, description: `the ${id} fixture`, owners: ['bob'], preview });
}

/** A build that writes a page which lists the products of the API its preview was pointed at (API_URL). */
function storefrontBuild(title: string): string {
  return `// Writes dist/index.html: a page that reads products from the API at API_URL (the preview's env).
import { mkdirSync, writeFileSync } from 'node:fs';
const api = process.env.API_URL;
if (!api) throw new Error('API_URL is not set');
console.log('building against ' + api);
mkdirSync('dist', { recursive: true });
writeFileSync('dist/index.html', \`<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body { font: 22px sans-serif; background: #fdf6e3; color: #073642; } li { padding: 6px; border-bottom: 1px solid #ccc; }</style></head>
<body><h1>${title}</h1><ul id="products"><li>loading…</li></ul>
<script>
fetch(\${JSON.stringify(api)} + 'api/products').then((r) => r.json()).then(({ products }) => {
  const list = document.getElementById('products');
  list.replaceChildren(...products.map((p) => Object.assign(document.createElement('li'), { textContent: p.name + ' ' + (p.priceCents / 100).toFixed(2) })));
  document.body.dataset.loaded = String(products.length);
});
</script></body></html>\`);
console.log('wrote dist/index.html');
`;
}

/** Pushes one commit per entry onto a new branch of a fixture repository; returns their shas, oldest first. */
async function pushWorkBranch(repo: string, branch: string, commits: Record<string, string>[]): Promise<string[]> {
  const url = new URL(`${world.forge.url}/fixtures/${repo}.git`);
  url.username = 'x';
  url.password = world.forgeToken;
  const dir = await fs.mkdtemp(path.join(world.dataDir, `branch-${repo}-`));
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.com' };
  await git('git', ['clone', '--quiet', url.toString(), dir], { env });
  await git('git', ['-C', dir, 'checkout', '--quiet', '-B', branch], { env });
  const shas: string[] = [];
  for (const [index, files] of commits.entries()) {
    for (const [file, content] of Object.entries(files)) await fs.writeFile(path.join(dir, file), content);
    await git('git', ['-C', dir, 'commit', '--quiet', '-am', `service preview test change ${index + 1}`], { env });
    shas.push((await git('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim());
  }
  await git('git', ['-C', dir, 'push', '--quiet', '--force', 'origin', `HEAD:refs/heads/${branch}`], { env });
  return shas;
}

function deploy(activityDeps: ActivityDeps, repo: CatalogRepo, runId: string, branch: string, sha: string, extra: { env?: Record<string, string>; upstream?: PreviewUpstream } = {}): Promise<PreviewRecord> {
  return new MockActivityEnvironment().run(deployPreview, activityDeps, { runId, repo, branch, sha, round: 1, lifetimeMs: LIFETIME_MS, changeSet: [], env: extra.env ?? {}, upstream: extra.upstream ?? NO_UPSTREAM });
}

function remove(activityDeps: ActivityDeps, runId: string, previews: { repo: CatalogRepo; record: PreviewRecord }[]): Promise<void> {
  return new MockActivityEnvironment().run(removePreviews, activityDeps, { runId, previews });
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  timings.push(`  ${label}: ${Date.now() - started} ms`);
  return result;
}

async function serviceOf(runId: string, repo: string): Promise<ServiceView | undefined> {
  return (await listServicesOnHost(host)).find((s) => s.runId === runId && s.repo === repo);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A request to the control API with whatever headers the test wants (or none). */
function control(method: string, requestPath: string, options: { token?: string; body?: unknown; base?: string } = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(options.base ?? server.url);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    if (payload) headers['Content-Type'] = 'application/json';
    const request = http.request({ host: hostname, port, method, path: requestPath, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end(payload);
  });
}

/** Decodes a PNG in Chromium and counts its distinct colours: a blank page has one or two. */
async function distinctColours(png: Buffer): Promise<number> {
  const page = await browser.newPage();
  try {
    // A string, because this project type-checks without the DOM's types.
    return (await page.evaluate(`(async () => {
      const image = new Image();
      image.src = 'data:image/png;base64,${png.toString('base64')}';
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      const colours = new Set();
      for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      return colours.size;
    })()`)) as number;
  } finally {
    await page.close();
  }
}

test('a service preview starts from the work branch and answers through the proxy', async () => {
  apiRecord = await timed('service deploy (clone, move, start, healthy, screenshot)', () => deploy(deps, bffApi, RUN, BRANCH, apiSha));

  expect(apiRecord).toMatchObject({ repo: 'bff-api', sha: apiSha, kind: 'service', status: 'ready', url: `${server.url}/${RUN}/bff-api/`, upstream: NO_UPSTREAM });
  // On its own origin too, where its screenshot was taken and checked. This API has no page at its root and
  // its catalog entry names no `open` path, so what a reviewer opens answers 404: the preview says so.
  expect(apiRecord.originUrl).toBe(`http://bff-api--${RUN.toLowerCase()}.localhost:${new URL(server.url).port}/`);
  expect(apiRecord.problems).toEqual(['GET / answered HTTP 404']);
  const healthyAfter = /answered \/healthz after (\d+) ms/.exec(apiRecord.output);
  expect(healthyAfter).not.toBeNull();
  timings.push(`  service start to healthy (its own report): ${healthyAfter![1]} ms`);
  expect(apiRecord.output).toContain('bff-api listening on http://127.0.0.1:');

  const products = await fetch(`${apiRecord.url}api/products`);
  expect(products.status).toBe(200);
  expect(products.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const names = ((await products.json()) as { products: { name: string }[] }).products.map((p) => p.name);
  expect(names).toContain(CHANGED_PRODUCT);
  // Method, status and body go through as the service answers them.
  const post = await fetch(`${apiRecord.url}api/products`, { method: 'POST', body: '{"name":"x"}' });
  expect(post.status).toBe(405);
  expect(await post.json()).toEqual({ error: 'Only GET is supported' });
  // Without the trailing slash, relative links would resolve one folder up.
  const bare = await fetch(`${server.url}/${RUN}/bff-api?x=1`, { redirect: 'manual' });
  expect([bare.status, bare.headers.get('location')]).toEqual([308, `/${RUN}/bff-api/?x=1`]);

  apiService = (await serviceOf(RUN, 'bff-api'))!;
  expect(apiService).toMatchObject({ status: 'ready', replacing: null });
  expect(pidAlive(apiService.pid!)).toBe(true);
  // Its checkout lives in the store's services folder, which is never served as files.
  expect((await fs.stat(path.join(storeDir, '.services', RUN, 'bff-api', apiService.deployId, 'src', 'server.js'))).isFile()).toBe(true);
  expect((await fetch(`${server.url}/.services/${RUN}/bff-api/${apiService.deployId}/src/server.js`)).status).toBe(400);
  const log = await fetch(`${server.url}/${RUN}/_logs/bff-api.log`);
  expect(log.status).toBe(200);
  expect(await log.text()).toContain('bff-api listening on');

  // What the proxy costs: the same request straight to the service's port and through the preview server.
  const direct = `http://127.0.0.1:${apiService.port}/api/products`;
  const proxied = `${apiRecord.url}api/products`;
  const perRequest = async (url: string) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < 200; i += 1) await (await fetch(url)).arrayBuffer();
    return Number(process.hrtime.bigint() - started) / 200 / 1e6;
  };
  await perRequest(direct);
  const [directMs, proxiedMs] = [await perRequest(direct), await perRequest(proxied)];
  timings.push(`  GET /api/products: ${directMs.toFixed(2)} ms direct, ${proxiedMs.toFixed(2)} ms through the proxy (mean of 200)`);
});

test("a static preview built against the service preview's address renders the changed API's data", async () => {
  const upstream: PreviewUpstream = {
    packages: [{ repo: 'ui-kit', name: '@acme/ui-kit', source: 'released', version: null, installed: '1.4.0' }],
    previews: [{ repo: 'bff-api', sha: apiSha, url: apiRecord.url!, variable: 'API_URL' }],
    unresolved: ['PROMO_URL (<script>alert("x")</script>)'],
  };
  appRecord = await timed('static deploy pointed at the service (clone, build, publish, screenshot)', () => deploy(deps, storefront, RUN, BRANCH, appSha, { env: { API_URL: apiRecord.url! }, upstream }));

  expect(appRecord).toMatchObject({ repo: 'storefront', kind: 'static', status: 'ready', url: `${server.url}/${RUN}/storefront/`, upstream });
  expect(appRecord.output).toContain(`building against ${apiRecord.url}`);
  expect(appRecord.screenshot).not.toBeNull();

  const page = await browser.newPage({ viewport: VIEWPORT });
  try {
    await page.goto(appRecord.url!);
    await page.waitForSelector('body[data-loaded="6"]');
    expect(await page.textContent('#products')).toContain(`${CHANGED_PRODUCT} 12.50`);
  } finally {
    await page.close();
  }
});

test('the change-set page lists every preview of the run with repo@sha and what it runs against', async () => {
  const response = await fetch(`${server.url}/${RUN}/`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
  const html = await response.text();
  expect(html).toContain(`bff-api@${apiSha.slice(0, 7)}`);
  expect(html).toContain(`storefront@${appSha.slice(0, 7)}`);
  expect(html).toContain(`href="${apiRecord.url}"`);
  expect(html).toContain(`src="${appRecord.screenshot!.url}"`);
  expect(html).toContain('<code>API_URL</code> → preview');
  expect(html).toContain('<code>@acme/ui-kit@1.4.0</code> released');
  // Text from records is escaped, never markup.
  expect(html).toContain('PROMO_URL (&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;)');
  expect(html).not.toContain('<script>alert');
  expect((await fetch(`${server.url}/${RUN}`, { redirect: 'manual' })).status).toBe(301);

  const page = await browser.newPage({ viewport: VIEWPORT });
  const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'cr-change-set-')), 'change-set.png');
  try {
    await page.goto(`${server.url}/${RUN}/`);
    await page.waitForFunction('[...document.images].every((image) => image.complete && image.naturalWidth > 0)');
    expect(await page.locator('li.preview').count()).toBe(2);
    await page.screenshot({ path: file });
  } finally {
    await page.close();
  }
  const png = await fs.readFile(file);
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(await distinctColours(png)).toBeGreaterThan(50);
  await fs.mkdir(path.join(PROJECT_ROOT, 'test-artifacts', 'previews'), { recursive: true });
  await fs.copyFile(file, path.join(PROJECT_ROOT, 'test-artifacts', 'previews', 'change-set.png'));
});

test('removing the previews stops the service process and takes the addresses down', async () => {
  const { pid, port } = apiService;
  await remove(deps, RUN, [
    { repo: bffApi, record: apiRecord },
    { repo: storefront, record: appRecord },
  ]);

  expect(pidAlive(pid!)).toBe(false);
  expect(await isProcessGroupAlive(pid!)).toBe(false);
  expect(await portOpen(port!)).toBe(false);
  expect((await fetch(`${apiRecord.url}api/products`)).status).toBe(404);
  expect((await fetch(appRecord.url!)).status).toBe(404);
  expect((await fetch(`${server.url}/${RUN}/`)).status).toBe(404);
  expect(await serviceOf(RUN, 'bff-api')).toBeUndefined();
  await expect(fs.stat(path.join(storeDir, '.services', RUN))).rejects.toThrow(/ENOENT/);
  // Only the screenshots are left of the run: pull request bodies show them.
  expect(await fs.readdir(path.join(storeDir, RUN))).toEqual(['_screenshots']);
  // A removal of what is gone succeeds (a retried activity).
  await remove(deps, RUN, [{ repo: bffApi, record: apiRecord }]);
});

test('a service that never gets healthy is failed with its log tail and leaves no process', async () => {
  const runId = 'cr-service-never-healthy';
  process.env.CR_TEST_SERVICE_SECRET = 'not-for-repository-code';
  const neverHealthy = catalogRepo('bff-api', 'api', {
    kind: 'service',
    // Prints its environment, starts a child that would outlive a naive kill, and never listens.
    start: { name: 'serve', run: 'env | sort; echo "warming up forever"; sleep 300 & wait', timeoutSeconds: 2 },
    health: '/healthz',
    env: {},
  });
  const record = await timed('service that never answers (2 s timeout)', () => deploy(deps, neverHealthy, runId, BRANCH, apiSha, { env: { GREETING: 'hello' } }));
  delete process.env.CR_TEST_SERVICE_SECRET;

  expect(record).toMatchObject({ kind: 'service', status: 'failed', url: null, screenshot: null });
  expect(record.output).toContain('did not answer GET /healthz with a 2xx within 2s');
  expect(record.output).toContain('warming up forever');
  expect(record.output).toMatch(/^PORT=\d+$/m);
  expect(record.output).toContain('HOST=127.0.0.1');
  expect(record.output).toContain('GREETING=hello');
  // None of the service's secrets, and never the control API's token.
  expect(record.output).not.toContain('not-for-repository-code');
  expect(record.output).not.toContain(host.token);

  const failed = (await serviceOf(runId, 'bff-api'))!;
  expect(failed.status).toBe('failed');
  expect(pidAlive(failed.pid!)).toBe(false);
  expect(await isProcessGroupAlive(failed.pid!)).toBe(false);
  const answer = await fetch(`${server.url}/${runId}/bff-api/`);
  expect(answer.status).toBe(502);
  const text = await answer.text();
  expect(text).toContain('is not running');
  expect(text).toContain(`/${runId}/_logs/bff-api.log`);
  expect(text).toContain('warming up forever');
  await remove(deps, runId, [{ repo: neverHealthy, record }]);
  expect(await serviceOf(runId, 'bff-api')).toBeUndefined();
});

test('a service that exits on its own is marked crashed and its address says so', async () => {
  const runId = 'cr-service-crash';
  const record = await deploy(deps, bffApi, runId, BRANCH, apiSha);
  expect(record.status).toBe('ready');
  const running = (await serviceOf(runId, 'bff-api'))!;

  // As the kernel's OOM killer would: the shell goes, and the supervisor takes what it started with it.
  process.kill(running.pid!, 'SIGKILL');
  let crashed = await serviceOf(runId, 'bff-api');
  for (let waited = 0; crashed?.status !== 'crashed' && waited < 5_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    crashed = await serviceOf(runId, 'bff-api');
  }
  expect(crashed).toMatchObject({ status: 'crashed', pid: running.pid });
  expect(crashed!.reason).toContain('killed by SIGKILL');
  expect(await isProcessGroupAlive(running.pid!)).toBe(false);
  expect(await portOpen(running.port!)).toBe(false);

  const answer = await fetch(`${record.url}api/products`);
  expect(answer.status).toBe(502);
  const text = await answer.text();
  expect(text).toContain('the preview of bff-api (run cr-service-crash) is not running');
  expect(text).toContain('killed by SIGKILL');
  expect(text).toContain(`Its log: /${runId}/_logs/bff-api.log`);
  expect(text).toContain('bff-api listening on');
  expect((await fetch(`${server.url}/${runId}/_logs/bff-api.log`)).status).toBe(200);

  await remove(deps, runId, [{ repo: bffApi, record }]);
  expect((await fetch(`${record.url}api/products`)).status).toBe(404);
});

test('the proxy forwards method, path, query, headers and body, and keeps redirects under the prefix', async () => {
  const runId = 'cr-service-echo';
  // A service that answers with what it was sent; its source reaches it through the preview env.
  const echoServer = `require('http').createServer((q, s) => {
    if (q.url === '/healthz') return s.end('ok');
    if (q.url.startsWith('/go')) { s.writeHead(302, { Location: '/landed?from=go' }); return s.end(); }
    let body = '';
    q.on('data', (c) => (body += c));
    q.on('end', () => { s.writeHead(201, { 'content-type': 'application/json', 'x-echo': 'yes' }); s.end(JSON.stringify({ method: q.method, url: q.url, headers: q.headers, body })); });
  }).listen(Number(process.env.PORT), process.env.HOST);`;
  const echo = catalogRepo('bff-api', 'api', { kind: 'service', start: { name: 'serve', run: 'node -e "$ECHO_SERVER"', timeoutSeconds: 20 }, health: '/healthz', env: {} });
  const record = await deploy(deps, echo, runId, BRANCH, apiSha, { env: { ECHO_SERVER: echoServer } });
  expect(record.status).toBe('ready');

  const answer = await fetch(`${record.url}items/7?q=a%20b`, { method: 'PUT', body: 'hello', headers: { 'X-Custom': 'kept', Connection: 'keep-alive' } });
  expect(answer.status).toBe(201);
  expect(answer.headers.get('x-echo')).toBe('yes');
  const seen = (await answer.json()) as { method: string; url: string; headers: Record<string, string>; body: string };
  expect(seen).toMatchObject({ method: 'PUT', url: '/items/7?q=a%20b', body: 'hello' });
  expect(seen.headers).toMatchObject({ 'x-custom': 'kept', 'x-forwarded-prefix': `/${runId}/bff-api`, 'x-forwarded-host': new URL(server.url).host, 'x-forwarded-proto': 'http', host: new URL(server.url).host });
  expect(seen.headers.authorization).toBeUndefined();

  const redirect = await fetch(`${record.url}go`, { redirect: 'manual' });
  expect([redirect.status, redirect.headers.get('location')]).toEqual([302, `/${runId}/bff-api/landed?from=go`]);

  await remove(deps, runId, [{ repo: echo, record }]);
});

test('the control API needs the token and refuses folders outside the services folder', async () => {
  const start = { dir: 'x', start: { run: 'true', timeoutSeconds: 5 }, health: '/', env: {} };
  expect((await control('GET', '/.host/services')).status).toBe(401);
  expect((await control('GET', '/.host/services', { token: 'not-the-token-at-all' })).status).toBe(401);
  expect((await control('PUT', '/.host/services/cr-x/bff-api', { body: start })).status).toBe(401);
  expect((await control('DELETE', '/.host/services/cr-x/bff-api')).status).toBe(401);

  await fs.mkdir(path.join(storeDir, '.services', 'cr-other', 'bff-api', 'abc-0123456789ab'), { recursive: true });
  await fs.mkdir(path.join(storeDir, '.services', 'cr-x', 'bff-api'), { recursive: true });
  await fs.symlink(world.dataDir, path.join(storeDir, '.services', 'cr-x', 'bff-api', 'abc-ba9876543210'));
  for (const dir of [world.dataDir, '../..', '.services/cr-other/bff-api/abc-0123456789ab', '.services/cr-x/bff-api/abc-ba9876543210', '.services/cr-x/bff-api']) {
    const refused = await control('PUT', '/.host/services/cr-x/bff-api', { token: host.token, body: { ...start, dir } });
    expect([dir, refused.status]).toEqual([dir, 400]);
    expect(refused.body).toContain('dir must be a folder directly inside .services/cr-x/bff-api/');
  }
  expect((await control('PUT', '/.host/services/cr-x/bff-api', { token: host.token, body: { dir: 'x' } })).status).toBe(400);
  expect((await control('DELETE', '/.host/services/cr-x/bff-api', { token: host.token })).body).toContain('"stopped":false');
  expect((await control('DELETE', '/.host/services/cr-x/bff-api', { token: host.token })).status).toBe(200);

  const noToken = await startPreviewServer({ dir: path.join(world.dataDir, 'store-without-token') });
  try {
    expect((await control('GET', '/.host/services', { base: noToken.url, token: host.token })).status).toBe(404);
  } finally {
    await noToken.close();
  }
});

test('a redeploy replaces the running service, and a restarted preview server starts it again', async () => {
  const runId = 'cr-service-restart';
  const first = await deploy(deps, bffApi, runId, BRANCH, apiSha);
  const replaced = (await serviceOf(runId, 'bff-api'))!;
  const record = await timed('service redeploy (the new one healthy, then the old one stopped)', () => deploy(deps, bffApi, runId, BRANCH, apiSha));
  expect([first.status, record.status, record.url]).toEqual(['ready', 'ready', first.url]);
  const before = (await serviceOf(runId, 'bff-api'))!;
  expect(before.deployId).not.toBe(replaced.deployId);
  expect(await isProcessGroupAlive(replaced.pid!)).toBe(false);
  await expect(fs.stat(path.join(storeDir, '.services', runId, 'bff-api', replaced.deployId))).rejects.toThrow(/ENOENT/);

  // Closing the server stops its services: nothing is left running without it.
  const { port } = new URL(server.url);
  await server.close();
  expect(pidAlive(before.pid!)).toBe(false);
  expect(await isProcessGroupAlive(before.pid!)).toBe(false);

  const restartedAt = Date.now();
  server = await startPreviewServer({ dir: storeDir, token: host.token, port: Number(port), serviceGraceMs: 2_000 });
  await server.restored;
  timings.push(`  restart of the preview server until its service answers again: ${Date.now() - restartedAt} ms`);
  const after = (await serviceOf(runId, 'bff-api'))!;
  expect(after).toMatchObject({ status: 'ready', deployId: before.deployId });
  expect(after.pid).not.toBe(before.pid);
  expect(pidAlive(after.pid!)).toBe(true);
  const products = await fetch(`${record.url}api/products`);
  expect(products.status).toBe(200);
  expect(JSON.stringify(await products.json())).toContain(CHANGED_PRODUCT);

  await remove(deps, runId, [{ repo: bffApi, record }]);
  expect(pidAlive(after.pid!)).toBe(false);
});

test('what a server that died hard left running is killed by the next one, and a stranger with a reused pid is not', async () => {
  // A service's process group as a dead server would leave it: a shell and a child, orphaned.
  const group = spawn('sh', ['-c', 'sleep 300 & wait'], { detached: true, stdio: 'ignore' });
  const pid = group.pid!;
  const startTicks = await processStartTicks(pid);
  expect(startTicks).toMatch(/^\d+$/);

  // Recorded with another start time, the pid belongs to someone else now: left alone.
  await killRecordedGroup(pid, String(Number(startTicks) + 1), 1_000);
  expect(await isProcessGroupAlive(pid)).toBe(true);

  await killRecordedGroup(pid, startTicks, 1_000);
  expect(await isProcessGroupAlive(pid)).toBe(false);
});
