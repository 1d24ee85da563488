// Publishes a package repository at one commit of its work branch as the run's prerelease for that round
// (`<version>-cr.<run>.<round>`, dist-tag `cr-<run>`), so its dependents install, check and preview
// against the change itself. Safe to retry: the registry is asked first, and a version already published
// from this commit is reused, never published twice; the same version from another commit is refused.
// Build and install failures are reported in the record; only an unreachable registry throws (Temporal
// retries it).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import semver from 'semver';
import { distTagFor, prereleaseVersion, shortRunId } from '../../domain/change-set';
import type { CatalogRepo } from '../../domain/catalog-schema';
import type { ChangeSetPackage, CheckResult, PublishRecord } from '../../domain/contracts';
import { runCommand } from '../commands';
import { checkoutFromCache, installCacheDir, remoteFor, repositoryCommandEnv, repositoryConfinement, type ActivityDeps, type RegistryAccess } from '../deps';
import type { Confinement } from '../sandbox';
import { ensureCommit, type Remote } from '../git/repository';
import { withWorkspace } from '../git/workspace';
import { whileHeartbeating } from '../heartbeat';
import { install } from '../install-cache';
import type { PublishRequest } from '../../domain/activity-contracts';
import { installChangeSet } from './change-set-install';
import { addDistTag, packFolder, PackFailedError, publishTarball, readPackument, RegistryRefusedError, type Packument } from './npm';

const OUTPUT_TAIL_CHARS = 4000;
const PINNED_SECTIONS = ['dependencies', 'peerDependencies', 'optionalDependencies'] as const;

