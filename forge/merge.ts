// Merging a pull request as GitHub's "Create a merge commit" does: git computes the merged tree (no work
// tree needed), the forge commits it with both parents and moves the base branch, through its ref guard.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writerEnv } from './ref-guard';
import type { Repo } from './repos';

const execFileAsync = promisify(execFile);

export type MergeOutcome = { merged: true; sha: string } | { merged: false; why: string };

const FORGE_IDENTITY = { GIT_AUTHOR_NAME: 'Forge', GIT_AUTHOR_EMAIL: 'forge@localhost', GIT_COMMITTER_NAME: 'Forge', GIT_COMMITTER_EMAIL: 'forge@localhost' };

/** Merges `headSha` into `base` (whose tip must still be `baseSha`, so a concurrent push is not lost). */
export async function mergeIntoBase(repo: Repo, base: string, baseSha: string, headSha: string, message: string, writeKey: string): Promise<MergeOutcome> {
  const git = (args: string[]) => execFileAsync('git', ['--git-dir', repo.gitDir, ...args], { env: { ...process.env, ...FORGE_IDENTITY, ...writerEnv(writeKey) }, maxBuffer: 4 * 1024 * 1024 });
  let tree: string;
  try {
    tree = (await git(['merge-tree', '--write-tree', '--no-messages', baseSha, headSha])).stdout.split('\n')[0]!.trim();
  } catch (error) {
    // Exit 1 with the conflicted files listed: not mergeable, as GitHub says it.
    const output = (error as { stdout?: string }).stdout ?? '';
    return { merged: false, why: `merge conflict${output.includes('\n') ? ` in ${output.split('\n').slice(1).filter(Boolean).join(', ').slice(0, 300)}` : ''}` };
  }
  const commit = (await git(['commit-tree', tree, '-p', baseSha, '-p', headSha, '-m', message])).stdout.trim();
  await git(['update-ref', '-m', 'merge pull request', `refs/heads/${base}`, commit, baseSha]);
  return { merged: true, sha: commit };
}
