// Plain HTML pages where a person can look at the repositories and the pull requests they have received.
import { defaultBranch } from './git-queries';
import { newestFirst } from './pulls-store';
import { listRepos, type Repo } from './repos';
import type { Site } from './site';

export async function renderIndexPage(site: Site): Promise<string> {
  const repos = await listRepos(site.reposDir);
  const sections = await Promise.all(repos.map((repo) => renderRepoSection(site, repo)));
  return htmlPage('Forge', `<h1>Repositories</h1>${sections.join('') || '<p>No repositories yet.</p>'}`);
}

export async function renderRepoPage(site: Site, repo: Repo): Promise<string> {
  return htmlPage(repo.fullName, `<p><a href="/">All repositories</a></p>${await renderRepoSection(site, repo)}`);
}

/** Null when the repository has no pull request with that number. */
export async function renderPullPage(site: Site, repo: Repo, number: number): Promise<string | null> {
  const pull = (await site.pulls.read(repo)).find((p) => p.number === number);
  if (!pull) return null;
  const labels = pull.labels.map((l) => `<span class="label">${escapeHtml(l)}</span>`).join(' ');
  return htmlPage(
    `${pull.title} · ${repo.fullName}#${number}`,
    `<p><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></p>` +
      `<h1>${escapeHtml(pull.title)} <span class="number">#${number}</span></h1>` +
      `<p><span class="state">${pull.draft ? 'draft' : pull.state}</span> <code>${escapeHtml(pull.head)}</code> → <code>${escapeHtml(pull.base)}</code></p>` +
      (labels ? `<p>${labels}</p>` : '') +
      `<pre class="body">${escapeHtml(pull.body ?? '')}</pre>`,
  );
}

async function renderRepoSection(site: Site, repo: Repo): Promise<string> {
  const pulls = (await site.pulls.read(repo)).sort(newestFirst);
  const items = pulls.map(
    (p) =>
      `<li><a href="/${repo.fullName}/pull/${p.number}">#${p.number} ${escapeHtml(p.title)}</a> ` +
      `<span class="state">${p.state}</span> <code>${escapeHtml(p.head)}</code> → <code>${escapeHtml(p.base)}</code></li>`,
  );
  return (
    `<section><h2><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></h2>` +
    `<p>Clone: <code>${escapeHtml(`${site.url}/${repo.fullName}.git`)}</code> · default branch <code>${escapeHtml(await defaultBranch(repo))}</code></p>` +
    (items.length ? `<ul>${items.join('')}</ul>` : '<p>No pull requests.</p>') +
    `</section>`
  );
}

function htmlPage(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>` +
    'body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}' +
    '.state,.label{border-radius:1em;padding:0 .6em;background:#ddf4e4}.label{background:#e6e6fa}.number{color:#777}' +
    'pre.body{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:6px}' +
    `</style></head><body>${body}</body></html>`
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
