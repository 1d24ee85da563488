// Deploys a preview of one repository's work branch at one commit, so reviewers can see the change
// running, and takes previews down again. The catalog's `preview` says how:
//
//   static   after install, `build` (if any) runs in the checkout, and `outputDir` (a folder inside the
//            checkout) is copied into the preview store (layout in previews/store.ts), which the preview
//            server serves at <baseUrl>/<runId>/<repoId>/.
//   command  after install, `deploy` runs in the checkout and puts the preview wherever it likes. Contract:
//            it gets PREVIEW_RUN_ID, PREVIEW_REPO, PREVIEW_BRANCH and PREVIEW_SHA in its environment (and,
//            like every catalog command, none of the service's secrets), and prints the preview's http(s)
//            URL as the last non-empty line of its stdout (stderr is free for progress). `remove`, if set,
//            runs in an empty folder with PREVIEW_URL, PREVIEW_RUN_ID and PREVIEW_REPO; it may run more
//            than once for one URL and must succeed when the preview is already gone.
//   service  after install, `build` (if any) runs in the checkout, which is then moved into the store's
//            service folder (a fresh folder per deploy) and handed to the preview server's control API
//            (previews/control-api.ts): the server starts `start` there on a free port (PORT, HOST), waits
//            for `health` and proxies <baseUrl>/<runId>/<repoId>/ to it until the preview is removed. The
//            server, not this activity, owns the process: a preview lives for days, an activity for minutes.
//
// Every kind's build, deploy and start commands get the catalog's `env` for the preview, with
// `${preview:<repo>}` already resolved by the workflow (request.env), so an app's preview can talk to the
// changed API. Each deploy records what the preview runs against (request.upstream) and leaves its record in
// the store for the change-set page (<baseUrl>/<runId>/).
//
// A preview that cannot be installed, built or deployed is a result (status 'failed', with the output),
// not an error: review goes on without it. Failures of the service's own parts (the forge unreachable, a
// full disk) throw, and Temporal retries. Both activities are safe to retry: a deploy replaces the
// previous preview of the run and repository under the same address, and removing what is gone is fine.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { CatalogCommand, CatalogRepo, PreviewSpec } from '../domain/catalog-schema';
import type { PreviewRecord, Screenshot } from '../domain/contracts';
import { PreviewHostRefusal, startServiceOnHost, stopServiceOnHost } from '../previews/control-client';
import {
  deleteStoredPreview,
  isStoreId,
  newServiceDeployId,
  previewOriginUrl,
  previewUrl,
  publishStaticPreview,
  screenshotFile,
  screenshotUrl,
  serviceDeployFolder,
  writePreviewMeta,
  changeSetUrl,
} from '../previews/store';
import { commandEnvironment, runCommand, type CommandResult } from './commands';
import { installCacheDir, packageManagerCaches, checkoutFromCache, remoteFor, repositoryCommandEnv, repositoryConfinement, type ActivityDeps } from './deps';
import type { Confinement } from './sandbox';
import { whileHeartbeating } from './heartbeat';
import { repositoryRuntime } from './runtimes/use-runtime';
import { withWorkspace } from './git/workspace';
import { install } from './install-cache';
import { installChangeSet } from './packages/change-set-install';
import { takeScreenshot } from './screenshot';
import type { PreviewRequest, RemovePreviewsRequest } from '../domain/activity-contracts';

const OUTPUT_TAIL_CHARS = 4000;

type StaticSpec = Extract<PreviewSpec, { kind: 'static' }>;
type CommandSpec = Extract<PreviewSpec, { kind: 'command' }>;
type ServiceSpec = Extract<PreviewSpec, { kind: 'service' }>;
type Outcome = { status: 'ready'; url: string; rootUrl?: string; originUrl?: string | null; output: string } | { status: 'failed'; output: string };

