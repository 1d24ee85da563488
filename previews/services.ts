// Service previews: long-running processes (an API started with `node src/server.js`, say) that the preview
// server owns. An activity is short and a preview lives for days, so the deploy activity only prepares a
// checkout inside the store and asks the preview server (its control API, previews/control-api.ts) to run it;
// the server proxies <baseUrl>/<runId>/<repoId>/ to it (previews/proxy.ts). Layout in previews/store.ts.
//
// Per (run, repository) at most one process owns the address:
//   - start: `sh -c <run>` in the checkout, its own process group (so every child goes with it), on a free
//     port given as PORT (HOST=127.0.0.1), with the catalog's env and none of the server's secrets
//     (commandEnvironment), stdout and stderr appended to a log beside the checkout. It counts once
//     GET <health> answers a 2xx within the command's timeout; otherwise it is killed and reported failed
//     with the end of its log.
//   - a start for a new deploy runs beside the current one and takes over the address only once healthy;
//     the old one is then stopped and its folder deleted. A start that fails leaves a running service as it
//     is (as a failed static build leaves the previous static preview), and shows the failure otherwise.
//   - stop: SIGTERM to the group, SIGKILL after a grace period, then the folder is deleted.
//   - a process that exits by itself while it owns the address is marked crashed: the proxy answers 502
//     with the reason and the end of the log.
//   - close (the server stops): every process is stopped, the manifests stay. The next server on the same
//     store restarts what was running (and first kills what a server that died hard left running).
import { freePort } from '../activities/free-port';
import { spawn, type ChildProcess } from 'node:child_process';
import { confine } from '../activities/sandbox';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { commandEnvironment } from '../activities/commands';
import { AFTER_KILL_WAIT_MS, isProcessGroupAlive, killRecordedGroup, processStartTicks, signalGroup, waitForGroupToEnd } from './process-group';
import {
  deleteServiceDeploy,
  deleteServiceFolder,
  isServiceDeployId,
  isStoreId,
  serviceDeployFolder,
  serviceHomeFolder,
  serviceLogFile,
  serviceManifestFile,
  servicesRoot,
} from './store';

export interface ServiceSpec {
  /** The folder (inside the service folder of the run and repository) that the deploy moved the checkout into. */
  deployId: string;
  start: { run: string; timeoutSeconds: number };
  /** Path answered with a 2xx once the service is up. */
  health: string;
  /** Given to the process besides PORT and HOST: the catalog's values, preview references resolved. */
  env: Record<string, string>;
}

export type ServiceStatus = 'starting' | 'ready' | 'failed' | 'crashed';

export interface StartOutcome {
  status: 'ready' | 'failed';
  output: string;
}

/** One service as operators, tests and the change-set page see it. */
export interface ServiceView {
  runId: string;
  repo: string;
  deployId: string;
  status: ServiceStatus;
  port: number | null;
  pid: number | null;
  startedAt: number;
  readyAt: number | null;
  /** Why it is not running (failed or crashed). */
  reason: string | null;
  /** A newer deploy being started beside it, if any. */
  replacing: string | null;
}

interface Instance {
  runId: string;
  repo: string;
  spec: ServiceSpec;
  port: number | null;
  pid: number | null;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is never killed. */
  pidStartTicks: string | null;
  status: ServiceStatus;
  startedAt: number;
  readyAt: number | null;
  reason: string | null;
  /** Set when the supervisor itself ends the process, so its exit is not taken for a crash. */
  stopping: boolean;
  exit: string | null;
  /** Resolves once the process has exited (at once for an instance restored as failed or crashed). */
  exited: Promise<void>;
}

interface Entry {
  runId: string;
  repo: string;
  /** The instance the address shows; null before the first start finishes and after a stop. */
  current: Instance | null;
  /** A start in progress, so that a stop or close can cut it short. */
  starting: { instance: Instance; abort: AbortController } | null;
  /** Starts and stops of one service run one after the other. */
  queue: Promise<void>;
}

/** What the store keeps per service so that a new server can restart it. */
interface Manifest {
  version: 1;
  runId: string;
  repo: string;
  spec: ServiceSpec;
  status: 'ready' | 'failed' | 'crashed';
  pid: number | null;
  pidStartTicks: string | null;
  port: number | null;
  startedAt: number;
  readyAt: number | null;
  reason: string | null;
}

