// Previews with real parts only: the forge and git, the repository's own build, real shell commands for
// deploy hooks, headless Chromium for the screenshot and the preview server reviewers open. The activity
// runs in the SDK's MockActivityEnvironment, which gives it an activity Context (heartbeats, cancellation).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../activities/deps';
import { deployPreview, removePreviews } from '../activities/previews';
import { startPreviewServer, type PreviewServer } from '../previews/server';
import { publishStaticPreview } from '../previews/store';
import { findRepo, type CatalogRepo, type PreviewSpec } from '../domain/catalog-schema';
import type { PreviewRecord } from '../domain/contracts';
import { createWorld, PROJECT_ROOT, type World } from './helpers/world';

const VIEWPORT = { width: 1024, height: 640 };
const LIFETIME_MS = 3_600_000;
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'previews');
const git = promisify(execFile);

let world: World;
let server: PreviewServer;
let storeDir: string;
let deps: ActivityDeps;
let depsWithoutScreenshots: ActivityDeps;
let webApp: CatalogRepo;
const timings: string[] = [];

beforeAll(async () => {
  world = await createWorld();
  storeDir = path.join(world.dataDir, 'previews');
  server = await startPreviewServer({ dir: storeDir });
  const previews = { dir: storeDir, baseUrl: server.url, chromiumPath: '/usr/bin/chromium', viewport: VIEWPORT, host: null };
  deps = world.activityDeps([], { previews });
  depsWithoutScreenshots = world.activityDeps([], { previews: { ...previews, chromiumPath: null } });
  webApp = findRepo(await deps.loadCatalog(), 'web-app')!;
});

afterAll(async () => {
  if (timings.length > 0) process.stdout.write(`\npreview timings:\n${timings.join('\n')}\n`);
  await server?.close();
  await world?.close();
});

/**
 * Pushes commits onto a new work branch of a demo repository (one commit per entry of `commits`) and
 * returns their shas, oldest first. Async git only: the forge serves from this process.
 */