interface Deployment {
  deps: ActivityDeps;
  request: PreviewRequest;
  checkout: string;
  /** The attempt's scratch folder, outside the checkout. */
  scratch: string;
  /** For installs: no secrets of the service, package-manager caches. */
  env: NodeJS.ProcessEnv;
  /** For build, deploy and start: `env` and the catalog's preview env (request.env). */
  previewEnv: NodeJS.ProcessEnv;
  /** What build and deploy commands may reach besides loopback (repositoryConfinement). */
  confinement: Confinement;
  signal: AbortSignal;
}

export async function deployPreview(deps: ActivityDeps, request: PreviewRequest): Promise<PreviewRecord> {
  const { runId, repo } = request;
  const spec = repo.preview;
  if (!spec) throw ApplicationFailure.nonRetryable(`${repo.id} has no preview in the catalog, so there is nothing to deploy`, 'NoPreview');
  if (!isStoreId(runId)) {
    return previewRecord(request, spec.kind, { status: 'failed', output: `run id "${runId}" cannot name a preview: use letters, digits, ".", "_" or "-"` }, null);
  }
  const record = await deployed(deps, request, spec);
  // The change-set page lists the run from these; a failed round is shown too, with its output.
  await writePreviewMeta(deps.previews.dir, runId, { ...record, branch: request.branch });
  return { ...record, changeSetUrl: changeSetUrl(deps.previews.baseUrl, runId) };
}

async function deployed(deps: ActivityDeps, request: PreviewRequest, spec: PreviewSpec): Promise<PreviewRecord> {
  const { runId, repo } = request;
  if (spec.kind === 'service' && deps.previews.host === null) {
    return previewRecord(request, spec.kind, { status: 'failed', output: 'service previews need the preview server: this worker has no control API configured for it (previews.host), so nothing was started' }, null);
  }
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, runId, `${repo.id}-preview`, (scratch) =>
    whileHeartbeating(async (signal) => {
      const checkout = path.join(scratch, 'checkout');
      await checkoutFromCache(deps, remote, checkout, request.branch, { sha: request.sha });
      const home = path.join(scratch, 'home');
      await fs.mkdir(home, { recursive: true });
      // Builds and services run on the Node.js the repository asks for, as its checks do.
      const runtime = await repositoryRuntime(deps, repo, checkout, signal);
      const env = repositoryCommandEnv(deps, home, runtime.env);
      const confinement = { ...repositoryConfinement(deps, repo), ...runtime.confinement };
      const deployment: Deployment = { deps, request, checkout, scratch, env, previewEnv: { ...env, ...request.env }, confinement, signal };

      const installed = await install(repo, checkout, { cacheDir: installCacheDir(deps), maxBytes: deps.installCacheMaxBytes, env, signal, confinement, nodeVersion: runtime.version });
      // The change set: the run's upstream packages installed over the released ones, in this checkout only,
      // so the preview runs against the changed package as the checks did.
      if (installed.every((step) => step.status === 'passed')) {
        const changeSet = await installChangeSet(checkout, request.changeSet, { env, signal, confinement });
        if (changeSet.result) installed.push(changeSet.result);
      }
      const failedStep = installed.find((step) => step.status !== 'passed');
      const outcome: Outcome = failedStep
        ? { status: 'failed', output: `install step "${failedStep.name}" (${failedStep.command}) ${failedStep.status === 'timed_out' ? 'timed out' : 'failed'}\n${failedStep.outputTail}` }
        : spec.kind === 'static'
          ? await deployStatic(deployment, spec)
          : spec.kind === 'command'
            ? await deployWithCommand(deployment, spec)
            : await deployService(deployment, spec);
      if (outcome.status === 'failed') return previewRecord(request, spec.kind, outcome, null);

      // Reviewers open the preview on its own origin when it has one: that is what is shot and checked.
      const shot = await screenshotOf(deps, request, outcome.originUrl ?? outcome.url);
      signal.throwIfAborted();
      return previewRecord(request, spec.kind, { ...outcome, output: outcome.output + shot.note }, shot.screenshot, shot.problems);
    }),
  );
}

