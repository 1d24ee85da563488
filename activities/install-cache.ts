// Installs a repository's dependencies in a checkout, reusing this worker's earlier install when the
// install commands and the lock files are unchanged, so a second round does not install from scratch.
// The cache is a speed-up only: a miss, or a corrupt entry, just installs again.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CatalogRepo } from '../domain/catalog-schema';
import type { CheckResult } from '../domain/contracts';
import { runCommand, type CommandResult } from './commands';
import { MissingInstallCredential, withInstallCredentials } from './install-credentials';
import { widened, type Confinement } from './sandbox';

export interface InstallContext {
  /** Root of the per-worker install cache (under the data folder). */
  cacheDir: string;
  /** The cache's size cap: past it, the entries used longest ago go (default 2 GB). */
  maxBytes?: number;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onOutput?: () => void;
  /** What the install may reach besides its credentials' registries (repositoryConfinement). */
  confinement?: Confinement;
  /** Where the catalog's installCredentials are read from (the worker's environment). */
  secrets?: NodeJS.ProcessEnv;
  /** The Node.js the install runs on: native modules are built for it, so it is part of the key (default: the worker's). */
  nodeVersion?: string;
}

const OUTPUT_TAIL_CHARS = 4000;
export const DEFAULT_INSTALL_CACHE_MAX_BYTES = 2 * 1024 ** 3;
/** In an entry: the bytes of its files (written when saved) and, by its mtime, when it was last used. */
const SIZE_FILE = '.size';
const USED_FILE = '.used';

/** Results of the install step (empty when the repository has no install commands). */
export async function install(repo: CatalogRepo, checkout: string, context: InstallContext): Promise<CheckResult[]> {
  if (repo.install.length === 0) return [];
  const key = await cacheKey(repo, checkout, context.nodeVersion ?? process.versions.node);
  const entry = path.join(context.cacheDir, safe(repo.id), key);
  const started = Date.now();
  if (await restore(entry, checkout, repo.installCache.paths)) {
    await markUsed(entry);
    return [{ name: 'install', command: repo.install.map((c) => c.run).join(' && '), kind: 'install', status: 'passed', exitCode: 0, durationMs: Date.now() - started, outputTail: `restored ${repo.installCache.paths.join(', ')} from this worker's install cache (key ${key.slice(0, 12)})`, fromCache: true }];
  }
  const results: CheckResult[] = [];
  for (const command of repo.install) {
    let ran: CommandResult;
    try {
      ran = await withInstallCredentials(repo.installCredentials ?? [], context.secrets ?? process.env, async (credentials) => {
        const confinement = widened(context.confinement ?? {}, credentials.confinement);
        const result = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env: { ...context.env, ...credentials.env }, signal: context.signal, onOutput: context.onOutput, confinement });
        return { ...result, outputTail: credentials.mask(result.outputTail) };
      });
    } catch (error) {
      if (!(error instanceof MissingInstallCredential)) throw error;
      results.push({ name: command.name, command: command.run, kind: 'install', status: 'failed', exitCode: null, durationMs: 0, outputTail: `Not run: ${error.message}. Set it where the worker runs, or change installCredentials in the catalog.` });
      return results;
    }
    context.signal?.throwIfAborted();
    const status: CheckResult['status'] = ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed';
    results.push({ name: command.name, command: command.run, kind: 'install', status, exitCode: ran.exitCode, durationMs: ran.durationMs, outputTail: (ran.timedOut ? `[killed after ${command.timeoutSeconds}s]\n` : '') + ran.outputTail.slice(-OUTPUT_TAIL_CHARS), ...(ran.unconfined ? { unconfined: true as const } : {}) });
    if (status !== 'passed') return results;
  }
  await save(entry, checkout, repo.installCache.paths);
  await evictBeyond(context.cacheDir, context.maxBytes ?? DEFAULT_INSTALL_CACHE_MAX_BYTES, entry);
  return results;
}

export interface InstallCacheEntry {
  repo: string;
  key: string;
  bytes: number;
  lastUsed: Date;
}