async function pushWorkBranch(repo: string, branch: string, commits: Record<string, string>[]): Promise<string[]> {
  const url = new URL(`${world.forge.url}/demo/${repo}.git`);
  url.username = 'x';
  url.password = world.forgeToken;
  const dir = await fs.mkdtemp(path.join(world.dataDir, `branch-${repo}-`));
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.com' };
  await git('git', ['clone', '--quiet', url.toString(), dir], { env });
  await git('git', ['-C', dir, 'checkout', '--quiet', '-b', branch], { env });
  const shas: string[] = [];
  for (const [index, files] of commits.entries()) {
    for (const [file, content] of Object.entries(files)) await fs.writeFile(path.join(dir, file), content);
    await git('git', ['-C', dir, 'commit', '--quiet', '-am', `preview test change ${index + 1}`], { env });
    shas.push((await git('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim());
  }
  await git('git', ['-C', dir, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], { env });
  return shas;
}

async function webAppSource(file: string): Promise<string> {
  return fs.readFile(path.join(PROJECT_ROOT, 'demo', 'repos', 'web-app', file), 'utf8');
}

async function renderWithTitle(title: string): Promise<Record<string, string>> {
  return { 'src/render.js': (await webAppSource('src/render.js')).replace('All products', title) };
}

/** What a preview of a repository without upstream changes is deployed with. */
const NO_UPSTREAM = { changeSet: [], env: {}, upstream: { packages: [], previews: [], unresolved: [] } };

function deploy(activityDeps: ActivityDeps, repo: CatalogRepo, runId: string, branch: string, sha: string, round = 1): Promise<PreviewRecord> {
  return new MockActivityEnvironment().run(deployPreview, activityDeps, { runId, repo, branch, sha, round, lifetimeMs: LIFETIME_MS, ...NO_UPSTREAM });
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  timings.push(`  ${label}: ${Date.now() - started} ms`);
  return result;
}

/** A request with the path exactly as written, which fetch and URL would normalise. */
function rawRequest(method: string, requestPath: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, method, path: requestPath, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

function commandPreviewOf(preview: PreviewSpec): CatalogRepo {
  // An install step too, so the command kind is shown to install before it deploys.
  return { ...webApp, install: [{ name: 'install', run: 'echo installing', timeoutSeconds: 30 }], preview };
}

test('a static preview is built from the work branch, served, and screenshotted', async () => {
  const runId = 'cr-preview-static';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [await renderWithTitle('Spring collection, fresh in')]);

  const record = await timed('static deploy (clone, build, publish, screenshot)', () => deploy(deps, webApp, runId, branch, sha!));

  expect(record).toMatchObject({ repo: 'web-app', round: 1, sha, kind: 'static', status: 'ready', url: `${server.url}/${runId}/web-app/` });
  expect(record.output).toContain('wrote dist/index.html');
  expect(record.expiresAt - record.deployedAt).toBe(LIFETIME_MS);

  const page = await fetch(record.url!);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(page.headers.get('cache-control')).toBe('no-store');
  const html = await page.text();
  expect(html).toContain('Spring collection, fresh in');
  expect(html).not.toContain('All products');
  // Without the trailing slash, relative links would resolve one folder up: the server redirects.
  const bare = await fetch(record.url!.replace(/\/$/, ''), { redirect: 'manual' });
  expect(bare.status).toBe(301);
  expect(bare.headers.get('location')).toBe(`/${runId}/web-app/`);

  const shot = record.screenshot!;
  expect(shot).toMatchObject({ url: `${server.url}/${runId}/_screenshots/web-app-r1.png`, width: VIEWPORT.width, height: VIEWPORT.height });
  const png = await fs.readFile(path.join(storeDir, runId, '_screenshots', 'web-app-r1.png'));
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.toString('latin1', 12, 16)).toBe('IHDR');
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([VIEWPORT.width, VIEWPORT.height]);
  expect(png.length).toBe(shot.bytes);
  expect(png.length).toBeGreaterThan(5 * 1024);
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await fs.writeFile(path.join(ARTIFACTS, 'web-app.png'), png);

  const served = await fetch(shot.url);
  expect(served.status).toBe(200);
  expect(served.headers.get('content-type')).toBe('image/png');
  expect(Buffer.from(await served.arrayBuffer()).equals(png)).toBe(true);
});

/** A request to the preview server as a browser sends it for `address` (Node cannot resolve *.localhost). */
function requestAs(address: string): ReturnType<typeof rawRequest> {
  const url = new URL(address);
  return rawRequest('GET', `${url.pathname}${url.search}`, { host: url.host });
}

/** A build.mjs that writes `files` under dist/. */
function buildWriting(files: Record<string, string>): Record<string, string> {
  return {
    'build.mjs': `import { mkdir, writeFile } from 'node:fs/promises';\nimport path from 'node:path';\nconst files = ${JSON.stringify(files)};\nfor (const [name, content] of Object.entries(files)) {\n  await mkdir(path.dirname(path.join('dist', name)), { recursive: true });\n  await writeFile(path.join('dist', name), content);\n}\nconsole.log('wrote', Object.keys(files).length, 'files');\n`,
  };
}

test('a single-page app with absolute asset paths works on its own origin, and its screenshot is not blank', async () => {
  const runId = 'cr-preview-spa';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [buildWriting({
    'index.html': '<!doctype html><html><head><title>Shop</title><link rel="stylesheet" href="/assets/app.css"></head><body><div id="root"></div><script type="module" src="/assets/app.js"></script></body></html>',
    'assets/app.css': 'body{margin:0;background:#fff}.hero{background:#3b5bdb;color:#fff;font:48px sans-serif;padding:80px}',
    'assets/app.js': "document.getElementById('root').innerHTML = '<div class=\"hero\">Rendered by the app</div>';",
  })]);
  const record = await timed('single-page app deploy and checked screenshot', () => deploy(deps, webApp, runId, branch, sha!));
  const { port } = new URL(server.url);
  expect(record).toMatchObject({ status: 'ready', url: `${server.url}/${runId}/web-app/`, originUrl: `http://web-app--${runId}.localhost:${port}/` });
  // Shot on its own origin, where /assets/… is the app's: nothing wrong with it, and not one colour.
  expect(record.problems).toBeUndefined();
  expect(record.screenshot).toMatchObject({ width: 1024, height: 640 });
  const own = await requestAs(`${record.originUrl}assets/app.js`);
  expect(own).toMatchObject({ status: 200, body: expect.stringContaining('Rendered by the app') });
  // The same page under the server's shared address finds no assets: that is why people get the origin.
  expect((await requestAs(`${server.url}/assets/app.js`)).status).toBe(404);
  // An address of no preview says so.
  expect(await requestAs(`http://web-app--cr-nothing-here.localhost:${port}/`)).toMatchObject({ status: 404, body: expect.stringContaining('no preview lives at web-app--cr-nothing-here.localhost') });
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await fs.copyFile(path.join(storeDir, runId, '_screenshots', 'web-app-r1.png'), path.join(ARTIFACTS, 'spa-own-origin.png'));
});

test('a preview whose page is broken is degraded, with what went wrong', async () => {
  const runId = 'cr-preview-degraded';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [buildWriting({
    'index.html': '<!doctype html><html><body><script src="/assets/missing.js"></script><script>console.error("the app could not start: no API_URL"); throw new Error("render failed");</script></body></html>',
  })]);
  const record = await deploy(deps, webApp, runId, branch, sha!);
  expect(record.status).toBe('ready');
  expect(record.problems).toEqual(expect.arrayContaining([
    'GET /assets/missing.js answered HTTP 404',
    'console error: the app could not start: no API_URL',
    'uncaught error: render failed',
    expect.stringMatching(/^the page shows nothing: 100% of the screenshot is one colour \(#ffffff\)$/),
  ]));
  // Reviewers are told: a risk in the summary, "degraded" on the change-set page.
  const page = await requestAs(`${server.url}/${runId}/`);
  expect(page.body).toContain('status-degraded');
  expect(page.body).toContain('GET /assets/missing.js answered HTTP 404');
});

test('a build that fails gives a failed preview with the build output, and does not throw', async () => {
  const runId = 'cr-preview-broken';
  const branch = `change-request/${runId}`;
  const broken = `${await webAppSource('build.mjs')}\nthrow new Error('fixtures/products.json has no prices');\n`;
  const [sha] = await pushWorkBranch('web-app', branch, [{ 'build.mjs': broken }]);

  const record = await deploy(deps, webApp, runId, branch, sha!);

  expect(record).toMatchObject({ repo: 'web-app', sha, kind: 'static', status: 'failed', url: null, screenshot: null });
  expect(record.output).toContain('the build "node build.mjs" exited with code 1');
  expect(record.output).toContain('fixtures/products.json has no prices');
  expect((await fetch(`${server.url}/${runId}/web-app/`)).status).toBe(404);
});

test('a command preview records the URL its deploy prints last, and remove gets that URL', async () => {
  const runId = 'cr-preview-command';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [await renderWithTitle('Deployed elsewhere')]);
  // The team's remove command calls its hosting's API: here a local one that records what it was told.
  let removed = '';
  const hosting = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      removed = body;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hosting.listen(0, '127.0.0.1', resolve));
  const hostingUrl = `http://127.0.0.1:${(hosting.address() as AddressInfo).port}/remove`;
  const repo = commandPreviewOf({
    kind: 'command',
    deploy: {
      name: 'deploy',
      run: [
        'echo "deploying $PREVIEW_REPO at $PREVIEW_SHA from $PREVIEW_BRANCH for $PREVIEW_RUN_ID"',
        'grep -q "Deployed elsewhere" src/render.js && echo "the checkout has the change"',
        'echo "uploading 3 files" >&2',
        'echo http://preview.example/abc',
        'echo "done" >&2', // progress on stderr after the URL: the contract is about stdout
      ].join('\n'),
      timeoutSeconds: 30,
    },
    remove: { name: 'remove', run: `printf '%s\\n' "$PREVIEW_URL" "$PREVIEW_RUN_ID" "$PREVIEW_REPO" "$(ls -A | wc -l)" | curl -sS --data-binary @- '${hostingUrl}'`, timeoutSeconds: 30 },
    env: {},
  });

  const record = await timed('command deploy (clone, install, deploy hook, failed screenshot)', () => deploy(deps, repo, runId, branch, sha!));

  expect(record).toMatchObject({ kind: 'command', status: 'ready', url: 'http://preview.example/abc', sha });
  expect(record.output).toContain(`deploying web-app at ${sha} from ${branch} for ${runId}`);
  expect(record.output).toContain('the checkout has the change');
  expect(record.output).toContain('uploading 3 files');
  // preview.example never resolves: the screenshot fails, the preview stands, and the output says why.
  expect(record.screenshot).toBeNull();
  expect(record.output).toMatch(/no screenshot: .*preview\.example/);

  await new MockActivityEnvironment().run(removePreviews, deps, { runId, previews: [{ repo, record }] });
  // The URL, the run, the repository, and an empty working folder.
  expect(removed.trim().split('\n')).toEqual(['http://preview.example/abc', runId, 'web-app', '0']);
  hosting.close();
});

