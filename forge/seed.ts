// Puts the demo's source folders onto the forge as repositories, each with one "Initial import" commit.
// Idempotent: a repository that already exists keeps its history, including branches pushed by earlier runs.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Forge } from './server';

export interface SeedRepository {
  owner: string;
  name: string;
  sourceDir: string;
  defaultBranch?: string;
}

const SKIPPED = new Set(['node_modules', 'dist', '.git']);
const SEEDER = { name: 'Demo Seeder', email: 'seed@forge.local' };

const execFileAsync = promisify(execFile);

export async function seedRepositories(forge: Forge, repos: SeedRepository[]): Promise<{ created: string[]; existing: string[] }> {
  const created: string[] = [];
  const existing: string[] = [];
  for (const repo of repos) {
    const fullName = `${repo.owner}/${repo.name}`;
    if (await forge.hasRepo(repo.owner, repo.name)) {
      existing.push(fullName);
      continue;
    }
    const branch = repo.defaultBranch ?? 'main';
    const bareDir = await forge.createBareRepo(repo.owner, repo.name, branch);
    try {
      await importAsInitialCommit(repo.sourceDir, bareDir, branch, forge.writerEnv);
    } catch (error) {
      // An empty repository would count as "existing" next time and never be filled.
      await fs.rm(bareDir, { recursive: true, force: true });
      throw error;
    }
    created.push(fullName);
  }
  return { created, existing };
}

async function importAsInitialCommit(sourceDir: string, bareDir: string, branch: string, writerEnv: Record<string, string>): Promise<void> {
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'forge-seed-'));
  try {
    const root = path.resolve(sourceDir);
    await fs.cp(root, workDir, { recursive: true, filter: (from) => from === root || !SKIPPED.has(path.basename(from)) });
    const git = (...args: string[]) => execFileAsync('git', args, { cwd: workDir, env: { ...seederEnv(), ...writerEnv } });
    await git('init', '--quiet', `--initial-branch=${branch}`);
    await git('add', '--all');
    await git('commit', '--quiet', '--allow-empty', '--no-verify', '-m', 'Initial import');
    await git('push', '--quiet', bareDir, `HEAD:refs/heads/${branch}`);
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

/** The seeder's identity, and none of the machine's git config (signing, hooks, templates) to get in the way. */
function seederEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: SEEDER.name,
    GIT_AUTHOR_EMAIL: SEEDER.email,
    GIT_COMMITTER_NAME: SEEDER.name,
    GIT_COMMITTER_EMAIL: SEEDER.email,
  };
}
