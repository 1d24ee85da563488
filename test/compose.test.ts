// docker-compose.temporal.yml and the Dockerfile cannot be run here (no Docker engine), so this checks
// that they are wired consistently, runs the compose file's namespace/search-attribute setup script
// against a real Temporal dev server, and asks `docker compose config` when a Compose v2 CLI exists.
// It also covers scripts/ensure-temporal.ts.
import { freePort } from '../activities/free-port';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ensureTemporalCli } from '../scripts/ensure-temporal';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { WORKER_ROLES } from '../workflows/task-queues';
import { readConfig } from '../worker/config';

const ROOT = path.resolve(__dirname, '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.temporal.yml');

const EXPECTED_SEARCH_ATTRIBUTES: Record<string, string> = {
  CrRequester: 'Keyword',
  CrPhase: 'Keyword',
  CrRepos: 'KeywordList',
  CrAutonomy: 'Keyword',
  CrCostUsd: 'Double',
};
/** @temporalio/common's SearchAttributeType → the `temporal` CLI's --type names. */
const CLI_TYPE: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};
const DEPENDS_ON_CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'];

// ---------------------------------------------------------------------------------------------------------
// A small model of the compose file, interpolated the way Compose does it.

type EnvMap = Record<string, string | undefined>;
type PortSpec = string | number | { published?: string | number; target: number; host_ip?: string; protocol?: string };
type VolumeSpec = string | { type?: string; source?: string; target: string };
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  environment?: string[] | Record<string, string | number | boolean | null>;
  ports?: PortSpec[];
  volumes?: VolumeSpec[];
  healthcheck?: unknown;
  restart?: string;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, unknown>;
}

/** Compose's variable interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR:+alt}. */
function interpolate(text: string, env: EnvMap): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match: string, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare) as string;
      const value = env[name];
      const unsetOrEmpty = value === undefined || value === '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return unsetOrEmpty ? (arg ?? '') : value;
        case '-':
          return value === undefined ? (arg ?? '') : value;
        case ':?':
        case '?':
          if (op === ':?' ? unsetOrEmpty : value === undefined) throw new Error(`required variable ${name}: ${arg}`);
          return value ?? '';
        case ':+':
          return unsetOrEmpty ? '' : (arg ?? '');
        case '+':
          return value === undefined ? '' : (arg ?? '');
        default:
          throw new Error(`unsupported interpolation ${match}`);
      }
    },
  );
}

function interpolateTree<T>(node: T, env: EnvMap): T {
  if (typeof node === 'string') return interpolate(node, env) as T;
  if (Array.isArray(node)) return node.map((item) => interpolateTree(item, env)) as T;
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateTree(v, env)])) as T;
  }
  return node;
}

const RAW_TEXT = readFileSync(COMPOSE_FILE, 'utf8');
// The worker services share their settings through YAML anchors and merge keys (`<<: *worker`), as Compose reads them.
const RAW = YAML.parse(RAW_TEXT, { merge: true }) as ComposeFile;
/** The one setting Compose requires from the shell: the build being deployed. */
const DEPLOY_ENV = { WORKER_BUILD_ID: '0123abcd4567' };

function load(env: EnvMap = {}): ComposeFile {
  return interpolateTree(RAW, { ...DEPLOY_ENV, ...env });
}

/** A service's environment as a map; a key without a value (pass-through) is undefined. */
function environmentOf(service: Service): EnvMap {
  const env = service.environment;
  if (!env) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, undefined] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? undefined : String(v)]));
}

function dependenciesOf(service: Service): Record<string, string> {
  const deps = service.depends_on;
  if (!deps) return {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, spec]) => [name, spec?.condition ?? 'service_started']));
}

function commandText(service: Service): string {
  const parts = [service.entrypoint, service.command].flatMap((c) => (c === undefined ? [] : Array.isArray(c) ? c : [c]));
  return parts.join(' ');
}

function publishedPorts(service: Service): { hostIp: string; port: string; protocol: string }[] {
  return (service.ports ?? []).flatMap((spec) => {
    if (typeof spec === 'object') {
      return spec.published === undefined ? [] : [{ hostIp: spec.host_ip ?? '0.0.0.0', port: String(spec.published), protocol: spec.protocol ?? 'tcp' }];
    }
    const [mapping = '', protocol = 'tcp'] = String(spec).split('/');
    const parts = mapping.split(':');
    if (parts.length === 1) return []; // container port only: Docker picks a free host port
    const [hostIp, port] = parts.length === 3 ? [parts[0] as string, parts[1] as string] : ['0.0.0.0', parts[0] as string];
    return [{ hostIp, port, protocol }];
  });
}