test('a deploy command that prints no URL last gives a failed preview that names the contract', async () => {
  const runId = 'cr-preview-no-url';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [await renderWithTitle('Nowhere to be seen')]);
  const repo = commandPreviewOf({ kind: 'command', deploy: { name: 'deploy', run: 'echo "deployed, have a look"; echo http://preview.example/abc >&2', timeoutSeconds: 30 }, env: {} });

  const record = await deploy(deps, repo, runId, branch, sha!);

  expect(record).toMatchObject({ kind: 'command', status: 'failed', url: null, screenshot: null });
  expect(record.output).toContain('the deploy command must print the preview URL as its last line');
  expect(record.output).toContain('its last line was "deployed, have a look"');
});

test('a redeploy replaces the preview under the same address, and removing it (twice) takes it down', async () => {
  const runId = 'cr-preview-removed';
  const branch = `change-request/${runId}`;
  const [first, second] = await pushWorkBranch('web-app', branch, [await renderWithTitle('First look'), await renderWithTitle('Second look')]);

  // The branch has moved on past round 1's commit: the preview shows that commit all the same.
  const round1 = await timed('static deploy without screenshot (older commit)', () => deploy(depsWithoutScreenshots, webApp, runId, branch, first!, 1));
  expect(round1).toMatchObject({ status: 'ready', sha: first, screenshot: null });
  expect(await (await fetch(round1.url!)).text()).toContain('First look');

  const round2 = await timed('static redeploy with screenshot', () => deploy(deps, webApp, runId, branch, second!, 2));
  expect(round2.url).toBe(round1.url);
  const html = await (await fetch(round2.url!)).text();
  expect(html).toContain('Second look');
  expect(html).not.toContain('First look');
  expect((await fetch(round2.screenshot!.url)).status).toBe(200);

  // What a worker that died half-way through publishing leaves beside the preview goes too.
  await fs.mkdir(path.join(storeDir, runId, '.web-app.0123456789ab.incoming'));
  const removal = { runId, previews: [{ repo: webApp, record: round2 }] };
  await new MockActivityEnvironment().run(removePreviews, deps, removal);
  expect((await fetch(round2.url!)).status).toBe(404);
  // The screenshot stays: a pull request body that shows it never points at nothing.
  expect((await fetch(round2.screenshot!.url)).status).toBe(200);
  expect(await fs.readdir(path.join(storeDir, runId))).toEqual(['_screenshots']);
  await new MockActivityEnvironment().run(removePreviews, deps, removal);
});

