// The workers `npm start` runs: one process per role (workflows/task-queues.ts), as in production, so a
// check's installs or an agent's tool runs never stall the workflows' thread. Each is `worker/main.ts` with
// WORKER_ROLES set; its output is prefixed with its role. A process that dies after it came up is started
// again (a lost step is retried by Temporal once its heartbeat times out); one that fails while starting
// stops `npm start` with its own error, since starting it again would fail the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { WorkerRole } from '../workflows/task-queues';

const WORKER_MAIN = path.resolve(__dirname, '..', 'worker', 'main.ts');
/** worker/main.ts prints this on stdout once its workers poll (its warnings go to stderr). */
const READY_LINE = /^worker: serving /;
const RESTART_DELAY_MS = 2000;
const STOP_PATIENCE_MS = 15_000;

export interface WorkerProcess {
  role: WorkerRole;
  pid(): number | undefined;
}

export interface WorkerProcesses {
  processes: readonly WorkerProcess[];
  /** Resolves once every process has come up; rejects with the first one's error output if it cannot. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

export function startWorkerProcesses(roles: readonly WorkerRole[], env: NodeJS.ProcessEnv, log: (line: string) => void): WorkerProcesses {
  let stopping = false;
  // Ctrl-C reaches the workers too (one process group) and they drain themselves: not a crash to mend.
  const markStopping = () => void (stopping = true);
  process.once('SIGINT', markStopping);
  process.once('SIGTERM', markStopping);
  const children = new Map<WorkerRole, ChildProcess>();
  const readiness = roles.map(
    (role) =>
      new Promise<void>((resolve, reject) => {
        let delayMs = RESTART_DELAY_MS;
        const launch = (restart: boolean) => {
          const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
            env: { ...env, WORKER_ROLES: role },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          children.set(role, child);
          let up = false;
          const recent: string[] = [];
          const relay = (stream: NodeJS.ReadableStream, write: (line: string) => void, announcesReady: boolean) =>
            readline.createInterface({ input: stream }).on('line', (line) => {
              if (announcesReady && !up && READY_LINE.test(line)) {
                up = true;
                delayMs = RESTART_DELAY_MS;
                resolve();
                if (restart) log(`worker ${role}: running again (pid ${child.pid})`);
                return;
              }
              recent.push(line);
              if (recent.length > 20) recent.shift();
              write(`[worker ${role}] ${line}`);
            });
          relay(child.stdout!, log, true);
          relay(child.stderr!, (line) => console.error(line), false);
          child.once('exit', (code, signal) => {
            if (stopping) return;
            if (!up && !restart) return reject(new Error(`The ${role} worker could not start (${signal ?? `exit ${code}`}):\n${recent.join('\n')}`));
            log(`worker ${role}: the process ended (${signal ?? `exit ${code}`}); starting it again in ${delayMs / 1000} s`);
            setTimeout(() => stopping || launch(true), delayMs).unref();
            // Again and again failing to come up (Temporal away, say): wait longer each time, up to a minute.
            if (!up) delayMs = Math.min(delayMs * 2, 60_000);
          });
        };
        launch(false);
      }),
  );
  return {
    processes: roles.map((role) => ({ role, pid: () => children.get(role)?.pid })),
    ready: Promise.all(readiness).then(() => undefined),
    async stop() {
      stopping = true;
      await Promise.all([...children.values()].map((child) => stopChild(child)));
    },
  };
}

/** SIGTERM lets the worker drain its steps (its shutdown grace time); SIGKILL if it does not end in time. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_PATIENCE_MS);
  await ended;
  clearTimeout(timer);
}