function hostOf(address: string): { host: string; port: number } {
  const match = /^([^:]+):(\d+)$/.exec(address);
  if (!match) throw new Error(`not a host:port address: ${address}`);
  return { host: match[1] as string, port: Number(match[2]) };
}

function buildOf(service: Service): { context: string; dockerfile: string } {
  const build = typeof service.build === 'string' ? { context: service.build } : (service.build ?? {});
  const context = path.resolve(ROOT, build.context ?? '.');
  return { context, dockerfile: path.resolve(context, build.dockerfile ?? 'Dockerfile') };
}

/** Dockerfile instructions (line continuations joined, comments dropped). */
function dockerfileInstructions(file: string): { keyword: string; args: string }[] {
  const text = readFileSync(file, 'utf8').replace(/\\\r?\n/g, ' ');
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

function isPinnedImage(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSegment = image.split('/').pop() ?? '';
  const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : '';
  return tag !== '' && tag !== 'latest';
}

const compose = load();
const services = compose.services;
const serviceNames = Object.keys(services);
const postgres = Object.entries(services).find(([, s]) => /^postgres:/.test(s.image ?? ''));
const workerServices = Object.entries(services).filter(([name]) => name.startsWith('worker-'));
/** The agent role's worker needs every setting a worker reads (model key, tokens, catalog, data). */
const worker = services['worker-agent'];
const setupEntry = Object.entries(services).find(([, s]) => commandText(s).includes('search-attribute create'));

// ---------------------------------------------------------------------------------------------------------

describe('docker-compose.temporal.yml', () => {
  test('parses and has the expected services', () => {
    expect(serviceNames.length).toBeGreaterThan(0);
    expect(postgres).toBeDefined();
    expect(worker).toBeDefined();
    expect(Object.values(services).some((s) => /^temporalio\/server:/.test(s.image ?? ''))).toBe(true);
    expect(Object.values(services).some((s) => /^temporalio\/ui:/.test(s.image ?? ''))).toBe(true);
    // The deprecated all-in-one image is not used; schema setup runs temporal-sql-tool from admin-tools.
    expect(Object.values(services).some((s) => /temporalio\/auto-setup/.test(s.image ?? ''))).toBe(false);
    const schema = Object.values(services).find((s) => commandText(s).includes('temporal-sql-tool'));
    expect(schema?.image).toMatch(/^temporalio\/admin-tools:/);
    expect(setupEntry?.[1].image).toMatch(/^temporalio\/admin-tools:/);
  });

  test('every depends_on names an existing service with a valid condition, without cycles', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries(dependenciesOf(service))) {
        expect({ service: name, dependency, exists: serviceNames.includes(dependency) }).toEqual({ service: name, dependency, exists: true });
        expect(DEPENDS_ON_CONDITIONS).toContain(condition);
        const target = services[dependency] as Service;
        if (condition === 'service_healthy') expect({ dependency, healthcheck: Boolean(target.healthcheck) }).toEqual({ dependency, healthcheck: true });
        if (condition === 'service_completed_successfully') {
          // A one-shot job: a service that restarts forever would never "complete".
          expect({ dependency, restart: target.restart ?? 'no' }).toEqual({ dependency, restart: expect.not.stringMatching(/^(always|unless-stopped)$/) });
        }
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, trail: string[]): void => {
      if (done.has(name)) return;
      if (visiting.has(name)) throw new Error(`depends_on cycle: ${[...trail, name].join(' → ')}`);
      visiting.add(name);
      for (const dependency of Object.keys(dependenciesOf(services[name] as Service))) visit(dependency, [...trail, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of serviceNames) visit(name, []);
  });

  test('the workers start only after the cluster, namespace and search attributes are ready', () => {
    const [setupName] = setupEntry ?? [];
    expect(setupName).toBeDefined();
    expect(workerServices.length).toBe(WORKER_ROLES.length);
    for (const [name, service] of workerServices) {
      expect({ name, condition: dependenciesOf(service)[setupName as string] }).toEqual({ name, condition: 'service_completed_successfully' });
    }
  });

  test('one worker service per role, each running worker/main.ts for its role only, all of one build', () => {
    const roles = workerServices.map(([, service]) => environmentOf(service).WORKER_ROLES);
    expect([...roles].sort()).toEqual([...WORKER_ROLES].sort());
    for (const [name, service] of workerServices) {
      const env = environmentOf(service);
      expect({ name, command: commandText(service) }).toEqual({ name, command: expect.stringContaining('worker/main.ts') });
      // The role is a setting worker/config.ts accepts, and each service names exactly one.
      expect({ name, roles: readConfig({ WORKER_ROLES: env.WORKER_ROLES }).workers.roles }).toEqual({ name, roles: [env.WORKER_ROLES] });
      expect({ name, build: env.WORKER_BUILD_ID, image: service.image }).toEqual({ name, build: DEPLOY_ENV.WORKER_BUILD_ID, image: `change-request-worker:${DEPLOY_ENV.WORKER_BUILD_ID}` });
      expect({ name, queue: env.TEMPORAL_TASK_QUEUE, deployment: env.TEMPORAL_DEPLOYMENT_NAME }).toEqual({ name, queue: 'change-requests', deployment: 'change-request' });
    }
    // The build id reaches the image too, where no .git exists to take it from.
    expect((worker?.build as { args?: Record<string, string> }).args?.WORKER_BUILD_ID).toBe(DEPLOY_ENV.WORKER_BUILD_ID);
    const instructions = dockerfileInstructions(buildOf(worker as Service).dockerfile);
    expect(instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('WORKER_BUILD_ID'))).toBeDefined();
    expect(instructions.find((i) => i.keyword === 'ENV' && i.args.includes('WORKER_BUILD_ID=${WORKER_BUILD_ID}'))).toBeDefined();
  });

  test('without WORKER_BUILD_ID Compose stops with a message that says what to set', () => {
    expect(() => interpolateTree(RAW, {})).toThrow(/required variable WORKER_BUILD_ID: set WORKER_BUILD_ID/);
  });

  test('service names used as hosts in the environment exist', () => {
    let checked = 0;
    for (const [name, service] of Object.entries(services)) {
      const env = environmentOf(service);
      for (const [key, value] of Object.entries(env)) {
        if (value === undefined) continue;
        if (key === 'TEMPORAL_ADDRESS') {
          const { host, port } = hostOf(value);
          expect({ service: name, key, host, exists: serviceNames.includes(host) }).toEqual({ service: name, key, host, exists: true });
          expect(port).toBe(7233);
          expect(services[host]?.image).toMatch(/^temporalio\/server:/);
          checked += 1;
        }
        if (key.endsWith('_SEEDS')) {
          for (const host of value.split(',').map((h) => h.trim())) {
            expect({ service: name, key, host, exists: serviceNames.includes(host) }).toEqual({ service: name, key, host, exists: true });
            if (key.startsWith('POSTGRES')) expect(host).toBe(postgres?.[0]);
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4); // temporal-setup, ui, worker addresses; schema and server DB hosts
  });

  test.each([
    ['defaults', {}],
    ['overridden in the shell', { POSTGRES_USER: 'alice', POSTGRES_PASSWORD: 's3cret' }],
  ])('database credentials match between PostgreSQL and the Temporal services (%s)', (_label, env: EnvMap) => {
    const resolved = load(env).services;
    const db = environmentOf(resolved[postgres?.[0] as string] as Service);
    const user = db.POSTGRES_USER ?? 'postgres';
    const password = db.POSTGRES_PASSWORD;
    expect(password).toBeTruthy();
    if (env.POSTGRES_USER) expect(user).toBe(env.POSTGRES_USER);
    const clients = Object.entries(resolved).filter(([, s]) => environmentOf(s).POSTGRES_SEEDS !== undefined);
    expect(clients.length).toBeGreaterThanOrEqual(2); // the schema job and the server
    for (const [name, service] of clients) {
      const e = environmentOf(service);
      expect({ service: name, user: e.POSTGRES_USER }).toEqual({ service: name, user });
      expect({ service: name, password: e.POSTGRES_PWD ?? e.SQL_PASSWORD }).toEqual({ service: name, password });
      if (e.DB_PORT !== undefined) expect(e.DB_PORT).toBe('5432');
    }
  });

  test('published host ports do not collide', () => {
    const seen = new Map<string, string>();
    for (const [name, service] of Object.entries(services)) {
      for (const { hostIp, port, protocol } of publishedPorts(service)) {
        expect(port).toMatch(/^\d+$/);
        const key = `${port}/${protocol}`;
        const other = seen.get(key);
        expect({ port: key, [name]: hostIp, clashesWith: other }).toEqual({ port: key, [name]: hostIp, clashesWith: undefined });
        seen.set(key, name);
      }
    }
    expect([...seen.keys()]).toEqual(expect.arrayContaining(['7233/tcp', '8233/tcp']));
  });

  test('the worker builds from a Dockerfile whose CMD runs worker/main.ts', () => {
    const { context, dockerfile } = buildOf(worker as Service);
    expect(existsSync(context)).toBe(true);
    expect(existsSync(dockerfile)).toBe(true);
    const instructions = dockerfileInstructions(dockerfile);
    const starts = instructions.filter((i) => i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT');
    expect(starts.map((i) => i.args).join(' ')).toContain('worker/main.ts');
    expect(commandText(worker as Service)).toContain('worker/main.ts');
    expect(existsSync(path.join(ROOT, 'worker', 'main.ts'))).toBe(true);
    // Not root at run time.
    const user = instructions.filter((i) => i.keyword === 'USER').pop();
    expect(user?.args).toBeDefined();
    expect(user?.args).not.toMatch(/^(root|0)(:|$)/);
    // Every base image is pinned too.
    for (const from of instructions.filter((i) => i.keyword === 'FROM')) {
      const image = from.args.split(/\s+/).find((a) => !a.startsWith('--')) as string;
      expect({ from: image, pinned: isPinnedImage(image) }).toEqual({ from: image, pinned: true });
    }
    // The default catalog path is inside the image (WORKDIR + demo/catalog.yaml).
    const workdir = instructions.filter((i) => i.keyword === 'WORKDIR').pop()?.args;
    const catalog = environmentOf(worker as Service).CATALOG_PATH as string;
    expect(catalog.startsWith(`${workdir}/`)).toBe(true);
    expect(existsSync(path.join(ROOT, path.relative(workdir as string, catalog)))).toBe(true);
  });

  test('the worker gets the settings it reads, and keeps its data in a named volume', () => {
    const env = environmentOf(worker as Service);
    expect(env.TEMPORAL_TASK_QUEUE).toBe('change-requests');
    expect(env.TEMPORAL_NAMESPACE).toBe(environmentOf(setupEntry?.[1] as Service).TEMPORAL_NAMESPACE);
    const rawEnv = environmentOf(RAW.services['worker-agent'] as Service);
    expect(rawEnv.ANTHROPIC_API_KEY).toContain('${ANTHROPIC_API_KEY');
    expect(rawEnv.GITHUB_TOKEN).toContain('${GITHUB_TOKEN');
    expect(load({ ANTHROPIC_API_KEY: 'key-from-host' }).services['worker-agent']?.environment).toMatchObject({ ANTHROPIC_API_KEY: 'key-from-host' });
    // Worker config validates FORGE_URL as a URL: it must be absent, not empty, when the host has none.
    expect(env.FORGE_URL ?? undefined).toBeUndefined();

    const dataDir = env.DATA_DIR as string;
    const mount = (worker?.volumes ?? [])
      .map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : { source: v.source, target: v.target }))
      .find((v) => v.target === dataDir);
    expect(mount?.source).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(mount?.source);
  });

  test('named volumes and configs used by services are declared', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source;
        if (!source || /^[./~]/.test(source) || (typeof volume === 'object' && volume.type === 'bind')) continue;
        expect({ service: name, volume: source, declared: Object.keys(compose.volumes ?? {}).includes(source) }).toEqual({ service: name, volume: source, declared: true });
      }
      for (const config of (service as { configs?: ({ source: string } | string)[] }).configs ?? []) {
        const source = typeof config === 'string' ? config : config.source;
        expect(Object.keys(compose.configs ?? {})).toContain(source);
      }
    }
  });

  test('all images are pinned to a tag (not latest)', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.image === undefined) {
        expect({ service: name, build: Boolean(service.build) }).toEqual({ service: name, build: true });
        continue;
      }
      expect({ service: name, image: service.image, pinned: isPinnedImage(service.image) }).toEqual({ service: name, image: service.image, pinned: true });
    }
  });

  test("registers the project's search attributes with the admin tools", () => {
    const [, setup] = setupEntry as [string, Service];
    const script = commandText(setup);
    expect(script).toContain('temporal operator search-attribute create');
    expect(script).toContain('SEARCH_ATTRIBUTES');
    const listed = Object.fromEntries(
      (environmentOf(setup).SEARCH_ATTRIBUTES ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((pair) => pair.split('=') as [string, string]),
    );
    expect(listed).toEqual(EXPECTED_SEARCH_ATTRIBUTES);
    // ...and they are the ones the code sets (domain/search-attributes.ts).
    const fromCode = Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, CLI_TYPE[key.type]]));
    expect(listed).toEqual(fromCode);
  });

  test('`docker compose config` accepts the file (when a Compose v2 CLI is installed)', async () => {
    const composeCli = await findComposeCli();
    if (!composeCli) {
      console.info('docker compose is not installed here: skipped `docker compose config -q`');
      return;
    }
    const result = await run(composeCli.command, [...composeCli.args, '-f', COMPOSE_FILE, 'config', '-q'], { cwd: ROOT });
    expect({ code: result.code, stderr: result.stderr.trim() }).toEqual({ code: 0, stderr: '' });
  });
});

