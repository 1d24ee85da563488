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

/** The commit a ref or sha from a URL names, or null when it names none (options cannot be smuggled in). */
export async function resolveCommit(repo: Repo, ref: string): Promise<string | null> {
  if (!ref || ref.startsWith('-') || ref.length > 250 || /[\s:]/.test(ref)) return null;
  try {
    return (await gitIn(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])).trim() || null;
  } catch {
    return null;
  }
}

/** What `head` changes since it left `base`, as GitHub's pull request and compare views show it (three dots). */
export async function diffBetween(repo: Repo, baseSha: string, headSha: string): Promise<string> {
  return gitIn(repo, ['diff', '--no-color', '--no-ext-diff', '--find-renames', `${baseSha}...${headSha}`]);
}

export interface CommitLine {
  sha: string;
  author: string;
  date: string;
  subject: string;
}

/** The commits on `head` that `base` does not have, oldest first (as a pull request lists them). */
export async function commitsOn(repo: Repo, baseSha: string, headSha: string, limit = 250): Promise<CommitLine[]> {
  const out = await gitIn(repo, ['log', '--reverse', `--max-count=${limit}`, '--format=%H%x00%an%x00%aI%x00%s', `${baseSha}..${headSha}`]);
  return out.split('\n').filter(Boolean).map((line) => {
    const [sha = '', author = '', date = '', subject = ''] = line.split('\0');
    return { sha, author, date, subject };
  });
}

export type FileAtRef = { kind: 'file'; text: string; bytes: number; binary: boolean } | { kind: 'missing' } | { kind: 'too-large'; bytes: number };

/** A regular file's content at a commit (the commit resolved first, so `path` cannot become an option). */
export async function fileAt(repo: Repo, commitSha: string, filePath: string, maxBytes: number): Promise<FileAtRef> {
  const spec = `${commitSha}:${filePath}`;
  let header: string;
  try {
    header = await gitWithInput(repo, ['cat-file', '--batch-check=%(objecttype) %(objectsize)'], `${spec}\n`);
  } catch {
    return { kind: 'missing' };
  }
  const [type, size] = header.trim().split(' ');
  if (type !== 'blob') return { kind: 'missing' };
  const bytes = Number(size);
  if (bytes > maxBytes) return { kind: 'too-large', bytes };
  const { stdout } = await execFileAsync('git', ['--git-dir', repo.gitDir, 'cat-file', 'blob', spec], { encoding: 'buffer', maxBuffer: maxBytes + 1024 });
  const binary = stdout.subarray(0, 8000).includes(0);
  return { kind: 'file', text: binary ? '' : stdout.toString('utf8'), bytes, binary };
}

function gitWithInput(repo: Repo, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['--git-dir', repo.gitDir, ...args], { maxBuffer: 1024 * 1024 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    child.stdin?.end(input);
  });
}
