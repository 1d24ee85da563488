// The service's own calls to an npm registry: pack, publish, dist-tags through the npm CLI, packuments over
// HTTP. The token only ever sits in a throw-away userconfig scoped to the registry's host, and no
// repository code runs while it exists (--ignore-scripts). Two kinds of failure are kept apart: a registry
// that cannot be reached (RegistryUnavailableError: thrown, so Temporal retries) and one that answers no
// (a Refusal: returned, because asking again changes nothing).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { commandEnvironment } from '../commands';

export interface RegistryTarget {
  /** With the trailing slash, e.g. http://127.0.0.1:8745/ */
  url: string;
  token: string;
}

/** The registry did not answer, or answered with a server error: worth retrying later. */
export class RegistryUnavailableError extends Error {
  override readonly name = 'RegistryUnavailableError';
}

/** The registry answered, and the answer is no (401, 403 …): asking again changes nothing. */
export class RegistryRefusedError extends Error {
  override readonly name = 'RegistryRefusedError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** npm could not pack the folder (a broken package.json, a missing `files` entry …): the package's problem. */
export class PackFailedError extends Error {
  override readonly name = 'PackFailedError';
}

export interface Refusal {
  /** npm's error code (E401, E403 …); E409 for a version that is already published, however npm said it. */
  code: string;
  message: string;
}

export type NpmOutcome = { ok: true; output: string } | { ok: false; refusal: Refusal; output: string };

export interface PackedTarball {
  file: string;
  name: string;
  version: string;
  /** sha512 SRI, as npm records it in `dist.integrity`. */
  integrity: string;
  shasum: string;
}

/** Versions as the registry knows them: `gitHead` says which commit each was published from. */
export interface Packument {
  name: string;
  'dist-tags': Record<string, string>;
  versions: Record<string, { version: string; gitHead?: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; dist?: { integrity?: string; shasum?: string; tarball?: string } }>;
}

const NPM_TIMEOUT_MS = 5 * 60_000;
/** Temporal retries the activity; npm's own retries (10 s and up between tries) would only hide an outage. */
const QUIET = ['--no-update-notifier', '--loglevel=error', '--no-fund', '--no-audit', '--fetch-retries=0', '--color=false', '--logs-max=0'];
const UNREACHABLE = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|ESOCKETTIMEDOUT|socket hang up|E5\d\d)\b/;

/** Packs a folder as npm would publish it; scripts never run. */
export async function packFolder(folder: string, destination: string, scratch: string): Promise<PackedTarball> {
  await fs.mkdir(destination, { recursive: true });
  // Run from the scratch folder so the repository's own .npmrc is not read.
  const ran = await npm(['pack', path.resolve(folder), '--json', '--ignore-scripts', '--pack-destination', destination, ...QUIET], { scratch });
  if (ran.spawnError) throw new Error(`npm could not be started: ${ran.spawnError}`);
  if (ran.exitCode !== 0) throw new PackFailedError(`npm pack failed in ${folder}:\n${ran.output}`);
  const [packed] = JSON.parse(ran.stdout) as { filename: string; name: string; version: string; integrity: string; shasum: string }[];
  if (!packed) throw new PackFailedError(`npm pack printed no result for ${folder}:\n${ran.output}`);
  return { file: path.join(destination, path.basename(packed.filename)), name: packed.name, version: packed.version, integrity: packed.integrity, shasum: packed.shasum };
}

/** Publishes a tarball under a dist-tag (never `latest` unless asked). */
export async function publishTarball(registry: RegistryTarget, tarball: string, distTag: string, scratch: string): Promise<NpmOutcome> {
  return withToken(registry, scratch, (userconfig) =>
    // No --access: the registry's default decides (on npmjs.org a scoped package stays restricted).
    classify(npm(['publish', tarball, '--tag', distTag, '--ignore-scripts', '--registry', registry.url, '--userconfig', userconfig, ...QUIET], { scratch })),
  );
}

export async function addDistTag(registry: RegistryTarget, name: string, version: string, distTag: string, scratch: string): Promise<NpmOutcome> {
  return withToken(registry, scratch, (userconfig) =>
    // --prefer-online: a cached copy of the tags would let npm skip a change it thinks is already made.
    classify(npm(['dist-tag', 'add', `${name}@${version}`, distTag, '--prefer-online', '--registry', registry.url, '--userconfig', userconfig, ...QUIET], { scratch })),
  );
}