export interface SupervisorOptions {
  /** Between SIGTERM and SIGKILL when a service is stopped. */
  graceMs?: number;
  /** Where to tell what happened outside a request (restarts, crashes); silent by default. */
  log?: (line: string) => void;
}

const DEFAULT_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 4_000;
const PROBE_TIMEOUT_MS = 2_000;
const FIRST_PROBE_DELAY_MS = 25;
const MAX_PROBE_DELAY_MS = 250;

export class ServiceSupervisor {
  private readonly entries = new Map<string, Entry>();
  private readonly graceMs: number;
  private readonly log: (line: string) => void;
  private closing = false;
  private restoring: Promise<void> = Promise.resolve();
  /** If the server's process exits without close(), its services must not outlive it. */
  private readonly killAllOnExit = (): void => {
    for (const entry of this.entries.values()) {
      for (const instance of [entry.current, entry.starting?.instance]) {
        if (instance?.pid != null && instance.exit === null) signalGroup(instance.pid, 'SIGKILL');
      }
    }
  };

  constructor(
    /** The preview store (resolved, no links in its path). */
    private readonly store: string,
    options: SupervisorOptions = {},
  ) {
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.log = options.log ?? (() => undefined);
    process.on('exit', this.killAllOnExit);
  }

  /**
   * Picks up the services of an earlier server on this store: what it left running is killed, what was
   * ready is started again (in the background; the proxy answers 503 meanwhile), failed and crashed ones
   * keep showing why. Call once, before serving.
   */
  restore(): Promise<void> {
    this.restoring = this.restoreAll().catch((error: unknown) => this.log(`restoring service previews failed: ${String(error)}`));
    return this.restoring;
  }

  /** Starts (or replaces) the service of a run and repository; answers once it is healthy or has failed. */
  start(runId: string, repo: string, spec: ServiceSpec): Promise<StartOutcome> {
    const entry = this.entryFor(runId, repo);
    return this.serialised(entry, () => this.startNow(entry, spec));
  }

  /** Stops the service and deletes its folder; true when a process was running. Stopping nothing is fine. */
  async stop(runId: string, repo: string): Promise<boolean> {
    const entry = this.entryFor(runId, repo);
    entry.starting?.abort.abort();
    return this.serialised(entry, async () => {
      const current = entry.current;
      const running = current !== null && current.pid !== null && current.exit === null;
      if (current) await this.terminate(current);
      entry.current = null;
      await deleteServiceFolder(this.store, runId, repo);
      return running;
    });
  }

  /** The service that owns the address of a run and repository, if any (for the proxy). */
  find(runId: string, repo: string): ServiceView | null {
    const entry = this.entries.get(keyOf(runId, repo));
    if (!entry) return null;
    if (entry.current) return viewOf(entry.current, entry.starting?.instance ?? null);
    // A first start: the address is the service's already, it is just not up yet.
    return entry.starting ? viewOf(entry.starting.instance, null) : null;
  }

  list(): ServiceView[] {
    return [...this.entries.values()]
      .map((entry) => this.find(entry.runId, entry.repo))
      .filter((view): view is ServiceView => view !== null)
      .sort((a, b) => keyOf(a.runId, a.repo).localeCompare(keyOf(b.runId, b.repo)));
  }

  /** The log of the service that owns the address (null: none). */
  logFile(runId: string, repo: string): string | null {
    const view = this.find(runId, repo);
    return view ? serviceLogFile(this.store, runId, repo, view.deployId) : null;
  }

  async logTail(runId: string, repo: string, chars = LOG_TAIL_CHARS): Promise<string> {
    const file = this.logFile(runId, repo);
    return file === null ? '' : readTail(file, chars);
  }

  /** True once close() has begun: starts are refused from then on. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Stops every process and keeps the manifests, so the next server on this store restarts them. */
  async close(): Promise<void> {
    this.closing = true;
    for (const entry of this.entries.values()) entry.starting?.abort.abort();
    await this.restoring;
    await Promise.all([...this.entries.values()].map((entry) => entry.queue));
    await Promise.all([...this.entries.values()].map((entry) => (entry.current ? this.terminate(entry.current) : undefined)));
    process.off('exit', this.killAllOnExit);
  }

