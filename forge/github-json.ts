// Repositories and pull requests in the JSON shapes GitHub's REST API gives them.
import { createHash } from 'node:crypto';
import { defaultBranch } from './git-queries';
import type { PullRecord } from './pulls-store';
import type { Repo } from './repos';
import type { Site } from './site';

const BOT_USER = { login: 'change-request-bot' };

export async function repositoryJson(site: Site, repo: Repo) {
  return {
    id: numericId(repo.fullName),
    name: repo.name,
    full_name: repo.fullName,
    owner: { login: repo.owner },
    default_branch: await defaultBranch(repo),
    archived: false,
    private: true,
    html_url: `${site.url}/${repo.fullName}`,
    clone_url: `${site.url}/${repo.fullName}.git`,
    permissions: { admin: true, push: true, pull: true },
  };
}

/** `branches` gives the current commits; a deleted branch shows the commit last recorded. */
export function pullJson(site: Site, repo: Repo, record: PullRecord, branches: Map<string, string>) {
  const side = (ref: string, sha: string) => ({ ref, sha, label: `${repo.owner}:${ref}`, repo: { full_name: repo.fullName } });
  return {
    id: numericId(`${repo.fullName}#${record.number}`),
    number: record.number,
    state: record.state,
    title: record.title,
    body: record.body,
    draft: record.draft,
    merged: record.merged,
    merged_at: record.mergedAt,
    merge_commit_sha: record.mergeCommitSha,
    closed_at: record.closedAt,
    html_url: `${site.url}/${repo.fullName}/pull/${record.number}`,
    url: `${site.apiUrl}/repos/${repo.fullName}/pulls/${record.number}`,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    user: BOT_USER,
    labels: labelsJson(record.labels),
    head: side(record.head, branches.get(record.head) ?? record.headSha),
    base: side(record.base, branches.get(record.base) ?? record.baseSha),
  };
}

export function labelsJson(labels: string[]) {
  return labels.map((name) => ({ name }));
}

/** GitHub-like numeric ids that stay the same across restarts. */
function numericId(key: string): number {
  return createHash('sha256').update(key).digest().readUIntBE(0, 6);
}