test('cancelling a deploy stops its build at once', async () => {
  const runId = 'cr-preview-cancelled';
  const branch = `change-request/${runId}`;
  const [sha] = await pushWorkBranch('web-app', branch, [await renderWithTitle('Never shown')]);
  const slowBuild: CatalogRepo = { ...webApp, preview: { kind: 'static', build: { name: 'build', run: 'sleep 60', timeoutSeconds: 120 }, outputDir: 'dist', env: {} } };
  const environment = new MockActivityEnvironment();
  const started = Date.now();
  const deploying = environment.run(deployPreview, deps, { runId, repo: slowBuild, branch, sha: sha!, round: 1, lifetimeMs: LIFETIME_MS, ...NO_UPSTREAM });
  setTimeout(() => environment.cancel(), 1_000);

  await expect(deploying).rejects.toThrow(/cancel/i);
  expect(Date.now() - started).toBeLessThan(10_000);
});

test('the preview server refuses traversal, other methods, and links out of the store', async () => {
  for (const traversal of ['/../etc/passwd', '/%2e%2e/etc/passwd', '/cr-x/web-app/..%2f..%2fpasswd', '/cr-x//web-app/', '/.hidden/web-app/']) {
    expect([traversal, (await rawRequest('GET', traversal)).status]).toEqual([traversal, 400]);
  }
  const post = await rawRequest('POST', '/cr-x/web-app/');
  expect(post.status).toBe(405);
  expect(post.headers.allow).toBe('GET, HEAD');
  expect((await rawRequest('GET', '/cr-x/web-app/missing.html')).status).toBe(404);

  await fs.mkdir(path.join(storeDir, 'cr-link'), { recursive: true });
  await fs.symlink(world.dataDir, path.join(storeDir, 'cr-link', 'web-app'));
  expect((await rawRequest('GET', '/cr-link/web-app/catalog.yaml')).status).toBe(403);
  // The root is an index of runs with previews (to their change-set pages), never a listing of the store.
  const index = await rawRequest('GET', '/');
  expect(index.status).toBe(200);
  expect(index.body).toContain('<h1>Previews</h1>');
  expect(index.body).not.toContain('cr-link');
});