  private async startNow(entry: Entry, spec: ServiceSpec): Promise<StartOutcome> {
    const { runId, repo } = entry;
    if (this.closing) return { status: 'failed', output: 'the preview server is shutting down' };
    const current = entry.current;
    // A repeated request for the deploy that already runs (a retried call) changes nothing.
    if (current?.spec.deployId === spec.deployId && current.status === 'ready') {
      return { status: 'ready', output: `already running (pid ${current.pid}, port ${current.port})\n${await readTail(serviceLogFile(this.store, runId, repo, spec.deployId), LOG_TAIL_CHARS)}` };
    }
    const folder = serviceDeployFolder(this.store, runId, repo, spec.deployId);
    if (!(await fs.stat(folder).catch(() => null))?.isDirectory()) {
      return { status: 'failed', output: `the checkout ${spec.deployId} is not in the preview store's service folder (was it removed?)` };
    }

    const abort = new AbortController();
    const instance = await this.launch(runId, repo, spec);
    entry.starting = { instance, abort };
    if (this.closing) abort.abort();
    let health: Health;
    try {
      health = await waitUntilHealthy(instance, abort.signal);
    } finally {
      entry.starting = null;
    }
    const logFile = serviceLogFile(this.store, runId, repo, spec.deployId);

    if (health.healthy) {
      instance.status = 'ready';
      instance.readyAt = Date.now();
      entry.current = instance;
      await this.writeManifest(instance);
      if (current && current.spec.deployId !== spec.deployId) {
        await this.terminate(current);
        await deleteServiceDeploy(this.store, runId, repo, current.spec.deployId);
      }
      const took = instance.readyAt - instance.startedAt;
      return { status: 'ready', output: `"${spec.start.run}" answered ${spec.health} after ${took} ms (pid ${instance.pid}, port ${instance.port})\n${await readTail(logFile, LOG_TAIL_CHARS)}` };
    }

    await this.terminate(instance);
    const output = `${health.reason}\n${await readTail(logFile, LOG_TAIL_CHARS)}`;
    if (this.closing) {
      // Cut short by the server stopping: everything stays on disk (the manifest too), so the next server
      // restarts what was running; a deploy that never took over is deleted with the service on its stop.
      return { status: 'failed', output: 'the preview server is shutting down' };
    }
    instance.status = 'failed';
    instance.reason = health.reason;
    await fs.rm(folder, { recursive: true, force: true });
    await fs.rm(serviceHomeFolder(this.store, runId, repo, spec.deployId), { recursive: true, force: true });
    if (current?.status === 'ready' && current.exit === null) {
      // The running service keeps the address; the failed deploy leaves nothing behind.
      await deleteServiceDeploy(this.store, runId, repo, spec.deployId);
    } else {
      // Nothing else to show: the address shows this failure (and its log) until the next deploy or a stop.
      entry.current = instance;
      await this.writeManifest(instance);
      if (current && current.spec.deployId !== spec.deployId) await deleteServiceDeploy(this.store, runId, repo, current.spec.deployId);
    }
    return { status: 'failed', output };
  }