export async function removePreviews(deps: ActivityDeps, request: RemovePreviewsRequest): Promise<void> {
  const { runId } = request;
  // Nothing can have been stored under a run id the store refuses.
  if (!isStoreId(runId)) return;
  const failures: string[] = [];
  await withWorkspace(deps.dataDir, runId, 'preview-remove', (scratch) =>
    whileHeartbeating(async (signal) => {
      for (const { repo, record } of request.previews) {
        if (record.kind === 'service' || repo.preview?.kind === 'service') {
          const failure = await stopService(deps, runId, repo.id, record, signal);
          if (failure) failures.push(failure);
        }
        // Static previews live in the store; so do the screenshots and metadata of every kind.
        await deleteStoredPreview(deps.previews.dir, runId, repo.id);
        if (record.kind !== 'command' || record.url === null || repo.preview?.kind !== 'command' || !repo.preview.remove) continue;
        const failure = await runRemoveCommand(deps, runId, repo, repo.preview.remove, record.url, path.join(scratch, repo.id), signal);
        if (failure) failures.push(failure);
      }
    }),
  );
  // Retrying is safe: stored previews are gone already, stopping a stopped service is fine, and remove
  // commands must accept a second run.
  if (failures.length > 0) throw new Error(`removing previews of ${runId} failed:\n${failures.join('\n')}`);
}

async function deployStatic(deployment: Deployment, spec: StaticSpec): Promise<Outcome> {
  const { deps, request, checkout } = deployment;
  const built = await build(deployment, spec.build);
  if (built.status === 'failed') return built;
  const output = built.output;
  const site = await siteFolder(checkout, spec.outputDir);
  if ('refused' in site) return { status: 'failed', output: `${site.refused}\n${output}` };
  const { leftOut } = await publishStaticPreview(deps.previews.dir, request.runId, request.repo.id, site.folder);
  const note = leftOut.length > 0 ? `\nleft out links and special files (previews serve regular files only): ${leftOut.join(', ')}` : '';
  const { baseUrl } = deps.previews;
  return { status: 'ready', url: previewUrl(baseUrl, request.runId, request.repo.id), originUrl: previewOriginUrl(baseUrl, request.runId, request.repo.id), output: output + note };
}

/** The build output to publish: a real folder inside the checkout, also after following links. */
async function siteFolder(checkout: string, outputDir: string): Promise<{ folder: string } | { refused: string }> {
  const inside = path.relative(checkout, path.resolve(checkout, outputDir));
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    return { refused: `outputDir "${outputDir}" must name a folder inside the checkout, such as "dist"` };
  }
  const folder = await fs.realpath(path.join(checkout, inside)).catch(() => null);
  if (folder === null) return { refused: `the build left no folder "${outputDir}" (the catalog's outputDir) in the checkout` };
  if (!folder.startsWith((await fs.realpath(checkout)) + path.sep)) {
    return { refused: `outputDir "${outputDir}" is a link that leads outside the checkout` };
  }
  if (!(await fs.stat(folder)).isDirectory()) return { refused: `outputDir "${outputDir}" is a file, not a folder` };
  return { folder };
}

/** The optional build step of static and service previews. */
async function build({ checkout, previewEnv, confinement, signal }: Deployment, command: CatalogCommand | undefined): Promise<{ status: 'passed'; output: string } | { status: 'failed'; output: string }> {
  if (!command) return { status: 'passed', output: '' };
  const ran = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env: previewEnv, signal, confinement });
  signal.throwIfAborted();
  if (ran.timedOut || ran.exitCode !== 0) return { status: 'failed', output: `${commandFailure('the build', command, ran)}\n${tail(ran.outputTail)}` };
  return { status: 'passed', output: tail(ran.outputTail) };
}

/**
 * Hands the built checkout to the preview server, which runs it. The checkout moves into the store (a
 * rename: the workspace and the store share the data folder's file system), under a fresh folder per
 * deploy, so a retried deploy never touches the folder the running service uses; the server replaces the
 * running service once the new one is healthy, and deletes the old folder.
 */