describe('the compose setup script against a Temporal dev server', () => {
  let server: ChildProcess | undefined;
  let address = '';
  let cli = '';
  let binDir = '';

  beforeAll(async () => {
    cli = await ensureTemporalCli(() => undefined);
    binDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-compose-bin-'));
    await fs.symlink(cli, path.join(binDir, 'temporal')); // the script calls `temporal` from PATH
    ({ server, address } = await startDevServer(cli));
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (binDir) await fs.rm(binDir, { recursive: true, force: true });
  });

  test('creates the namespace and registers the search attributes, and is idempotent', async () => {
    const [, setup] = setupEntry as [string, Service];
    const script = (setup.command as string[]).join('\n');
    const env = {
      ...process.env,
      ...environmentOf(setup),
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'compose-check', // the dev server already has "default": make the script create one
      PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
    };
    const first = await run('/bin/sh', ['-c', script], { env });
    if (first.code !== 0) throw new Error(`the setup script failed (exit ${first.code}):\n${first.stdout}\n${first.stderr}`);
    expect(first.stdout).toContain('Created namespace compose-check');

    const list = await run(cli, ['operator', 'search-attribute', 'list', '--address', address, '--namespace', 'compose-check']);
    expect(list.code).toBe(0);
    for (const [name, type] of Object.entries(EXPECTED_SEARCH_ATTRIBUTES)) {
      expect(list.stdout).toMatch(new RegExp(`\\b${name}\\s+${type}\\b`));
    }

    const second = await run('/bin/sh', ['-c', script], { env });
    if (second.code !== 0) throw new Error(`the setup script failed on its second run (exit ${second.code}):\n${second.stdout}\n${second.stderr}`);
    expect(second.stdout).toContain('Namespace compose-check exists');
  }, 240_000);
});

