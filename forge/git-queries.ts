// Questions about a bare repository's branches and commits, answered by git itself.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Repo } from './repos';

const execFileAsync = promisify(execFile);

async function gitIn(repo: Repo, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', ['--git-dir', repo.gitDir, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Branch name → commit, read in one go so a response shows one consistent view of the repository. */
export async function branchHeads(repo: Repo): Promise<Map<string, string>> {
  const out = await gitIn(repo, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/']);
  const heads = new Map<string, string>();
  for (const line of out.split('\n')) {
    const space = line.indexOf(' ');
    if (space !== -1) heads.set(line.slice(space + 1).replace(/^refs\/heads\//, ''), line.slice(0, space));
  }
  return heads;
}

export async function defaultBranch(repo: Repo): Promise<string> {
  const head = await fs.readFile(path.join(repo.gitDir, 'HEAD'), 'utf8');
  return /^ref: refs\/heads\/(.+)$/m.exec(head)?.[1]?.trim() ?? 'main';
}

export async function commitsBetween(repo: Repo, baseSha: string, headSha: string): Promise<number> {
  return Number((await gitIn(repo, ['rev-list', '--count', `${baseSha}..${headSha}`])).trim());
}
