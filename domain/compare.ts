// Where a repository's change can be read as a diff: its host's compare view (`<repo>/compare/<a>...<b>`,
// GitHub's address, which the local forge serves too), in total and per round. Pure.
import type { RunState } from './contracts';

export interface DiffRange {
  /** `total`, or the round whose commit this is. */
  round: number | 'total';
  label: string;
  base: string;
  head: string;
  /** The compare view on the repository's host, null when its URL is not a web address. */
  url: string | null;
}

/** `https://github.com/acme/web-app.git` → `https://github.com/acme/web-app/compare/<base>...<head>`. */
export function compareUrl(cloneUrl: string, base: string, head: string): string | null {
  let url: URL;
  try {
    url = new URL(cloneUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  // Never show credentials someone put in a clone URL.
  url.username = '';
  url.password = '';
  const repoPath = url.pathname.replace(/\/+$/, '').replace(/\.git$/, '');
  return `${url.origin}${repoPath}/compare/${base}...${head}`;
}

/** The diffs of one repository of the run: the whole change against its base, then each round's commit. */
export function diffRangesOf(state: Pick<RunState, 'repos' | 'catalogRepos'>, repoId: string): DiffRange[] {
  const repo = state.repos[repoId];
  if (!repo || !repo.baseSha || !repo.headSha || repo.commits.length === 0) return [];
  const cloneUrl = state.catalogRepos.find((r) => r.id === repoId)?.url ?? null;
  const at = (base: string, head: string) => (cloneUrl ? compareUrl(cloneUrl, base, head) : null);
  const ranges: DiffRange[] = [{ round: 'total', label: 'all rounds', base: repo.baseSha, head: repo.headSha, url: at(repo.baseSha, repo.headSha) }];
  repo.commits.forEach((commit, i) => {
    const base = repo.commits[i - 1]?.sha ?? repo.baseSha!;
    ranges.push({ round: commit.round, label: `round ${commit.round}`, base, head: commit.sha, url: at(base, commit.sha) });
  });
  return ranges;
}