async function deployService(deployment: Deployment, spec: ServiceSpec): Promise<Outcome> {
  const { deps, request, checkout, signal } = deployment;
  const host = deps.previews.host!;
  const built = await build(deployment, spec.build);
  if (built.status === 'failed') return built;
  const folder = serviceDeployFolder(deps.previews.dir, request.runId, request.repo.id, newServiceDeployId(request.sha));
  await moveFolder(checkout, folder);
  signal.throwIfAborted();
  const body = {
    // Relative to the store, so the server finds it however either side spells the store's path.
    dir: path.relative(deps.previews.dir, folder),
    start: { run: spec.start.run, timeoutSeconds: spec.start.timeoutSeconds },
    health: spec.health,
    env: request.env,
  };
  let answer;
  try {
    answer = await startServiceOnHost(host, request.runId, request.repo.id, body, signal);
  } catch (error) {
    if (error instanceof PreviewHostRefusal && error.status >= 400 && error.status < 500) {
      // A refusal (a wrong token, a request the server does not accept) is not cured by retrying.
      await fs.rm(folder, { recursive: true, force: true });
      return { status: 'failed', output: `${error.message}\n${built.output}` };
    }
    // The server is down or broke: Temporal retries; this folder goes when the service is stopped.
    throw error;
  }
  signal.throwIfAborted();
  const output = [built.output, answer.output].filter(Boolean).join('\n');
  if (answer.status === 'failed') return { status: 'failed', output };
  const root = previewUrl(deps.previews.baseUrl, request.runId, request.repo.id);
  // What reviewers open (an API's root often answers 404); `${preview:…}` still points dependents at the root.
  const origin = previewOriginUrl(deps.previews.baseUrl, request.runId, request.repo.id);
  const opened = (base: string) => (spec.open ? new URL(spec.open.slice(1), base).href : base);
  return { status: 'ready', url: opened(root), rootUrl: root, originUrl: origin ? opened(origin) : null, output };
}

/** A rename where it can; a copy when the checkout and the store are on different file systems. */
async function moveFolder(from: string, to: string): Promise<void> {
  await fs.mkdir(path.dirname(to), { recursive: true });
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await fs.cp(from, to, { recursive: true, verbatimSymlinks: true });
    await fs.rm(from, { recursive: true, force: true });
  }
}