/** The package's packument, or null when the registry has no such package. */
export async function readPackument(registry: { url: string; token?: string }, name: string): Promise<Packument | null> {
  const address = new URL(encodeURIComponent(name), registry.url);
  let response: Response;
  try {
    response = await fetch(address, {
      headers: { accept: 'application/json', ...(registry.token ? { authorization: `Bearer ${registry.token}` } : {}) },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new RegistryUnavailableError(`the npm registry ${registry.url} cannot be reached: ${causeOf(error)}`);
  }
  if (response.status === 404) return null;
  if (response.status >= 500) throw new RegistryUnavailableError(`the npm registry ${registry.url} answered HTTP ${response.status} for ${name}`);
  if (response.status !== 200) {
    const body = (await response.text().catch(() => '')).slice(0, 500);
    throw new RegistryRefusedError(response.status, `the npm registry ${registry.url} refused to show ${name}: HTTP ${response.status} ${body}`.trim());
  }
  return (await response.json()) as Packument;
}

interface NpmRun {
  exitCode: number | null;
  timedOut: boolean;
  /** npm did not start at all (not on PATH …): a problem of this worker, not of the registry. */
  spawnError: string | null;
  stdout: string;
  /** stdout and stderr, for people. */
  output: string;
}

function npm(args: string[], options: { scratch: string }): Promise<NpmRun> {
  // HOME in the scratch folder: no ~/.npmrc of the worker's user, and the cache stays out of the way.
  const env = commandEnvironment(path.join(options.scratch, 'home'), { npm_config_cache: path.join(options.scratch, 'npm-cache') });
  return new Promise((resolve) => {
    execFile('npm', args, { cwd: options.scratch, env, timeout: NPM_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const timedOut = Boolean(error?.killed);
      const spawnError = error && exitCode === null && !timedOut ? error.message : null;
      resolve({ exitCode, timedOut, spawnError, stdout, output: [stdout, stderr, timedOut ? `[npm killed after ${NPM_TIMEOUT_MS / 1000}s]` : ''].filter(Boolean).join('\n').trim() });
    });
  });
}

async function classify(running: Promise<NpmRun>): Promise<NpmOutcome> {
  const ran = await running;
  if (ran.exitCode === 0) return { ok: true, output: ran.output };
  if (ran.spawnError) throw new Error(`npm could not be started: ${ran.spawnError}`);
  // npm itself refuses a version it sees in the packument before sending anything, without printing a code.
  const conflict = /cannot publish over the previously published version/i.test(ran.output);
  const code = /npm error code (\S+)/.exec(ran.output)?.[1] ?? (conflict ? 'E409' : ran.timedOut ? 'ETIMEDOUT' : 'EUNKNOWN');
  if (UNREACHABLE.test(code) || (code === 'EUNKNOWN' && UNREACHABLE.test(ran.output))) {
    throw new RegistryUnavailableError(`the npm registry cannot be reached (${code}):\n${ran.output}`);
  }
  const message = ran.output.split('\n').find((line) => /^npm error (?!code)/.test(line))?.replace(/^npm error /, '') ?? ran.output.split('\n')[0] ?? code;
  return { ok: false, refusal: { code, message }, output: ran.output };
}

/** Runs `work` with a userconfig holding the token for this registry's host only, removed afterwards. */
async function withToken<T>(registry: RegistryTarget, scratch: string, work: (userconfig: string) => Promise<T>): Promise<T> {
  const folder = await fs.mkdtemp(path.join(scratch, 'npm-auth-'));
  await fs.chmod(folder, 0o700);
  const userconfig = path.join(folder, 'npmrc');
  try {
    await fs.writeFile(userconfig, `${nerfDart(registry.url)}:_authToken=${registry.token}\n`, { mode: 0o600 });
    return await work(userconfig);
  } finally {
    await fs.rm(folder, { recursive: true, force: true });
  }
}

/** npm's key for per-registry credentials: `//host:port/path/` (no scheme), so the token goes nowhere else. */
function nerfDart(url: string): string {
  const parsed = new URL(url);
  const pathname = parsed.pathname.endsWith('/') ? parsed.pathname : `${parsed.pathname}/`;
  return `//${parsed.host}${pathname}`;
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}
