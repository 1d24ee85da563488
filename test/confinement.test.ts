// Repository commands run confined (activities/sandbox.ts): an adversarial check, built here, tries to
// read the worker's secrets from /proc, the data folder and the Temporal database, to move a forge ref,
// to reach an address it was not given, and to leave a setsid process behind. All of it fails, while
// the checkout, its caches and the addresses in its environment keep working.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cleanOutput, commandEnvironment, runCommand } from '../activities/commands';
import { loopbackPortsIn, sandboxOwner, sandboxState } from '../activities/sandbox';
import { egressDecision } from '../activities/egress-proxy';
import { install } from '../activities/install-cache';
import { takeScreenshot } from '../activities/screenshot';
import { CatalogRepoSchema } from '../domain/catalog-schema';
import type { Scenario } from '../activities/agent/scenarios';
import { createWorld, waitForPhase, type World } from './helpers/world';

jest.setTimeout(60_000);

const exec = promisify(execFile);
const SECRET = 'cr-test-secret-4d1f9a0b7c2e';
let root: string;
let checkout: string;
let dataDir: string;
let allowed: http.Server;
let forbidden: http.Server;
const portOf = (s: http.Server) => (s.address() as AddressInfo).port;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-confine-'));
  dataDir = path.join(root, 'data');
  checkout = path.join(dataDir, 'worker', 'workspaces', 'r1', 'web-app');
  await fs.mkdir(checkout, { recursive: true });
  await fs.writeFile(path.join(dataDir, 'temporal.sqlite'), 'database');
  execFileSync('git', ['init', '--quiet', '--bare', path.join(dataDir, 'forge', 'repos', 'demo', 'web-app.git')]);
  const serve = (text: string) => http.createServer((_req, res) => res.end(text));
  allowed = serve('registry says hi');
  forbidden = serve('should not be reachable');
  await Promise.all([allowed, forbidden].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
});