/** Every complete entry of the cache, most recently used first. */
export async function listInstallCache(cacheDir: string): Promise<InstallCacheEntry[]> {
  const entries: InstallCacheEntry[] = [];
  for (const repo of await fs.readdir(cacheDir).catch(() => [] as string[])) {
    for (const key of await fs.readdir(path.join(cacheDir, repo)).catch(() => [] as string[])) {
      const entry = path.join(cacheDir, repo, key);
      if (!/^[0-9a-f]{64}$/.test(key) || !(await fs.stat(path.join(entry, '.complete')).catch(() => null))) continue;
      const bytes = Number(await fs.readFile(path.join(entry, SIZE_FILE), 'utf8').catch(() => '')) || (await sizeOf(path.join(entry, 'files')));
      const used = (await fs.stat(path.join(entry, USED_FILE)).catch(() => null)) ?? (await fs.stat(path.join(entry, '.complete')));
      entries.push({ repo, key, bytes, lastUsed: used.mtime });
    }
  }
  return entries.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
}

/**
 * Keeps the cache under `maxBytes`: the entries used longest ago go first, never the one just saved. Another
 * worker restoring an entry that goes meanwhile only installs again.
 */
export async function evictBeyond(cacheDir: string, maxBytes: number, keep?: string): Promise<InstallCacheEntry[]> {
  const entries = await listInstallCache(cacheDir);
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const evicted: InstallCacheEntry[] = [];
  for (const entry of [...entries].reverse()) {
    if (total <= maxBytes) break;
    const folder = path.join(cacheDir, entry.repo, entry.key);
    if (folder === keep) continue;
    await fs.rm(folder, { recursive: true, force: true });
    total -= entry.bytes;
    evicted.push(entry);
  }
  return evicted;
}

async function markUsed(entry: string): Promise<void> {
  const file = path.join(entry, USED_FILE);
  const now = new Date();
  await fs.utimes(file, now, now).catch(() => fs.writeFile(file, '').catch(() => undefined));
}

/** Bytes of the regular files below `folder` (links counted as themselves). */
async function sizeOf(folder: string): Promise<number> {
  let total = 0;
  for (const item of await fs.readdir(folder, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!item.isFile()) continue;
    total += (await fs.lstat(path.join(item.parentPath, item.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function cacheKey(repo: CatalogRepo, checkout: string, nodeVersion: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(repo.install.map((c) => c.run)));
  // The worker's own Node adds nothing, so entries made before runtimes were chosen per repository still match.
  if (nodeVersion !== process.versions.node) hash.update(`\0node\0${nodeVersion}`);
  for (const file of repo.installCache.keyFiles) {
    const content = await fs.readFile(path.join(checkout, file)).catch(() => null);
    hash.update(`\0${file}\0`);
    if (content) hash.update(content);
  }
  return hash.digest('hex');
}

/** Copies the cached paths into the checkout; false (and the entry dropped) when anything is missing. */
async function restore(entry: string, checkout: string, paths: readonly string[]): Promise<boolean> {
  const complete = await fs.readFile(path.join(entry, '.complete'), 'utf8').catch(() => null);
  if (complete === null) return false;
  try {
    for (const item of paths) {
      const source = path.join(entry, 'files', item);
      if (!(await fs.stat(source).then(() => true, () => false))) continue; // install produced nothing there
      await fs.cp(source, path.join(checkout, item), { recursive: true, verbatimSymlinks: true, force: true });
    }
    return true;
  } catch {
    await fs.rm(entry, { recursive: true, force: true });
    return false;
  }
}

/** Written to a temporary folder and renamed, so a half-written entry is never used. */
async function save(entry: string, checkout: string, paths: readonly string[]): Promise<void> {
  const temporary = `${entry}.${process.pid}.${Date.now()}.tmp`;
  try {
    for (const item of paths) {
      const source = path.join(checkout, item);
      if (!(await fs.stat(source).then(() => true, () => false))) continue;
      await fs.cp(source, path.join(temporary, 'files', item), { recursive: true, verbatimSymlinks: true });
    }
    await fs.mkdir(temporary, { recursive: true });
    await fs.writeFile(path.join(temporary, SIZE_FILE), String(await sizeOf(path.join(temporary, 'files'))));
    await fs.writeFile(path.join(temporary, USED_FILE), '');
    await fs.writeFile(path.join(temporary, '.complete'), new Date().toISOString());
    await fs.rm(entry, { recursive: true, force: true });
    await fs.mkdir(path.dirname(entry), { recursive: true });
    await fs.rename(temporary, entry);
  } catch {
    await fs.rm(temporary, { recursive: true, force: true }); // a cache that cannot be written is only slower
  }
}

function safe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_');
}
