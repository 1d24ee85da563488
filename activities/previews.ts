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
//
// A preview that cannot be installed, built or deployed is a result (status 'failed', with the output),
// not an error: review goes on without it. Failures of the service's own parts (the forge unreachable, a
// full disk) throw, and Temporal retries. Both activities are safe to retry: a deploy replaces the
// previous preview of the run and repository under the same address, and removing what is gone is fine.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { CatalogCommand, CatalogRepo, PreviewSpec } from '../shared/catalog-schema';
import type { PreviewRecord, Screenshot } from '../shared/contracts';
import { deleteStoredPreview, isStoreId, previewUrl, publishStaticPreview, screenshotFile, screenshotUrl } from '../previews/store';
import { commandEnvironment, runCommand, type CommandResult } from './commands';
import { installCacheDir, packageManagerCaches, checkoutFromCache, remoteFor, type ActivityDeps } from './deps';
import { whileHeartbeating } from './heartbeat';
import { withWorkspace } from './git/workspace';
import { install } from './install-cache';
import { takeScreenshot } from './screenshot';
import type { PreviewRequest, RemovePreviewsRequest } from './types';

const OUTPUT_TAIL_CHARS = 4000;

type StaticSpec = Extract<PreviewSpec, { kind: 'static' }>;
type CommandSpec = Extract<PreviewSpec, { kind: 'command' }>;
type Outcome = { status: 'ready'; url: string; output: string } | { status: 'failed'; output: string };

interface Deployment {
  deps: ActivityDeps;
  request: PreviewRequest;
  checkout: string;
  /** The attempt's scratch folder, outside the checkout. */
  scratch: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export async function deployPreview(deps: ActivityDeps, request: PreviewRequest): Promise<PreviewRecord> {
  const { runId, repo } = request;
  const spec = repo.preview;
  if (!spec) throw ApplicationFailure.nonRetryable(`${repo.id} has no preview in the catalog, so there is nothing to deploy`, 'NoPreview');
  if (!isStoreId(runId)) {
    return previewRecord(request, spec.kind, { status: 'failed', output: `run id "${runId}" cannot name a preview: use letters, digits, ".", "_" or "-"` }, null);
  }
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, runId, `${repo.id}-preview`, (scratch) =>
    whileHeartbeating(async (signal) => {
      const checkout = path.join(scratch, 'checkout');
      await checkoutFromCache(deps, remote, checkout, request.branch, { sha: request.sha });
      const home = path.join(scratch, 'home');
      await fs.mkdir(home, { recursive: true });
      const deployment: Deployment = { deps, request, checkout, scratch, env: commandEnvironment(home, packageManagerCaches(deps)), signal };

      const installed = await install(repo, checkout, { cacheDir: installCacheDir(deps), env: deployment.env, signal });
      const failedStep = installed.find((step) => step.status !== 'passed');
      const outcome: Outcome = failedStep
        ? { status: 'failed', output: `install step "${failedStep.name}" (${failedStep.command}) ${failedStep.status === 'timed_out' ? 'timed out' : 'failed'}\n${failedStep.outputTail}` }
        : spec.kind === 'static'
          ? await deployStatic(deployment, spec)
          : await deployWithCommand(deployment, spec);
      if (outcome.status === 'failed') return previewRecord(request, spec.kind, outcome, null);

      const shot = await screenshotOf(deps, request, outcome.url);
      signal.throwIfAborted();
      return previewRecord(request, spec.kind, { ...outcome, output: outcome.output + shot.note }, shot.screenshot);
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
        // Static previews live in the store; so do the screenshots of both kinds.
        await deleteStoredPreview(deps.previews.dir, runId, repo.id);
        if (record.kind !== 'command' || record.url === null || repo.preview?.kind !== 'command' || !repo.preview.remove) continue;
        const failure = await runRemoveCommand(deps, runId, repo, repo.preview.remove, record.url, path.join(scratch, repo.id), signal);
        if (failure) failures.push(failure);
      }
    }),
  );
  // Retrying is safe: stored previews are gone already, and remove commands must accept a second run.
  if (failures.length > 0) throw new Error(`removing previews of ${runId} failed:\n${failures.join('\n')}`);
}

async function deployStatic({ deps, request, checkout, env, signal }: Deployment, spec: StaticSpec): Promise<Outcome> {
  let output = '';
  if (spec.build) {
    const ran = await runCommand(spec.build.run, { cwd: checkout, timeoutMs: spec.build.timeoutSeconds * 1000, env, signal });
    signal.throwIfAborted();
    if (ran.timedOut || ran.exitCode !== 0) return { status: 'failed', output: `${commandFailure('the build', spec.build, ran)}\n${tail(ran.outputTail)}` };
    output = tail(ran.outputTail);
  }
  const site = await siteFolder(checkout, spec.outputDir);
  if ('refused' in site) return { status: 'failed', output: `${site.refused}\n${output}` };
  const { skippedLinks } = await publishStaticPreview(deps.previews.dir, request.runId, request.repo.id, site.folder);
  const note = skippedLinks.length > 0 ? `\nleft out symbolic links (previews serve regular files only): ${skippedLinks.join(', ')}` : '';
  return { status: 'ready', url: previewUrl(deps.previews.baseUrl, request.runId, request.repo.id), output: output + note };
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

async function deployWithCommand({ request, checkout, scratch, env, signal }: Deployment, spec: CommandSpec): Promise<Outcome> {
  // Commands get stdout and stderr interleaved; the URL contract is about stdout alone, so it goes to a file.
  const stdoutFile = path.join(scratch, 'deploy-stdout.txt');
  const ran = await runCommand(`exec >${shellQuote(stdoutFile)}\n${spec.deploy.run}`, {
    cwd: checkout,
    timeoutMs: spec.deploy.timeoutSeconds * 1000,
    env: { ...env, PREVIEW_RUN_ID: request.runId, PREVIEW_REPO: request.repo.id, PREVIEW_BRANCH: request.branch, PREVIEW_SHA: request.sha },
    signal,
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
  const ran = await runCommand(remove.run, { cwd, timeoutMs: remove.timeoutSeconds * 1000, env, signal });
  signal.throwIfAborted();
  if (!ran.timedOut && ran.exitCode === 0) return null;
  return `${repo.id}: ${commandFailure('the remove command', remove, ran)} for ${url}\n${tail(ran.outputTail)}`;
}

/** The screenshot is a bonus: when it fails the preview still counts, and the reason goes in its output. */
async function screenshotOf(deps: ActivityDeps, request: PreviewRequest, url: string): Promise<{ screenshot: Screenshot | null; note: string }> {
  const { chromiumPath, viewport, dir, baseUrl } = deps.previews;
  if (chromiumPath === null) return { screenshot: null, note: '' };
  const { runId, repo, round } = request;
  try {
    const shot = await takeScreenshot(url, screenshotFile(dir, runId, repo.id, round), { chromiumPath, viewport });
    return { screenshot: { url: screenshotUrl(baseUrl, runId, repo.id, round), ...shot }, note: '' };
  } catch (error) {
    return { screenshot: null, note: `\nno screenshot: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}

function previewRecord(request: PreviewRequest, kind: PreviewRecord['kind'], outcome: Outcome, screenshot: Screenshot | null): PreviewRecord {
  const deployedAt = Date.now();
  return {
    repo: request.repo.id,
    round: request.round,
    sha: request.sha,
    kind,
    status: outcome.status,
    url: outcome.status === 'ready' ? outcome.url : null,
    screenshot,
    output: outcome.output,
    deployedAt,
    expiresAt: deployedAt + request.lifetimeMs,
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
