// The release plan on a dependent's work branch: its package.json (and the root entry of its lock file)
// depends on the release each changed package's PR will publish once merged, never on the run's
// prerelease. One commit, pushed; safe to retry: a branch that already has the ranges is left alone.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkoutFromCache, cloneCacheOf, remoteFor, type ActivityDeps } from '../deps';
import { describeChanges } from '../git/diff';
import { changedPaths, commitAll, ensureCommit, firstParentLine, pushMergingIfMoved, resolveHead, type Remote } from '../git/repository';
import { withWorkspace } from '../git/workspace';
import type { BumpRangesRequest, BumpRangesResult } from '../../domain/activity-contracts';

const SECTIONS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;
type Section = (typeof SECTIONS)[number];
type DependencyLists = Partial<Record<Section, Record<string, string>>>;

export async function bumpDependencyRanges(deps: ActivityDeps, request: BumpRangesRequest): Promise<BumpRangesResult> {
  const { repo, branch } = request;
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, request.runId, `${repo.id}-release-plan`, async (workspace) => {
    const dir = path.join(workspace, 'repo');
    // A little history, so a merge with commits pushed meanwhile finds a common ancestor.
    const before = await checkoutFromCache(deps, remote, dir, branch, { depth: 5 });

    const manifestFile = path.join(dir, 'package.json');
    const manifestText = await fs.readFile(manifestFile, 'utf8');
    const bumped = withRanges(manifestText, request.ranges, (manifest: DependencyLists) => manifest);
    const notListed = request.ranges.filter((r) => !bumped.listed.has(r.name)).map((r) => r.name);
    if (bumped.text === manifestText) return { repo: repo.id, commit: null, headSha: before, notListed, ...(await sinceBase(remote, dir, request, before)) };

    await fs.writeFile(manifestFile, bumped.text);
    const lockFile = path.join(dir, 'package-lock.json');
    const lockText = await fs.readFile(lockFile, 'utf8').catch(() => null);
    // Only the root entry: the locked tree stays as it is until the planned release exists to lock.
    if (lockText !== null) await fs.writeFile(lockFile, withRanges(lockText, request.ranges, (lock: { packages?: Record<string, DependencyLists> }) => lock.packages?.[''] ?? {}).text);

    const message = commitMessage(request, notListed);
    const commit = await commitAll(dir, message);
    if (!commit) return { repo: repo.id, commit: null, headSha: before, notListed, ...(await sinceBase(remote, dir, request, before)) };
    await pushMergingIfMoved(remote, dir, branch, mergeMessage(request));
    await adoptIntoCache(deps, remote, dir, branch);
    const headSha = (await firstParentLine(dir, 1))[0]!.sha;
    return {
      repo: repo.id,
      commit: { round: request.round, sha: commit.sha, message: message.split('\n')[0]!, files: commit.files },
      headSha,
      notListed,
      ...(await sinceBase(remote, dir, request, headSha)),
    };
  });
}

/**
 * The JSON text with each listed dependency set to its range, in whichever sections of `lists(document)`
 * name it; indentation, key order and the final newline as they were. Unchanged text when nothing changes.
 */
export function withRanges<T>(text: string, ranges: BumpRangesRequest['ranges'], lists: (document: T) => DependencyLists): { text: string; listed: Set<string> } {
  const document = JSON.parse(text) as T;
  const target = lists(document);
  const listed = new Set<string>();
  let changed = false;
  for (const { name, range } of ranges) {
    for (const section of SECTIONS) {
      const dependencies = target[section];
      if (!dependencies || !(name in dependencies)) continue;
      listed.add(name);
      if (dependencies[name] !== range) {
        dependencies[name] = range;
        changed = true;
      }
    }
  }
  if (!changed) return { text, listed };
  const newline = text.includes('\r\n') ? '\r\n' : '\n';
  const serialized = JSON.stringify(document, null, indentationOf(text)).replace(/\n/g, newline);
  return { text: /\r?\n$/.test(text) ? serialized + newline : serialized, listed };
}

/** The indentation of the first indented line (two spaces when the file is on one line). */
function indentationOf(text: string): string {
  return /^[{[][^\S\r\n]*\r?\n([ \t]+)\S/.exec(text)?.[1] ?? /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
}

/** The branch's whole change against where it started, as the run reports every repository's change. */
async function sinceBase(remote: Remote, dir: string, request: BumpRangesRequest, headSha: string): Promise<Pick<BumpRangesResult, 'files' | 'diffStat' | 'diffPreview'>> {
  if (!(await ensureCommit(remote, dir, request.branch, request.baseSha))) throw new Error(`${request.repo.id}: cannot find the base commit ${request.baseSha.slice(0, 12)} of ${request.branch}`);
  const { files, diffStat, diffPreview } = describeChanges(await changedPaths(dir, request.baseSha, headSha));
  return { files, diffStat, diffPreview };
}

function commitMessage(request: BumpRangesRequest, notListed: string[]): string {
  const bumps = request.ranges.filter((r) => !notListed.includes(r.name));
  const title = `${request.repo.id}: depend on ${bumps.map((r) => `${r.name} ${r.range}`).join(', ')} (planned release)`;
  const explanation = [
    `This change was checked against the in-flight ${bumps.length === 1 ? 'version' : 'versions'} of ${bumps.map((r) => r.name).join(', ')} from the same change request.`,
    `The branch depends on the ${bumps.length === 1 ? 'release' : 'releases'} planned for ${bumps.length === 1 ? 'it' : 'them'} once the upstream pull ${bumps.length === 1 ? 'request is' : 'requests are'} merged and published,`,
    'never on a prerelease of the run: merge the upstream first, publish its release, then this one installs and passes.',
  ].join('\n');
  return [title, '', explanation, '', `Requested-by: ${request.requester}`, `Change-Request-Run: ${request.runId}`, `Change-Request-Round: ${request.runId}/${request.round}-release-plan`, ''].join('\n');
}

function mergeMessage(request: BumpRangesRequest): string {
  return [
    `Merge what was pushed to ${request.branch} meanwhile (release plan)`,
    '',
    `Change-Request-Run: ${request.runId}`,
    `Change-Request-Round: ${request.runId}/${request.round}-release-plan`,
    '',
  ].join('\n');
}

async function adoptIntoCache(deps: ActivityDeps, remote: Remote, dir: string, branch: string): Promise<void> {
  try {
    await cloneCacheOf(deps).adoptPushed(remote, dir, branch, await resolveHead(dir));
  } catch {
    // Only a speed-up: the next activity fetches the commit instead.
  }
}
