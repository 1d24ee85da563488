// The repositories folder: `<reposDir>/<owner>/<name>.git` bare repositories, each with `<name>.pulls.json` beside it.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { guardRefs } from './ref-guard';

/** No "/" and no leading ".", so a name can never climb out of, or hide inside, the repositories folder. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const GIT_SUFFIX = '.git';

const execFileAsync = promisify(execFile);

export interface Repo {
  owner: string;
  name: string;
  fullName: string;
  gitDir: string;
  /** Where the repository's pull request records are kept. */
  pullsFile: string;
}

/** The repository `owner/name` would be, or null when either is not an acceptable name. */
export function repoAt(reposDir: string, owner: string, name: string): Repo | null {
  if (!NAME_PATTERN.test(owner) || !NAME_PATTERN.test(name)) return null;
  const ownerDir = path.join(reposDir, owner);
  return {
    owner,
    name,
    fullName: `${owner}/${name}`,
    gitDir: path.join(ownerDir, `${name}${GIT_SUFFIX}`),
    pullsFile: path.join(ownerDir, `${name}.pulls.json`),
  };
}

/** `name` for `name.git`, null for anything not ending in `.git`. */
export function withoutGitSuffix(entry: string): string | null {
  return entry.endsWith(GIT_SUFFIX) ? entry.slice(0, -GIT_SUFFIX.length) : null;
}

export async function repoExists(repo: Repo): Promise<boolean> {
  return fs.stat(path.join(repo.gitDir, 'HEAD')).then((s) => s.isFile(), () => false);
}

/** Every repository in the folder, sorted by owner and then name. */
export async function listRepos(reposDir: string): Promise<Repo[]> {
  const repos: Repo[] = [];
  const subdirs = async (dir: string) =>
    (await fs.readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const owner of await subdirs(reposDir)) {
    for (const entry of await subdirs(path.join(reposDir, owner))) {
      const name = withoutGitSuffix(entry);
      const repo = name === null ? null : repoAt(reposDir, owner, name);
      if (repo && (await repoExists(repo))) repos.push(repo);
    }
  }
  return repos;
}

/**
 * Creates an empty bare repository, guarded so only the forge changes its refs (ref-guard.ts), and returns
 * its path; fails if the name is invalid or it already exists.
 */
export async function createBareRepo(reposDir: string, owner: string, name: string, defaultBranch: string, writeKey: string): Promise<string> {
  const repo = repoAt(reposDir, owner, name);
  if (!repo) throw new Error(`invalid repository name "${owner}/${name}"`);
  if (await repoExists(repo)) throw new Error(`${repo.fullName} already exists`);
  await fs.mkdir(path.dirname(repo.gitDir), { recursive: true });
  await execFileAsync('git', ['init', '--quiet', '--bare', `--initial-branch=${defaultBranch}`, repo.gitDir]);
  await guardRefs(repo.gitDir, writeKey);
  return repo.gitDir;
}
