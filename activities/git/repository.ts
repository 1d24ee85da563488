// Git through isomorphic-git, over smart HTTP exactly as against GitHub: shallow single-branch clones,
// a work branch per run, commits by the service crediting the requester, and pushes.
import { promises as fs } from 'node:fs';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';

export interface Remote {
  url: string;
  /** Sent as HTTP Basic password (GitHub accepts a token this way); never logged. */
  token?: string;
}

export const SERVICE_AUTHOR = { name: 'Change Request Service', email: 'change-requests@noreply.local' };

/** HTTP Basic credentials for isomorphic-git's onAuth, the way GitHub accepts a token. */
export function gitAuth(remote: Remote) {
  return remote.token ? () => ({ username: 'x-access-token', password: remote.token }) : undefined;
}

/** The remote's commit for a branch, or null when the branch does not exist there. */
export async function remoteBranchSha(remote: Remote, branch: string): Promise<string | null> {
  const refs = await git.listServerRefs({ http, url: remote.url, prefix: `refs/heads/${branch}`, onAuth: gitAuth(remote) });
  return refs.find((r) => r.ref === `refs/heads/${branch}`)?.oid ?? null;
}

export async function shallowClone(remote: Remote, dir: string, branch: string, depth: number): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await git.clone({ fs, http, dir, url: remote.url, ref: branch, singleBranch: true, depth, noTags: true, onAuth: gitAuth(remote) });
  return git.resolveRef({ fs, dir, ref: 'HEAD' });
}

/** Makes sure `oid` is present locally, deepening the shallow clone if it is further back. */
export async function ensureCommit(remote: Remote, dir: string, branch: string, oid: string): Promise<boolean> {
  if (await hasObject(dir, oid)) return true;
  for (const depth of [20, 200, 2000]) {
    await git.fetch({ fs, http, dir, url: remote.url, ref: branch, singleBranch: true, depth, relative: true, tags: false, onAuth: gitAuth(remote) });
    if (await hasObject(dir, oid)) return true;
  }
  return false;
}

async function hasObject(dir: string, oid: string): Promise<boolean> {
  try {
    await git.readCommit({ fs, dir, oid });
    return true;
  } catch {
    return false;
  }
}

export async function resolveHead(dir: string): Promise<string> {
  return git.resolveRef({ fs, dir, ref: 'HEAD' });
}

export async function checkoutNewBranch(dir: string, branch: string): Promise<void> {
  await git.branch({ fs, dir, ref: branch, checkout: true, force: true });
}

/** Stages every change in the work tree (added, modified, deleted) and commits; null when nothing changed. */
export async function commitAll(dir: string, message: string): Promise<{ sha: string; files: string[] } | null> {
  const matrix = await git.statusMatrix({ fs, dir });
  const changed: string[] = [];
  for (const [file, head, workdir, stage] of matrix) {
    if (head === 1 && workdir === 1 && stage === 1) continue;
    if (workdir === 0) await git.remove({ fs, dir, filepath: file });
    else await git.add({ fs, dir, filepath: file });
    changed.push(file);
  }
  if (changed.length === 0) return null;
  const sha = await git.commit({ fs, dir, message, author: SERVICE_AUTHOR, committer: SERVICE_AUTHOR });
  return { sha, files: changed.sort() };
}

export async function push(remote: Remote, dir: string, branch: string): Promise<void> {
  const result = await git.push({ fs, http, dir, url: remote.url, ref: branch, remoteRef: branch, onAuth: gitAuth(remote) });
  if (!result.ok) {
    const why = Object.entries(result.refs ?? {}).map(([ref, r]) => `${ref}: ${r.error ?? 'rejected'}`).join('; ');
    throw new Error(`push of ${branch} was rejected: ${result.error ?? why}`);
  }
}

/** The agent's work could not be merged with what someone else pushed; it is safe on `rescueBranch`. */
export class BranchMovedError extends Error {
  override readonly name = 'BranchMovedError';
  constructor(readonly branch: string, readonly rescueBranch: string, detail: string) {
    super(`${branch} moved while the agent worked and the changes conflict (${detail}); the agent's work is saved on ${rescueBranch}`);
  }
}

/**
 * Pushes the branch; when someone else pushed to it meanwhile, merges their commits in (keeping the agent's
 * commit as the first parent) and pushes again. On a conflict the agent's work goes to a rescue branch,
 * so nothing it did is lost, and BranchMovedError says where.
 */