/** Null when stopped (or there was nothing to stop), else what went wrong. */
async function stopService(deps: ActivityDeps, runId: string, repoId: string, record: PreviewRecord, signal: AbortSignal): Promise<string | null> {
  const host = deps.previews.host;
  if (host === null) {
    // Without the control API nothing can have been started by this configuration; a ready one was, elsewhere.
    return record.status === 'ready' ? `${repoId}: the service preview cannot be stopped: this worker has no control API of the preview server configured (previews.host)` : null;
  }
  try {
    await stopServiceOnHost(host, runId, repoId, signal);
    return null;
  } catch (error) {
    return `${repoId}: stopping the service preview failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

async function deployWithCommand({ request, checkout, scratch, previewEnv, signal }: Deployment, spec: CommandSpec): Promise<Outcome> {
  // Commands get stdout and stderr interleaved; the URL contract is about stdout alone, so it goes to a file.
  const stdoutFile = path.join(scratch, 'deploy-stdout.txt');
  const ran = await runCommand(`exec >${shellQuote(stdoutFile)}\n${spec.deploy.run}`, {
    cwd: checkout,
    timeoutMs: spec.deploy.timeoutSeconds * 1000,
    env: { ...previewEnv, PREVIEW_RUN_ID: request.runId, PREVIEW_REPO: request.repo.id, PREVIEW_BRANCH: request.branch, PREVIEW_SHA: request.sha },
    signal,
    // The team's own deploy command reaches its hosting; it writes its stdout beside the checkout.
    confinement: { writable: [scratch], network: 'host' },
  });
  signal.throwIfAborted();
  const stdout = await fs.readFile(stdoutFile, 'utf8').catch(() => '');
  const output = [labelled('stdout', stdout), labelled('stderr', ran.outputTail)].filter(Boolean).join('\n');
  if (ran.timedOut || ran.exitCode !== 0) return { status: 'failed', output: `${commandFailure('the deploy command', spec.deploy, ran)}\n${output}` };
  const lastLine = stdout.split('\n').map((line) => line.trim()).filter(Boolean).pop() ?? '';
  if (!isHttpUrl(lastLine)) {
    const printed = lastLine ? `its last line was "${lastLine.slice(0, 200)}"` : 'it printed nothing on stdout';
    return { status: 'failed', output: `the deploy command must print the preview URL as its last line (${printed})\n${output}` };
  }
  return { status: 'ready', url: lastLine, output };
}

async function runRemoveCommand(deps: ActivityDeps, runId: string, repo: CatalogRepo, remove: CatalogCommand, url: string, folder: string, signal: AbortSignal): Promise<string | null> {
  const home = path.join(folder, 'home');
  const cwd = path.join(folder, 'empty');
  await fs.mkdir(home, { recursive: true });
  await fs.mkdir(cwd, { recursive: true });
  const env = commandEnvironment(home, { ...packageManagerCaches(deps), PREVIEW_URL: url, PREVIEW_RUN_ID: runId, PREVIEW_REPO: repo.id });
  const ran = await runCommand(remove.run, { cwd, timeoutMs: remove.timeoutSeconds * 1000, env, signal, confinement: { network: 'host' } });
  signal.throwIfAborted();
  if (!ran.timedOut && ran.exitCode === 0) return null;
  return `${repo.id}: ${commandFailure('the remove command', remove, ran)} for ${url}\n${tail(ran.outputTail)}`;
}

/** The screenshot is a bonus: when it fails the preview still counts, and the reason goes in its output. */
async function screenshotOf(deps: ActivityDeps, request: PreviewRequest, url: string): Promise<{ screenshot: Screenshot | null; note: string; problems: string[] }> {
  const { chromiumPath, viewport, dir, baseUrl } = deps.previews;
  if (chromiumPath === null) return { screenshot: null, note: '', problems: [] };
  const { runId, repo, round } = request;
  try {
    // The page may also call the run's other previews on the preview server's own address.
    const { unsandboxed, problems, ...shot } = await takeScreenshot(url, screenshotFile(dir, runId, repo.id, round), { chromiumPath, viewport, allowOrigins: [baseUrl] });
    return { screenshot: { url: screenshotUrl(baseUrl, runId, repo.id, round), ...shot }, note: unsandboxed ? `\nthe screenshot's Chromium ran without its own sandbox: ${unsandboxed}` : '', problems };
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    return { screenshot: null, note: `\nno screenshot: ${why}`, problems: [`the page could not be loaded for its screenshot: ${why}`] };
  }
}

function previewRecord(request: PreviewRequest, kind: PreviewRecord['kind'], outcome: Outcome, screenshot: Screenshot | null, problems: string[] = []): PreviewRecord {
  const deployedAt = Date.now();
  return {
    repo: request.repo.id,
    round: request.round,
    sha: request.sha,
    kind,
    status: outcome.status,
    url: outcome.status === 'ready' ? outcome.url : null,
    ...(outcome.status === 'ready' && outcome.rootUrl ? { rootUrl: outcome.rootUrl } : {}),
    ...(outcome.status === 'ready' && outcome.originUrl ? { originUrl: outcome.originUrl } : {}),
    ...(outcome.status === 'ready' && problems.length ? { problems } : {}),
    screenshot,
    output: outcome.output,
    deployedAt,
    expiresAt: deployedAt + request.lifetimeMs,
    upstream: request.upstream,
  };
}

function commandFailure(what: string, command: CatalogCommand, ran: CommandResult): string {
  return ran.timedOut
    ? `${what} "${command.run}" was killed after ${command.timeoutSeconds}s (its timeout)`
    : `${what} "${command.run}" exited with code ${ran.exitCode ?? 'none'}`;
}

function tail(output: string): string {
  return output.slice(-OUTPUT_TAIL_CHARS);
}

function labelled(label: string, text: string): string {
  const trimmed = text.trim();
  return trimmed ? `[${label}]\n${tail(trimmed)}` : '';
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Single-quoted for sh: the path of our own scratch file, never input from elsewhere. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