afterAll(async () => {
  await Promise.all([allowed, forbidden].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await fs.rm(root, { recursive: true, force: true });
});

const run = (command: string, timeoutMs = 30_000) =>
  runCommand(command, { cwd: checkout, timeoutMs, env: commandEnvironment(path.join(checkout, '..', 'home'), { npm_config_registry: `http://127.0.0.1:${portOf(allowed)}/` }) });

test('what a command prints is kept as a person reads it: no colour codes, a redrawn progress line at its end', async () => {
  const ran = await run(`printf '\\033[32m✓\\033[39m built in \\033[1m234ms\\033[22m\\n'; printf 'installing 10%%\\rinstalling 60%%\\rinstalling 100%%\\n'; printf '\\033[2K\\033[1Gdone\\n'`);
  expect(ran.outputTail).toBe('✓ built in 234ms\ninstalling 100%\ndone\n');
  expect(cleanOutput('a\r\nb')).toBe('a\nb');
});

test('this machine confines repository commands (bubblewrap)', () => {
  expect(sandboxState().mode).toBe('bwrap');
});

test("a check cannot read the worker's environment through /proc, nor see its processes", async () => {
  // A process of the service with a secret in its environment, as the worker is.
  const worker = spawn('sleep', ['60'], { env: { ...process.env, CR_CONFINEMENT_SECRET: SECRET } });
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Outside the sandbox it is there for the taking.
  expect((await fs.readFile(`/proc/${worker.pid}/environ`, 'utf8')).includes(SECRET)).toBe(true);
  const ran = await run(`cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c CR_CONFINEMENT_SECRET; ls /proc | grep -c '^[0-9]' ; cat /proc/$PPID/environ 2>&1 | head -c 300; echo`);
  expect(ran.outputTail).not.toContain(SECRET);
  const [secrets, processes] = ran.outputTail.trim().split('\n').map((l) => Number(l));
  expect(secrets).toBe(0);
  // Only the command's own few processes exist in its PID namespace.
  expect(processes).toBeLessThan(10);
  worker.kill();
});

test("the data folder, the Temporal database and the forge's repositories are out of reach; the checkout is writable", async () => {
  const sqlite = path.join(dataDir, 'temporal.sqlite');
  const bare = path.join(dataDir, 'forge', 'repos', 'demo', 'web-app.git');
  const ran = await run(
    [
      `cat ${sqlite} && echo READ-DB`,
      `echo x >> ${sqlite} && echo WROTE-DB`,
      `ls -a ${dataDir} | tr '\\n' ' '; echo`,
      `git --git-dir=${bare} update-ref refs/heads/main 0000000000000000000000000000000000000000 2>&1; git --git-dir=${bare} branch evil 2>&1 && echo MOVED-REF`,
      `ls /root /work 2>&1 | head -2`,
      `echo built > out.txt && echo WROTE-CHECKOUT`,
      `touch /usr/evil 2>/dev/null && echo WROTE-SYSTEM`,
      'true',
    ].join('; '),
  );
  expect(ran.outputTail).not.toMatch(/READ-DB|MOVED-REF|WROTE-SYSTEM/);
  // The data folder is only the path down to the checkout: no database, no forge. (Under /tmp, as here, a
  // write beside it lands in the sandbox's private /tmp; the real database below is untouched.)
  expect(ran.outputTail).toMatch(/^\. \.\. (temporal\.sqlite )?worker $/m);
  expect(ran.outputTail).toMatch(/temporal\.sqlite: No such file or directory/);
  expect(ran.outputTail).toContain('WROTE-CHECKOUT');
  expect(await fs.readFile(sqlite, 'utf8')).toBe('database');
  expect(execFileSync('git', ['--git-dir', bare, 'for-each-ref']).toString()).toBe('');
  expect(await fs.readFile(path.join(checkout, 'out.txt'), 'utf8')).toBe('built\n');
});

test('only the addresses in its environment are reachable', async () => {
  expect(loopbackPortsIn({ npm_config_registry: `http://127.0.0.1:${portOf(allowed)}/`, OTHER: 'no url' })).toEqual([portOf(allowed)]);
  const fetchOf = (port: number) => `node -e "fetch('http://127.0.0.1:${port}/').then(r => r.text()).then(t => console.log('GOT', t), e => console.log('REFUSED', e.cause?.code ?? e.message))"`;
  const ran = await run(`${fetchOf(portOf(allowed))}; ${fetchOf(portOf(forbidden))}; node -e "require('dns').lookup('registry.npmjs.org', (e) => console.log(e ? 'NO-DNS' : 'DNS'))"`);
  expect(ran.outputTail).toContain('GOT registry says hi');
  expect(ran.outputTail).not.toContain('should not be reachable');
  expect(ran.outputTail).toMatch(/REFUSED ECONNREFUSED/);
  expect(ran.outputTail).toContain('NO-DNS');
});

test('a command is user 1000 inside and, when the worker is root, an unprivileged user outside too', async () => {
  const marker = `33${Math.floor(Math.random() * 1000)}`;
  const running = run(`id -u; sleep ${marker}`, 3000);
  // Look while it sleeps (a loaded machine may take a while to start it).
  let outside = '';
  for (const until = Date.now() + 2500; !outside && Date.now() < until; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    outside = execFileSync('sh', ['-c', `ps -o uid= -C sleep -o args= | grep '[s]leep ${marker}' | awk '{print $1}'`]).toString().trim();
  }
  const ran = await running;
  expect(ran.outputTail.split('\n')[0]).toBe('1000');
  if (process.getuid?.() === 0) expect(outside).toBe(String(sandboxOwner()));
  else expect(outside).toBe(String(process.getuid?.()));
  expect(outside).not.toBe('0');
});

test('no process outlives its check, setsid or not', async () => {
  const marker = `31${Math.floor(Math.random() * 1000)}`;
  const ran = await run(`setsid sh -c 'sleep ${marker}' > /dev/null 2>&1 & (sleep ${marker} &) ; echo started`);
  expect(ran.exitCode).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const left = execFileSync('sh', ['-c', `pgrep -f '[s]leep ${marker}' || true`]).toString().trim();
  expect(left).toBe('');
});

test('a timed-out check is killed with everything it started', async () => {
  const marker = `32${Math.floor(Math.random() * 1000)}`;
  const ran = await run(`setsid sh -c 'sleep ${marker}' & sleep ${marker}`, 1500);
  expect(ran.timedOut).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(execFileSync('sh', ['-c', `pgrep -f '[s]leep ${marker}' || true`]).toString().trim()).toBe('');
});

test('hosts the catalog allows are reached through the egress proxy; every other host gets a plain 403', async () => {
  expect(egressDecision(['registry.npmjs.org', '*.example.com', 'localhost:8080'], 'cdn.example.com', 443).allowed).toBe(true);
  expect(egressDecision(['*.example.com'], 'example.com.evil.net', 443).allowed).toBe(false);
  expect(egressDecision(['localhost:8080'], 'localhost', 8081).allowed).toBe(false);
  // `--noproxy ''` sends loopback through the proxy too, as a public name would go.
  const curl = (url: string) => `curl -sS --noproxy '' -o - -w ' [%{http_code}]\\n' ${url} 2>&1`;
  const ran = await runCommand([curl(`http://localhost:${portOf(allowed)}/`), curl(`http://localhost:${portOf(forbidden)}/`), curl('https://pypi.org/simple/'), 'true'].join('; '), {
    cwd: checkout,
    timeoutMs: 30_000,
    env: commandEnvironment(path.join(checkout, '..', 'home')),
    confinement: { allowHosts: [`localhost:${portOf(allowed)}`] },
  });
  expect(ran.outputTail).toContain('registry says hi [200]');
  expect(ran.outputTail).not.toContain('should not be reachable');
  expect(ran.outputTail).toContain(`sandbox egress refused: localhost:${portOf(forbidden)} is not in the catalog's allowHosts (localhost:${portOf(allowed)})`);
  // https goes through CONNECT, which the proxy refuses with 403 before any TLS.
  expect(ran.outputTail).toMatch(/CONNECT.*403|403.*CONNECT|\[000\]/);
});

describe('install credentials', () => {
  const TOKEN = 'npm_cr_test_install_token_7b1e0c';
  let registry: http.Server;
  const seen: { url: string; authorization: string | undefined }[] = [];
  beforeAll(async () => {
    registry = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => registry.close(() => resolve())));

  const repoWith = (run: string, tokenEnv = 'CR_TEST_NPM_TOKEN') =>
    CatalogRepoSchema.parse({
      id: 'private-app', url: 'http://127.0.0.1/demo/private-app.git', role: 'app', description: 'An app with a private dependency', owners: ['fiona'],
      install: [{ name: 'install', run }], checks: [],
      installCredentials: [{ registry: `http://127.0.0.1:${portOf(registry)}/`, scope: '@acme', tokenEnv }],
    });

  test('reach the install, in an .npmrc that npm uses and that is gone after it; masked in its output', async () => {
    const home = path.join(checkout, '..', 'home');
    const cacheDir = path.join(root, 'install-cache');
    const secrets = { CR_TEST_NPM_TOKEN: TOKEN };
    const results = await install(repoWith('npm view @acme/private-ui version --loglevel=error >/dev/null 2>&1; echo "rc file: $npm_config_userconfig"; cat "$npm_config_userconfig"; env | grep -c CR_TEST_NPM_TOKEN; true'), checkout, { cacheDir, env: commandEnvironment(home), secrets });
    expect(results).toHaveLength(1);
    const output = results[0]!.outputTail;
    // npm sent the token to the scope's registry …
    expect(seen.some((r) => r.url.includes('private-ui') && r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    // … the install saw it only in the file, and its output shows it masked.
    expect(output).not.toContain(TOKEN);
    expect(output).toContain(':_authToken=[REDACTED]');
    expect(output).toMatch(/^0$/m);
    const rcFile = /rc file: (\S+)/.exec(output)![1]!;
    await expect(fs.stat(rcFile)).rejects.toThrow(/ENOENT/);
    // A check afterwards has neither the file nor the variable.
    const check = await runCommand(`ls ${path.dirname(rcFile)} 2>&1; echo "[$npm_config_userconfig]"; grep -rl ${TOKEN} . ${home} 2>/dev/null | head -1`, { cwd: checkout, timeoutMs: 30_000, env: commandEnvironment(home) });
    expect(check.outputTail).toMatch(/No such file or directory/);
    expect(check.outputTail).toContain('[]');
    expect(check.outputTail).not.toContain(TOKEN);
  });

  test('a token the worker does not have fails the install plainly and runs nothing', async () => {
    const results = await install(repoWith('echo SHOULD-NOT-RUN', 'CR_TEST_UNSET_TOKEN'), checkout, { cacheDir: path.join(root, 'install-cache'), env: commandEnvironment(path.join(checkout, '..', 'home')), secrets: {} });
    expect(results).toMatchObject([{ status: 'failed', exitCode: null }]);
    expect(results[0]!.outputTail).toMatch(/^Not run: the install needs CR_TEST_UNSET_TOKEN for http:\/\/127\.0\.0\.1:\d+\/, and the worker's environment does not set it/);
    expect(results[0]!.outputTail).not.toContain('SHOULD-NOT-RUN');
  });
});

/** Commits files to a forge repository's main, as someone pushing to it would. */
async function seedFile(world: World, repo: string, files: Record<string, string>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-seed-'));
  const auth = ['-c', `http.extraHeader=Authorization: Basic ${Buffer.from(`x:${world.forgeToken}`).toString('base64')}`];
  // Asynchronously: the forge answers from this very process.
  const git = (...args: string[]) => exec('git', [...auth, '-C', dir, ...args]);
  await exec('git', [...auth, 'clone', '--quiet', `${world.forge.url}/demo/${repo}.git`, dir]);
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  await git('add', '.');
  await git('-c', 'user.name=Someone', '-c', 'user.email=someone@example.com', 'commit', '--quiet', '-m', 'Add notes');
  await git('push', '--quiet', 'origin', 'HEAD');
  await fs.rm(dir, { recursive: true, force: true });
}

describe('secrets in a run', () => {
  let world: World;
  afterAll(async () => world?.close());

  test('a secret an agent writes (encoded) never reaches a commit, and one a check prints is masked in state, history, summary and PR', async () => {
    // Stands in for an agent or a repository that got hold of the forge token: it can no longer read it (see
    // above), so the test hands it over, and checks that it leaves in no form.
    world = await createWorld({
      repos: { 'ui-kit': { checks: [{ name: 'test', run: 'node --test', timeoutSeconds: 60 }, { name: 'print', run: `printf 'hex %s\\nb64 %s\\n' "$(cat notes/hex.txt)" "$(cat notes/b64.txt)"`, timeoutSeconds: 30 }] } },
    });
    const token = world.forgeToken;
    const b64 = Buffer.from(`token=${token}`).toString('base64');
    const hex = Buffer.from(token).toString('hex');
    const leaky: Scenario = {
      id: 'leaky', requirement: 'leaky requirement', match: ['leaky'], propose: [],
      edit: {
        'ui-kit': {
          initial: [{
            calls: [
              { name: 'write_file', input: { path: 'notes/stolen.txt', content: `${b64}\n` } },
              { name: 'write_file', input: { path: 'notes/fine.md', content: 'Nothing secret here.\n' } },
            ],
            expect: [], delayMs: 0,
          }],
          fix: [], feedback: [], continue: [],
        },
      },
    };
    const { stop } = await world.startWorker([leaky]);
    try {
      // The check prints the encoded secret from files already on main (a repository that carries one).
      await seedFile(world, 'ui-kit', { 'notes/hex.txt': `${hex}\n`, 'notes/b64.txt': `${b64}\n` });
      const { runId } = await world.gateway.start({ requirement: 'leaky requirement', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
      const state = await waitForPhase(world.gateway, runId, 'awaiting_review');
      const repo = state.repos['ui-kit']!;
      expect(repo.files.map((f) => f.path)).toEqual(['notes/fine.md']);
      expect(repo.agentNotes).toMatch(/kept `notes\/stolen\.txt` out of the commit/);
      const printed = repo.checks.at(-1)!.results.find((r) => r.name === 'print')!;
      expect(printed.outputTail).toMatch(/hex \[REDACTED\]/);
      expect(printed.outputTail).toMatch(/b64 [A-Za-z0-9+/]*\[REDACTED\]/);

      await world.gateway.send(runId, 'approve', { by: 'fiona', key: 'approve' });
      const done = await waitForPhase(world.gateway, runId, 'tracking', 120_000);
      const history = JSON.stringify(await world.env.client.workflow.getHandle(runId).fetchHistory());
      const pulls = await fs.readFile(path.join(world.forge.reposDir, 'demo', 'ui-kit.pulls.json'), 'utf8');
      const branchFiles = (await exec('git', ['--git-dir', path.join(world.forge.reposDir, 'demo', 'ui-kit.git'), 'ls-tree', '-r', '--name-only', `change-request/${runId}`])).stdout;
      expect(branchFiles).not.toContain('notes/stolen.txt');
      for (const [where, text] of Object.entries({ state: JSON.stringify(done), history, pulls })) {
        for (const form of [token, hex, Buffer.from(token).toString('base64').slice(2, -2)]) expect({ where, leaked: text.includes(form) }).toEqual({ where, leaked: false });
      }
    } finally {
      await stop();
    }
  });
});

/** The Chromium processes descending from `pid`, with the user each runs as. */
function chromiumBelow(pid: number): { pid: number; user: string }[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,user=,args=']).toString().split('\n').filter(Boolean).map((line) => {
    const [p = '', pp = '', user = '', ...args] = line.trim().split(/\s+/);
    return { pid: Number(p), ppid: Number(pp), user, args: args.join(' ') };
  });
  const below = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of rows) if (below.has(row.ppid) && !below.has(row.pid)) (below.add(row.pid), (grew = true));
  }
  return rows.filter((row) => row.pid !== pid && below.has(row.pid) && row.args.includes('/usr/lib/chromium/chromium')).map(({ pid: p, user }) => ({ pid: p, user }));
}

describe('screenshots', () => {
  test('Chromium renders a page as nobody with its own sandbox, and loads nothing from other origins', async () => {
    const outside: string[] = [];
    const elsewhere = http.createServer((req, res) => (outside.push(req.url ?? ''), res.end('tracked')));
    let seenAs: { nobody: number; root: number } | null = null;
    const site = http.createServer((req, res) => {
      if (req.url === '/') {
        // While Chromium asks for the page, it is running: whom as?
        // Only this test's Chromium (below this process): other test files run their own Chromium meanwhile.
        const ours = chromiumBelow(process.pid);
        const count = (user: string) => ours.filter((p) => p.user === user).length;
        seenAs = { nobody: count('nobody'), root: count('root') };
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><h1>Preview</h1><img src="http://127.0.0.1:${portOf(elsewhere)}/beacon.png"><script>fetch('http://127.0.0.1:${portOf(elsewhere)}/xhr').catch(() => {})</script>`);
      } else res.writeHead(404).end();
    });
    await Promise.all([elsewhere, site].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    try {
      const file = path.join(root, 'shot.png');
      const shot = await takeScreenshot(`http://127.0.0.1:${portOf(site)}/`, file, { chromiumPath: '/usr/bin/chromium', viewport: { width: 800, height: 600 } });
      expect(shot).toMatchObject({ width: 800, height: 600 });
      expect(shot.unsandboxed).toBeUndefined();
      expect(seenAs).toMatchObject({ root: 0 });
      expect(seenAs!.nobody).toBeGreaterThan(0);
      expect(outside).toEqual([]);
    } finally {
      await Promise.all([elsewhere, site].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
  });
});