  private async launch(runId: string, repo: string, spec: ServiceSpec): Promise<Instance> {
    const port = await freePort();
    const home = serviceHomeFolder(this.store, runId, repo, spec.deployId);
    await fs.mkdir(home, { recursive: true });
    const env = commandEnvironment(home, { ...spec.env, PORT: String(port), HOST: '127.0.0.1', PREVIEW_RUN_ID: runId, PREVIEW_REPO: repo });
    const log = await fs.open(serviceLogFile(this.store, runId, repo, spec.deployId), 'a');
    let child: ChildProcess;
    try {
      await log.write(`[preview server] ${new Date().toISOString()} starting "${spec.start.run}" with PORT=${port}\n`);
      // The process writes to the file itself, so its log survives this server and needs no pipe to drain.
      // Confined like every repository command; it shares the network because the proxy must reach its port.
      const cwd = serviceDeployFolder(this.store, runId, repo, spec.deployId);
      const confined = await confine(spec.start.run, cwd, env, { network: 'host' });
      child = spawn(confined.file, confined.args, { cwd, env: confined.env, detached: true, stdio: ['ignore', log.fd, log.fd] });
    } finally {
      await log.close();
    }
    let markExited!: () => void;
    const instance: Instance = {
      runId,
      repo,
      spec,
      port,
      pid: child.pid ?? null,
      pidStartTicks: null,
      status: 'starting',
      startedAt: Date.now(),
      readyAt: null,
      reason: null,
      stopping: false,
      exit: null,
      exited: new Promise<void>((resolve) => (markExited = resolve)),
    };
    const onExit = (how: string) => {
      if (instance.exit !== null) return;
      instance.exit = how;
      // Children a crashed command left behind go with it (they are in its group). A stop is not hurried:
      // the shell may go first on SIGTERM while the server behind it is still shutting down gracefully.
      if (!instance.stopping && instance.pid !== null) signalGroup(instance.pid, 'SIGKILL');
      markExited();
      if (!instance.stopping && instance.status === 'ready') void this.crashed(instance);
    };
    child.on('error', (error) => onExit(`could not be started: ${error.message}`));
    child.on('exit', (code, signal) => onExit(signal ? `killed by ${signal}` : `exited with code ${code}`));
    if (instance.pid !== null) instance.pidStartTicks = await processStartTicks(instance.pid);
    return instance;
  }

  private async crashed(instance: Instance): Promise<void> {
    instance.status = 'crashed';
    instance.reason = `the service "${instance.spec.start.run}" ${instance.exit} at ${new Date().toISOString()}, after it had answered ${instance.spec.health}`;
    this.log(`service preview ${instance.runId}/${instance.repo} crashed: ${instance.exit}`);
    const entry = this.entries.get(keyOf(instance.runId, instance.repo));
    if (entry?.current === instance) await this.serialised(entry, () => this.writeManifest(instance)).catch(() => undefined);
  }

  /**
   * SIGTERM to the whole group (the shell and everything it started), SIGKILL to what is left after the
   * grace period; resolves once nothing of the group is left.
   */
  private async terminate(instance: Instance): Promise<void> {
    instance.stopping = true;
    if (instance.pid === null) return;
    if (await isProcessGroupAlive(instance.pid)) {
      signalGroup(instance.pid, 'SIGTERM');
      if (!(await waitForGroupToEnd(instance.pid, this.graceMs))) {
        signalGroup(instance.pid, 'SIGKILL');
        await waitForGroupToEnd(instance.pid, AFTER_KILL_WAIT_MS);
      }
    }
    await Promise.race([instance.exited, sleep(AFTER_KILL_WAIT_MS)]);
  }

  private async restoreAll(): Promise<void> {
    const restarts: Promise<unknown>[] = [];
    for (const runId of await listFolders(servicesRoot(this.store))) {
      if (!isStoreId(runId)) continue;
      for (const repo of await listFolders(path.join(servicesRoot(this.store), runId))) {
        if (!isStoreId(repo)) continue;
        const manifest = await this.readManifest(runId, repo);
        if (manifest === null) continue;
        await killRecordedGroup(manifest.pid, manifest.pidStartTicks, this.graceMs);
        if (manifest.status === 'ready') {
          this.log(`restarting service preview ${runId}/${repo} (${manifest.spec.deployId})`);
          restarts.push(this.start(runId, repo, manifest.spec).then((outcome) => this.log(`service preview ${runId}/${repo}: ${outcome.status}`)));
        } else {
          this.entryFor(runId, repo).current = restoredAsStopped(manifest);
        }
      }
    }
    await Promise.all(restarts);
  }

  private async readManifest(runId: string, repo: string): Promise<Manifest | null> {
    const text = await fs.readFile(serviceManifestFile(this.store, runId, repo), 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      const manifest = JSON.parse(text) as Manifest;
      if (manifest.version !== 1 || manifest.runId !== runId || manifest.repo !== repo || !isServiceDeployId(manifest.spec?.deployId ?? '')) return null;
      return manifest;
    } catch {
      return null;
    }
  }