test('the store takes folders and regular files only: symbolic links, hard links and FIFOs are left out and named', async () => {
  const source = path.join(world.dataDir, 'odd-build');
  await fs.mkdir(path.join(source, 'assets'), { recursive: true });
  await fs.writeFile(path.join(source, 'index.html'), '<h1>fine</h1>');
  await fs.writeFile(path.join(source, 'assets', 'app.js'), 'console.log(1)');
  // Made outside the build: a hard link inside it would serve that file's content.
  const secret = path.join(world.dataDir, 'not-for-previews.txt');
  await fs.writeFile(secret, 'private');
  await fs.link(secret, path.join(source, 'hard.txt'));
  await fs.symlink(secret, path.join(source, 'soft.txt'));
  await promisify(execFile)('mkfifo', [path.join(source, 'pipe')]);
  const { leftOut } = await publishStaticPreview(storeDir, 'cr-odd', 'web-app', source);
  expect(leftOut.sort()).toEqual(['hard.txt', 'pipe', 'soft.txt']);
  const stored = path.join(storeDir, 'cr-odd', 'web-app');
  expect((await fs.readdir(stored)).sort()).toEqual(['assets', 'index.html']);
  expect(await fs.readFile(path.join(stored, 'assets', 'app.js'), 'utf8')).toBe('console.log(1)');
  const served = await fetch(`${server.url}/cr-odd/web-app/hard.txt`);
  expect(served.status).toBe(404);
});