export async function pushMergingIfMoved(remote: Remote, dir: string, branch: string, message: string): Promise<'pushed' | 'merged'> {
  try {
    await push(remote, dir, branch);
    return 'pushed';
  } catch (error) {
    if ((error as { code?: string }).code !== 'PushRejectedError' && !/not-fast-forward|rejected/i.test(String(error))) throw error;
  }
  await git.fetch({ fs, http, dir, url: remote.url, ref: branch, remoteRef: branch, singleBranch: true, depth: 200, tags: false, onAuth: gitAuth(remote) });
  const theirs = await git.resolveRef({ fs, dir, ref: 'FETCH_HEAD' }).catch(() => git.resolveRef({ fs, dir, ref: `refs/remotes/origin/${branch}` }));
  try {
    await git.merge({ fs, dir, ours: branch, theirs, message, author: SERVICE_AUTHOR, committer: SERVICE_AUTHOR, abortOnConflict: true });
  } catch (error) {
    const rescueBranch = `${branch}-rescued-${(await git.resolveRef({ fs, dir, ref: branch })).slice(0, 8)}`;
    await git.push({ fs, http, dir, url: remote.url, ref: branch, remoteRef: rescueBranch, onAuth: gitAuth(remote) });
    throw new BranchMovedError(branch, rescueBranch, error instanceof Error ? error.message.split('\n')[0]! : String(error));
  }
  await git.checkout({ fs, dir, ref: branch, force: true });
  await push(remote, dir, branch);
  return 'merged';
}

/** The first-parent chain from HEAD, newest first (up to the first commit `until` accepts): the branch's own line, not what was merged into it. */
export async function firstParentLine(dir: string, max: number, until?: (commit: LoggedCommit) => boolean): Promise<LoggedCommit[]> {
  const line: LoggedCommit[] = [];
  let oid: string | undefined = await git.resolveRef({ fs, dir, ref: 'HEAD' });
  while (oid && line.length < max) {
    let commit;
    try {
      commit = await git.readCommit({ fs, dir, oid });
    } catch {
      break; // the shallow boundary
    }
    const logged = { sha: oid, message: commit.commit.message, parents: commit.commit.parent };
    line.push(logged);
    if (until?.(logged)) break;
    oid = commit.commit.parent[0];
  }
  return line;
}

export interface LoggedCommit {
  sha: string;
  message: string;
  parents: string[];
}

/** Commits reachable from HEAD in the local (shallow) history, newest first. */
export async function recentCommits(dir: string, depth = 50): Promise<LoggedCommit[]> {
  const log = await git.log({ fs, dir, depth }).catch(() => []);
  return log.map((entry) => ({ sha: entry.oid, message: entry.commit.message, parents: entry.commit.parent }));
}

export async function commitFiles(dir: string, sha: string): Promise<string[]> {
  const commit = await git.readCommit({ fs, dir, oid: sha });
  const parent = commit.commit.parent[0];
  if (!parent) return [];
  return (await changedPaths(dir, parent, sha)).map((c) => c.path);
}

export interface PathChange {
  path: string;
  change: 'added' | 'modified' | 'deleted';
  before: Uint8Array | null;
  after: Uint8Array | null;
}

/** Files that differ between two commits, with their contents. */
export async function changedPaths(dir: string, fromSha: string, toSha: string): Promise<PathChange[]> {
  const changes = await git.walk({
    fs,
    dir,
    trees: [git.TREE({ ref: fromSha }), git.TREE({ ref: toSha })],
    map: async (filepath, [from, to]) => {
      if (filepath === '.') return undefined;
      const fromType = await from?.type();
      const toType = await to?.type();
      if (fromType === 'tree' || toType === 'tree') return undefined; // descend; only blobs are changes
      const fromOid = fromType === 'blob' ? await from!.oid() : null;
      const toOid = toType === 'blob' ? await to!.oid() : null;
      if (fromOid === toOid) return undefined;
      const change: PathChange['change'] = fromOid === null ? 'added' : toOid === null ? 'deleted' : 'modified';
      return {
        path: filepath,
        change,
        before: fromOid ? ((await from!.content()) ?? null) : null,
        after: toOid ? ((await to!.content()) ?? null) : null,
      } satisfies PathChange;
    },
  });
  return (changes as PathChange[]).sort((a, b) => a.path.localeCompare(b.path));
}