interface Manifest {
  name?: string;
  version?: string;
  private?: boolean;
  gitHead?: string;
  publishConfig?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/** What is known so far, filled in as the publish goes; every return builds its record from it. */
interface Progress {
  name: string | null;
  version: string | null;
  releasedVersion: string | null;
  headVersion: string | null;
  /** What happened, for people: always kept whole at the top of the output. */
  headline: string[];
  /** Commands and their output: the end is kept. */
  log: string[];
}

export async function publishPackage(deps: ActivityDeps, request: PublishRequest): Promise<PublishRecord> {
  const registry = deps.registry;
  const progress: Progress = { name: request.repo.publish?.name ?? null, version: null, releasedVersion: null, headVersion: null, headline: [], log: [] };
  const mask = (text: string) => {
    const masked = deps.redact(text);
    return registry && registry.token.length > 0 ? masked.split(registry.token).join('[REDACTED]') : masked;
  };
  const finish = (status: PublishRecord['status'], reused: boolean, note?: string): PublishRecord => {
    if (note) progress.headline.push(note);
    return {
      repo: request.repo.id,
      round: request.round,
      sha: request.sha,
      name: progress.name,
      version: progress.version,
      distTag: distTagFor(request.runId),
      releasedVersion: progress.releasedVersion,
      headVersion: progress.headVersion,
      status,
      reused,
      output: outputOf(progress, mask),
      at: Date.now(),
    };
  };
  if (!registry) return finish('failed', false, 'No npm registry is configured for this service, so in-flight packages cannot be published; dependents use the released version.');
  const spec = request.repo.publish;
  if (!spec) return finish('failed', false, `${request.repo.id} has no "publish" entry in the catalog, so it is not published as a package.`);
  const directory = path.posix.normalize(spec.directory.replace(/\\/g, '/'));
  if (directory.startsWith('..') || path.posix.isAbsolute(directory)) return finish('failed', false, `publish.directory ${spec.directory} is outside the repository.`);

  const remote = await remoteFor(deps, request.repo.url);
  return withWorkspace(deps.dataDir, request.runId, `${request.repo.id}-publish-r${request.round}`, (workspace) =>
    whileHeartbeating(async (signal) => {
      const checkout = path.join(workspace, 'checkout');
      await checkoutFromCache(deps, remote, checkout, request.branch, { sha: request.sha });
      const packageDir = path.join(checkout, directory);
      const manifestFile = path.join(packageDir, 'package.json');
      const manifest = await readManifest(manifestFile);
      if (!manifest) return finish('failed', false, `${path.posix.join(directory, 'package.json')} is missing or not valid JSON at ${request.sha.slice(0, 12)}.`);
      progress.headVersion = manifest.version ?? null;
      const baseVersion = await versionAt(remote, checkout, request.branch, request.baseSha, path.posix.join(directory, 'package.json'));
      // Released is the newer of the default branch's version and the registry's `latest`: repositories whose
      // release tooling (changesets, semantic-release) does not bump package.json on main are released anyway.
      progress.releasedVersion = newestRelease(baseVersion, manifest.name ? (await readPackument(registry, manifest.name))?.['dist-tags'].latest ?? null : null);
      if (!manifest.name) return finish('failed', false, `${path.posix.join(directory, 'package.json')} has no "name".`);
      if (spec.name && manifest.name !== spec.name) return finish('failed', false, `${path.posix.join(directory, 'package.json')} is named ${manifest.name}, but the catalog publishes ${spec.name}.`);
      progress.name = manifest.name;
      if (manifest.private) return finish('failed', false, `${manifest.name} is marked "private": true in ${path.posix.join(directory, 'package.json')}, so npm will not publish it; remove "private" to let dependents use its in-flight changes.`);
      const version = prereleaseVersion(manifest.version ?? '0.0.0', request.runId, request.round);
      progress.version = version;
      const scratch = path.join(workspace, 'scratch');
      await fs.mkdir(scratch, { recursive: true });
      const access = { url: registry.url, token: registry.token };

      // A retry of a publish that happened needs no install or build.
      const before = await settledBefore(access, manifest.name, version, request, scratch, progress);
      if (before) return finish(before.status, before.reused);

      const home = path.join(workspace, 'home');
      await fs.mkdir(home, { recursive: true });
      // Repository commands get the registry's address, never its token.
      const env = repositoryCommandEnv(deps, home);
      const failedStep = await prepare({ repo: request.repo, checkout, packageDir, changeSet: request.changeSet, env, signal, installCache: installCacheDir(deps), confinement: repositoryConfinement(deps, request.repo) }, progress);
      if (failedStep) return finish('failed', false);

      await fs.writeFile(manifestFile, rewrittenManifest(await fs.readFile(manifestFile, 'utf8'), version, request.changeSet, request.sha));
      const tarball = await packFolder(packageDir, path.join(scratch, 'out'), scratch);
      const published = await publishTarball(access, tarball.file, distTagFor(request.runId), scratch);
      if (published.ok) {
        progress.log.push(published.output);
        return finish('published', false, `Published ${manifest.name}@${version} (dist-tag ${distTagFor(request.runId)}, ${tarball.integrity}).`);
      }
      if (published.refusal.code === 'E409') {
        // Another attempt got there first: what it published decides, exactly as on a retry.
        const after = await settledBefore(access, manifest.name, version, request, scratch, progress);
        if (after) return finish(after.status, after.reused);
      }
      progress.log.push(published.output);
      return finish('failed', false, `The registry refused to publish ${manifest.name}@${version} (${published.refusal.code}): ${published.refusal.message}`);
    }),
  ).catch((error: unknown) => {
    // A registry that answers no, or a package npm cannot pack, will do so again: report it instead of retrying.
    if (error instanceof RegistryRefusedError || error instanceof PackFailedError) return finish('failed', false, error.message);
    throw error;
  });
}

/**
 * Whether this version is already in the registry: published from this commit (reused; its dist-tag
 * made to follow it), from another commit (refused), or not there (null: go on and publish).
 */
async function settledBefore(
  registry: RegistryAccess,
  name: string,
  version: string,
  request: PublishRequest,
  scratch: string,
  progress: Progress,
): Promise<{ status: PublishRecord['status']; reused: boolean } | null> {
  const packument = await readPackument(registry, name);
  const existing = packument?.versions[version];
  if (!packument || !existing) return null;
  if (existing.gitHead !== request.sha) {
    progress.headline.push(
      `${name}@${version} already exists in the registry for another commit (${existing.gitHead ? existing.gitHead.slice(0, 12) : 'unknown'}), not ${request.sha.slice(0, 12)}; nothing was published or changed.`,
    );
    return { status: 'failed', reused: false };
  }
  progress.headline.push(`${name}@${version} was already published from ${request.sha.slice(0, 12)}; reused, nothing published.`);
  const distTag = distTagFor(request.runId);
  if (tagShouldMove(packument, distTag, version, request)) {
    const tagged = await addDistTag(registry, name, version, distTag, scratch);
    progress.headline.push(tagged.ok ? `dist-tag ${distTag} now points at ${version}` : `dist-tag ${distTag} could not be moved to ${version} (${tagged.refusal.code}): ${tagged.refusal.message}`);
  }
  return { status: 'published', reused: true };
}

/** The run's dist-tag follows its newest round: set it when it is missing or on an earlier round. */
function tagShouldMove(packument: Packument, distTag: string, version: string, request: PublishRequest): boolean {
  const current = packument['dist-tags'][distTag];
  if (current === version) return false;
  if (!current) return true;
  const round = new RegExp(`-cr\\.${shortRunId(request.runId)}\\.(\\d+)$`).exec(current)?.[1];
  return round === undefined || Number(round) < request.round;
}

interface Preparation {
  repo: CatalogRepo;
  checkout: string;
  packageDir: string;
  changeSet: ChangeSetPackage[];
  /** The repository commands' environment (registry address, no token). */
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  installCache: string;
  confinement: Confinement;
}

/** Install, the change set this package depends on, then its build; true when a step failed (logged). */
async function prepare({ repo, checkout, packageDir, changeSet, env, signal, installCache, confinement }: Preparation, progress: Progress): Promise<boolean> {
  const report = (result: CheckResult) => {
    progress.log.push(`$ ${result.command}\n[${result.status}${result.exitCode === null ? '' : `, exit ${result.exitCode}`}, ${result.durationMs} ms]\n${result.outputTail}`);
    return result.status !== 'passed';
  };
  for (const result of await install(repo, checkout, { cacheDir: installCache, env, signal, confinement })) {
    if (report(result)) return fail(progress, `install step "${result.name}" failed, so nothing was published.`);
  }
  const changeSetInstall = await installChangeSet(checkout, changeSet, { env, signal, confinement });
  if (changeSetInstall.result && report(changeSetInstall.result)) return fail(progress, 'the change set could not be installed, so nothing was published.');
  const build = repo.publish?.build;
  if (!build) return false;
  const ran = await runCommand(build.run, { cwd: checkout, timeoutMs: build.timeoutSeconds * 1000, env, signal, confinement });
  signal.throwIfAborted();
  const status: CheckResult['status'] = ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed';
  const output = (ran.timedOut ? `[killed after ${build.timeoutSeconds}s]\n` : '') + ran.outputTail.slice(-OUTPUT_TAIL_CHARS);
  if (report({ name: build.name, command: build.run, kind: 'install', status, exitCode: ran.exitCode, durationMs: ran.durationMs, outputTail: output })) {
    return fail(progress, `the build "${build.name}" failed, so nothing was published.`);
  }
  // Builds that write into the package folder are expected; the package folder must still be there.
  await fs.access(path.join(packageDir, 'package.json'));
  return false;
}

function fail(progress: Progress, why: string): true {
  progress.headline.push(`Not published: ${why}`);
  return true;
}

function outputOf(progress: Progress, mask: (text: string) => string): string {
  const head = mask(progress.headline.join('\n')).slice(0, OUTPUT_TAIL_CHARS / 2);
  const log = mask(progress.log.filter(Boolean).join('\n').trim());
  const room = OUTPUT_TAIL_CHARS - head.length - 1;
  return [head, log.length > room ? `…${log.slice(-(room - 1))}` : log].filter(Boolean).join('\n');
}

/**
 * package.json as published: the prerelease version, the commit it came from, and every in-flight package
 * it depends on pinned to the exact prerelease its build used. Only in the scratch checkout, never committed.
 */
export function rewrittenManifest(text: string, version: string, changeSet: readonly ChangeSetPackage[], sha: string): string {
  const manifest = JSON.parse(text) as Manifest;
  manifest.version = version;
  manifest.gitHead = sha;
  // A publishConfig could send the package (and npm's credentials lookup) to another registry or tag.
  delete manifest.publishConfig;
  for (const section of PINNED_SECTIONS) {
    const dependencies = manifest[section];
    if (!dependencies) continue;
    for (const pkg of changeSet) if (pkg.name in dependencies) dependencies[pkg.name] = pkg.version;
  }
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

async function readManifest(file: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

function newestRelease(...versions: (string | null)[]): string | null {
  const released = versions.filter((v): v is string => v !== null && semver.valid(v) !== null && semver.prerelease(v) === null);
  return released.sort(semver.rcompare)[0] ?? versions.find((v) => v !== null) ?? null;
}

/** The version in package.json at a commit (the work branch's base: what is released); null if unreadable. */
async function versionAt(remote: Remote, checkout: string, branch: string, sha: string, filepath: string): Promise<string | null> {
  try {
    if (!(await ensureCommit(remote, checkout, branch, sha))) return null;
    const { blob } = await git.readBlob({ fs, dir: checkout, oid: sha, filepath });
    return (JSON.parse(Buffer.from(blob).toString('utf8')) as Manifest).version ?? null;
  } catch {
    return null;
  }
}