  private async writeManifest(instance: Instance): Promise<void> {
    if (instance.status === 'starting') return;
    const manifest: Manifest = {
      version: 1,
      runId: instance.runId,
      repo: instance.repo,
      spec: instance.spec,
      status: instance.status,
      pid: instance.pid,
      pidStartTicks: instance.pidStartTicks,
      port: instance.port,
      startedAt: instance.startedAt,
      readyAt: instance.readyAt,
      reason: instance.reason,
    };
    const file = serviceManifestFile(this.store, instance.runId, instance.repo);
    const temporary = `${file}.${process.pid}.incoming`;
    await fs.writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
    await fs.rename(temporary, file);
  }

  private entryFor(runId: string, repo: string): Entry {
    const key = keyOf(runId, repo);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { runId, repo, current: null, starting: null, queue: Promise.resolve() };
      this.entries.set(key, entry);
    }
    return entry;
  }

  private serialised<T>(entry: Entry, work: () => Promise<T>): Promise<T> {
    const result = entry.queue.then(work);
    entry.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

type Health = { healthy: true } | { healthy: false; reason: string };

/** Polls GET <health> until it answers a 2xx, the process exits, the timeout passes or the start is cut short. */
async function waitUntilHealthy(instance: Instance, signal: AbortSignal): Promise<Health> {
  const { spec, port } = instance;
  const deadline = instance.startedAt + spec.start.timeoutSeconds * 1000;
  let lastAnswer = 'nothing answered yet';
  let delay = FIRST_PROBE_DELAY_MS;
  const cutShort = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  for (;;) {
    if (signal.aborted) return { healthy: false, reason: `stopped before ${spec.health} answered` };
    if (instance.exit !== null) return { healthy: false, reason: `the service "${spec.start.run}" ${instance.exit} before ${spec.health} answered` };
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      return { healthy: false, reason: `the service "${spec.start.run}" did not answer GET ${spec.health} with a 2xx within ${spec.start.timeoutSeconds}s (its timeout; last: ${lastAnswer}), so it was stopped` };
    }
    const answer = await probe(port!, spec.health, Math.min(PROBE_TIMEOUT_MS, remaining));
    if (answer.ok) return { healthy: true };
    lastAnswer = answer.text;
    await Promise.race([sleep(Math.min(delay, Math.max(0, deadline - Date.now()))), instance.exited, cutShort]);
    delay = Math.min(delay * 2, MAX_PROBE_DELAY_MS);
  }
}

function probe(port: number, healthPath: string, timeoutMs: number): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: healthPath, agent: false, timeout: timeoutMs }, (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 300, text: `HTTP ${status}` });
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, text: error.code ?? error.message }));
  });
}


function restoredAsStopped(manifest: Manifest): Instance {
  return {
    runId: manifest.runId,
    repo: manifest.repo,
    spec: manifest.spec,
    port: null,
    pid: null,
    pidStartTicks: null,
    status: manifest.status,
    startedAt: manifest.startedAt,
    readyAt: manifest.readyAt,
    reason: manifest.reason,
    stopping: true,
    exit: 'not running',
    exited: Promise.resolve(),
  };
}

function viewOf(instance: Instance, replacement: Instance | null): ServiceView {
  return {
    runId: instance.runId,
    repo: instance.repo,
    deployId: instance.spec.deployId,
    status: instance.status,
    port: instance.port,
    pid: instance.pid,
    startedAt: instance.startedAt,
    readyAt: instance.readyAt,
    reason: instance.reason,
    replacing: replacement?.spec.deployId ?? null,
  };
}

async function readTail(file: string, chars: number): Promise<string> {
  const handle = await fs.open(file, 'r').catch(() => null);
  if (handle === null) return '';
  try {
    const { size } = await handle.stat();
    // Bytes, not characters: a multi-byte character cut at the start shows as one replacement character.
    const length = Math.min(size, chars * 2);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8').slice(-chars);
  } finally {
    await handle.close();
  }
}

async function listFolders(folder: string): Promise<string[]> {
  const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

function keyOf(runId: string, repo: string): string {
  return `${runId}/${repo}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
