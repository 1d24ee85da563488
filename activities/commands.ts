// Runs one catalog command (install, check, build) in a checkout: its own process group so a timeout or
// a cancel kills it with every child, and an environment that carries no secret of the service.
import { spawn } from 'node:child_process';
import { stripVTControlCharacters } from 'node:util';
import { confine, sandboxState, type Confinement } from './sandbox';

export interface CommandResult {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** The last part of stdout and stderr interleaved. */
  outputTail: string;
  /** Ran without the sandbox (REPO_SANDBOX=off). */
  unconfined?: true;
}

const KEPT_OUTPUT_CHARS = 64 * 1024;

/** Only these variables reach a command; everything else (model keys, forge and IM tokens) stays out. */
const PASSED_THROUGH = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'TERM', 'TMPDIR', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE'];

export function commandEnvironment(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { HOME: home, CI: 'true' };
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

const outputMasks = new Set<(text: string) => string>();

/** Masks every command's output with this redactor (each worker in the process adds its own). */
export function maskCommandOutputWith(redact: (text: string) => string): void {
  outputMasks.add(redact);
}

function masked(text: string): string {
  let out = text;
  for (const redact of outputMasks) out = redact(out);
  return out;
}

/**
 * What a person reads of a command's output: no terminal colour or cursor codes (Node's own
 * stripVTControlCharacters), and of a line a progress bar redrew with carriage returns, only its last state.
 */
export function cleanOutput(text: string): string {
  return stripVTControlCharacters(text)
    .split('\n')
    .map((line) => {
      const redrawn = line.replace(/\r+$/, '').split('\r');
      return redrawn[redrawn.length - 1]!;
    })
    .join('\n');
}

/** Every repository command runs confined (see sandbox.ts); `confinement` widens what it may write or reach. */
export async function runCommand(
  command: string,
  options: { cwd: string; timeoutMs: number; env: NodeJS.ProcessEnv; signal?: AbortSignal; onOutput?: () => void; confinement?: Confinement },
): Promise<CommandResult> {
  const confined = await confine(command, options.cwd, options.env, options.confinement);
  try {
    const result = await runSpawned(confined.file, confined.args, { ...options, env: confined.env });
    // Cleaned first, so a secret split by colour codes is still found by the mask.
    const safe = { ...result, outputTail: masked(cleanOutput(result.outputTail)) };
    return sandboxState().mode === 'off' ? { ...safe, unconfined: true } : safe;
  } finally {
    await confined.release();
  }
}

function runSpawned(file: string, args: string[], options: { cwd: string; timeoutMs: number; env: NodeJS.ProcessEnv; signal?: AbortSignal; onOutput?: () => void }): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    let cancelled = false;
    const keep = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > KEPT_OUTPUT_CHARS * 2) output = output.slice(-KEPT_OUTPUT_CHARS);
      options.onOutput?.();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      killGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const finish = (exitCode: number | null, extra = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const tail = (output + extra).slice(-KEPT_OUTPUT_CHARS);
      resolve({ exitCode, timedOut, cancelled, durationMs: Date.now() - started, outputTail: tail });
    };
    child.on('error', (error) => finish(null, `\n${error.message}`));
    // Children left behind by the command would hold its output open; end them when it exits.
    child.on('exit', killGroup);
    child.on('close', (code) => finish(timedOut || cancelled ? null : code));
  });
}