describe('scripts/ensure-temporal.ts', () => {
  test('a TEMPORAL_BIN that points nowhere is an error naming TEMPORAL_BIN', async () => {
    const missing = path.join(os.tmpdir(), `no-such-temporal-${process.pid}`);
    await expect(ensureTemporalCli(() => undefined, { env: { ...process.env, TEMPORAL_BIN: missing } })).rejects.toThrow(
      new RegExp(`TEMPORAL_BIN is set to "${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", but there is no file`),
    );
  });

  test('a TEMPORAL_BIN that does not run is an error, not a fall-through', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-bad-temporal-'));
    const bad = path.join(dir, 'temporal');
    await fs.writeFile(bad, '#!/bin/sh\necho "broken on purpose" >&2\nexit 3\n', { mode: 0o755 });
    try {
      await expect(ensureTemporalCli(() => undefined, { env: { ...process.env, TEMPORAL_BIN: bad } })).rejects.toThrow(/TEMPORAL_BIN.*broken on purpose/s);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('returns an absolute path to a CLI whose --version says "temporal version"', async () => {
    const bin = await ensureTemporalCli(() => undefined);
    expect(path.isAbsolute(bin)).toBe(true);
    const version = await run(bin, ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toContain('temporal version');
  });
});

// ---------------------------------------------------------------------------------------------------------

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, timeout: 100_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}${error.message}` : stderr });
    });
  });
}

async function findComposeCli(): Promise<{ command: string; args: string[] } | undefined> {
  const plugin = await run('docker', ['compose', 'version', '--short']);
  if (plugin.code === 0) return { command: 'docker', args: ['compose'] };
  const standalone = await run('docker-compose', ['version', '--short']);
  // Compose v1 (Python) does not know this file's newer keys (configs.content ...): only v2+ counts.
  if (standalone.code === 0 && !/^v?1\./.test(standalone.stdout.trim())) return { command: 'docker-compose', args: [] };
  return undefined;
}

/** A headless dev server on free loopback ports, healthy; retried if a port was taken in the meantime. */
async function startDevServer(cli: string): Promise<{ server: ChildProcess; address: string }> {
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const address = `127.0.0.1:${port}`;
    const server = spawn(
      cli,
      ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort), '--metrics-port', String(metricsPort), '--log-level', 'error'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (server.exitCode === null && server.signalCode === null && Date.now() < deadline) {
      const health = await run(cli, ['operator', 'cluster', 'health', '--address', address]);
      if (health.code === 0) return { server, address };
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    lastOutput = output;
  }
  throw new Error(`the Temporal dev server did not become healthy:\n${lastOutput}`);
}

