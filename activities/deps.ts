// Everything activities need from the process that runs them, passed in explicitly so tests and the
// worker wire the same code with different parts.
import path from 'node:path';
import type { Catalog, CatalogRepo } from '../domain/catalog-schema';
import type { Spend } from '../domain/budget';
import type { AgentProgress } from '../domain/contracts';
import type { PriceTable } from './agent/pricing';
import type { ModelProvider } from './agent/model';
import type { Redactor } from './agent/redact';
import type { ChatDocumentReader } from './context/chat-documents';
import { CloneCache } from './git/clone-cache';
import { remoteBranchSha, type Remote } from './git/repository';
import type { ForgeAccess } from './forge-access';
import type { Conversations } from './notify';
import { commandEnvironment } from './commands';
import type { Confinement } from './sandbox';
import { hostPatternOf, isLoopbackUrl } from './egress-proxy';

export interface ActivityDeps {
  /** Reads and validates the catalog (a fresh snapshot for each new run). */
  loadCatalog(): Promise<Catalog>;
  /** Scratch space (workspaces) and local records; never the only copy of anything. */
  dataDir: string;
  /** The install cache's size cap (install-cache.ts; default 2 GB). */
  installCacheMaxBytes?: number;
  /**
   * Where Node.js builds are fetched from (the npm registry's node-linux-<arch>) for repositories that ask
   * for another Node than the worker's; null or absent: only the worker's Node and runtimes already kept.
   */
  nodeRuntimeRegistry?: string | null;
  models: ModelProvider;
  /** Prices per model name, for money budgets; a model without a price cannot run. */
  prices: PriceTable;
  /** Most output tokens one model call may ask for (the budget may allow fewer). */
  maxTokensPerCall: number;
  /** Masks the service's secrets (and anything shaped like a token) in prompts, transcripts and logs. */
  redact: Redactor;
  /** Credentials for git and the forge's REST API, and pull-request settings. */
  forge: ForgeAccess;
  /** Sends an activity's progress to its run so the `state` query shows it. Best effort. */
  reportProgress(runId: string, progress: AgentProgress): Promise<void>;
  /**
   * The run's record of what a running agent step may have spent: written before each model call (awaited:
   * once it returns the run has it), read by a retried attempt. Survives the worker, unlike a heartbeat.
   */
  spendLedger: SpendLedger;
  /** The conversation a run came from: its card and messages, per platform. */
  conversations: Conversations;
  previews: PreviewSettings;
  /** The npm registry in-flight packages are published to and dependents install from (null: none configured). */
  registry: RegistryAccess | null;
  /** Minimum time between two progress reports of one activity (the last step is always reported). */
  progressIntervalMs: number;
  /**
   * Hosts a requirement's links may always be read from, besides the catalog's context.allowHosts: the
   * service's own forge and, in the demo, its local pages (e.g. "127.0.0.1:8740").
   */
  contextHosts?: string[];
  /** Readers of the configured chat platforms' files and docs (a Slack attachment, a Lark doc), with the app's token. */
  chatDocuments?: ChatDocumentReader[];
}

export interface SpendLedger {
  read(runId: string, key: string): Promise<Spend | null>;
  record(runId: string, key: string, spend: Spend): Promise<void>;
}

export interface RegistryAccess {
  /** e.g. http://127.0.0.1:8745/ (the embedded Verdaccio) or the team's registry. */
  url: string;
  /** Publishes the run's prereleases; used by the service's own npm calls only, never by repository code. */
  token: string;
}

export interface PreviewSettings {
  /** Where static previews and screenshots are stored; the preview server serves this folder. */
  dir: string;
  /** The preview server's public address, e.g. http://127.0.0.1:8741 (stable per run and repository below it). */
  baseUrl: string;
  /** Chromium for screenshots (Debian's /usr/bin/chromium); null turns screenshots off. */
  chromiumPath: string | null;
  viewport: { width: number; height: number };
  /** The preview server's control API for service previews (it runs them); null: service previews are refused. */
  host: { url: string; token: string } | null;
}

export async function remoteFor(deps: ActivityDeps, url: string): Promise<Remote> {
  return { url, token: await deps.forge.gitToken(url) };
}

/** Per-worker install cache (see install-cache.ts). */
export function installCacheDir(deps: ActivityDeps): string {
  return path.join(deps.dataDir, 'install-cache');
}

/** Package managers' download caches live beside it, so even a cache miss downloads little. */
export function packageManagerCaches(deps: ActivityDeps): Record<string, string> {
  const root = path.join(deps.dataDir, 'package-caches');
  // pnpm keeps its store under $XDG_DATA_HOME/pnpm/store: setting that (not npm_config_store_dir, which npm
  // itself warns about in every command's output) shares it too.
  return { npm_config_cache: path.join(root, 'npm'), YARN_CACHE_FOLDER: path.join(root, 'yarn'), XDG_DATA_HOME: path.join(root, 'xdg-data') };
}

/**
 * The environment of every repository command (installs, checks, builds, previews, the agent's commands):
 * none of the service's secrets, the package managers' caches, and the registry that serves the change
 * set's prereleases (read-only: publishing is the service's own step and its token never gets here).
 */
export function repositoryCommandEnv(deps: ActivityDeps, home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return commandEnvironment(home, { ...packageManagerCaches(deps), ...(deps.registry ? { npm_config_registry: deps.registry.url } : {}), ...extra });
}

/**
 * What a repository's commands may reach beyond their checkout: the hosts the catalog allows for it, and
 * the service's registry when it is not on loopback (loopback addresses are relayed from the environment).
 * Installs also reach the registries they hold credentials for (install-credentials.ts adds those).
 */
export function repositoryConfinement(deps: ActivityDeps, repo: Pick<CatalogRepo, 'allowHosts'>): Confinement {
  const registry = deps.registry ? new URL(deps.registry.url) : null;
  const registryHost = registry && !isLoopbackUrl(registry) ? [hostPatternOf(registry)] : [];
  return { allowHosts: [...new Set([...(repo.allowHosts ?? []), ...registryHost])] };
}

const cloneCaches = new Map<string, CloneCache>();

/** This worker's clone cache (one per data folder, shared by every activity in the process). */
export function cloneCacheOf(deps: ActivityDeps): CloneCache {
  const root = path.join(deps.dataDir, 'clone-cache');
  let cache = cloneCaches.get(root);
  if (!cache) {
    cache = new CloneCache(root);
    cloneCaches.set(root, cache);
  }
  return cache;
}

/** A workspace at `sha` of `branch` (or at the branch's head), prepared from the clone cache. */
export async function checkoutFromCache(deps: ActivityDeps, remote: Remote, dir: string, branch: string, options: { sha?: string; depth?: number } = {}): Promise<string> {
  const sha = options.sha ?? (await remoteBranchSha(remote, branch));
  if (!sha) throw new Error(`branch ${branch} does not exist on ${remote.url}`);
  await cloneCacheOf(deps).checkout({ remote, branch, sha, depth: options.depth ?? 1, dir });
  return sha;
}
