// Plain HTML pages where a person can look at the repositories and the pull requests they have received.
import { renderDiffHtml } from '../domain/diff-html';
import { commitsOn, defaultBranch, diffBetween, fileAt, resolveCommit } from './git-queries';
import { renderMarkdownHtml } from './markdown-view';
import { newestFirst, type PullRecord } from './pulls-store';
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
  // The branches as they are now; their last-seen commits once a branch is gone (as GitHub keeps them).
  const head = (await resolveCommit(repo, pull.head)) ?? pull.headSha;
  const base = (await resolveCommit(repo, pull.base)) ?? pull.baseSha;
  return htmlPage(
    `${pull.title} · ${repo.fullName}#${number}`,
    `<p><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></p>` +
      `<h1>${escapeHtml(pull.title)} <span class="number">#${number}</span></h1>` +
      `<p><span class="state">${pull.draft ? 'draft' : pull.merged ? 'merged' : pull.state}</span> <code>${escapeHtml(pull.head)}</code> → <code>${escapeHtml(pull.base)}</code></p>` +
      (labels ? `<p>${labels}</p>` : '') +
      `<article class="markdown-body">${renderMarkdownHtml(pull.body ?? '')}</article>` +
      reviewSection(pull) +
      (pull.state === 'open' ? pullActions(repo, number, pull.draft) : pull.merged ? `<p class="state">Merged as <code>${escapeHtml((pull.mergeCommitSha ?? '').slice(0, 8))}</code> on ${escapeHtml(pull.mergedAt ?? '')}.</p>` : '') +
      (await renderChanges(repo, base, head)),
  );
}

function reviewSection(pull: PullRecord): string {
  const items = [
    ...pull.reviews.filter((r) => r.body || r.state !== 'COMMENTED').map((r) => ({ at: r.submittedAt, html: `<li><strong>${escapeHtml(r.user)}</strong> ${r.state === 'APPROVED' ? 'approved' : r.state === 'CHANGES_REQUESTED' ? 'requested changes' : 'commented'}${r.body ? `: ${escapeHtml(r.body)}` : ''}</li>` })),
    ...pull.comments.map((c) => ({ at: c.createdAt, html: `<li><strong>${escapeHtml(c.user)}</strong> on <code>${escapeHtml(c.path)}${c.line ? `:${c.line}` : ''}</code>: ${escapeHtml(c.body)}</li>` })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return items.length ? `<h2>Reviews and comments (${items.length})</h2><ul class="reviews">${items.map((i) => i.html).join('')}</ul>` : '';
}

/** Merge and close, as on GitHub; the forge's token goes in the form (its pages have no sign-in). */
function pullActions(repo: Repo, number: number, draft: boolean): string {
  const form = (action: 'merge' | 'close', label: string) =>
    `<form method="post" action="/${repo.fullName}/pull/${number}/${action}" class="action">` +
    `<label>Forge token <input type="password" name="token" required autocomplete="off"></label> <button type="submit">${label}</button></form>`;
  return (
    `<section class="actions"><p>Merging and closing need the forge's token: <code>FORGE_TOKEN</code>, or under <code>npm start</code> the contents of <code>.data/forge-token</code>.</p>` +
    (draft ? '<p>A draft cannot be merged.</p>' : form('merge', 'Merge pull request')) +
    form('close', 'Close pull request') +
    `</section>`
  );
}

/** `<base>...<head>` as GitHub's compare view: the commits and the diff; null when either names no commit. */
export async function renderComparePage(repo: Repo, baseRef: string, headRef: string): Promise<string | null> {
  const [base, head] = await Promise.all([resolveCommit(repo, baseRef), resolveCommit(repo, headRef)]);
  if (!base || !head) return null;
  return htmlPage(
    `${baseRef}...${headRef} · ${repo.fullName}`,
    `<p><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></p>` +
      `<h1>Comparing <code>${escapeHtml(baseRef)}</code>…<code>${escapeHtml(headRef)}</code></h1>` +
      `<p><a href="/${repo.fullName}/compare/${encodeRef(baseRef)}...${encodeRef(headRef)}.diff">Raw diff</a></p>` +
      (await renderChanges(repo, base, head)),
  );
}

/** The raw unified diff of `<base>...<head>`; null when either names no commit. */
export async function rawCompareDiff(repo: Repo, baseRef: string, headRef: string): Promise<string | null> {
  const [base, head] = await Promise.all([resolveCommit(repo, baseRef), resolveCommit(repo, headRef)]);
  return base && head ? diffBetween(repo, base, head) : null;
}

const MAX_BLOB_BYTES = 2 * 1024 * 1024;

/** A file at a ref, as GitHub's blob view: null when the ref or the file does not exist. */
export async function renderBlobPage(repo: Repo, ref: string, filePath: string): Promise<string | null> {
  const commit = await resolveCommit(repo, ref);
  if (!commit) return null;
  const file = await fileAt(repo, commit, filePath, MAX_BLOB_BYTES);
  if (file.kind === 'missing') return null;
  const content =
    file.kind === 'too-large' ? `<p>This file is ${file.bytes} bytes, more than this page shows.</p>`
    : file.binary ? `<p>A binary file of ${file.bytes} bytes.</p>`
    : `<pre class="blob">${escapeHtml(file.text)}</pre>`;
  return htmlPage(
    `${filePath} at ${ref} · ${repo.fullName}`,
    `<p><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a> / <code>${escapeHtml(ref)}</code></p><h1><code>${escapeHtml(filePath)}</code></h1>${content}`,
  );
}

async function renderChanges(repo: Repo, base: string, head: string): Promise<string> {
  const [commits, patch] = await Promise.all([commitsOn(repo, base, head), diffBetween(repo, base, head)]);
  const diff = renderDiffHtml(patch);
  const items = commits.map((c) => `<li><code>${c.sha.slice(0, 8)}</code> ${escapeHtml(c.subject)} <span class="meta">${escapeHtml(c.author)}, ${escapeHtml(c.date)}</span></li>`);
  return (
    `<h2>Commits (${commits.length})</h2>${items.length ? `<ol class="commits">${items.join('')}</ol>` : '<p>No commits.</p>'}` +
    `<h2>Files changed (${diff.files})</h2>${diff.html}`
  );
}

function encodeRef(ref: string): string {
  return ref.split('/').map(encodeURIComponent).join('/');
}

async function renderRepoSection(site: Site, repo: Repo): Promise<string> {
  const pulls = (await site.pulls.read(repo)).sort(newestFirst);
  const items = pulls.map(
    (p) =>
      `<li><a href="/${repo.fullName}/pull/${p.number}">#${p.number} ${escapeHtml(p.title)}</a> ` +
      `<span class="state">${p.merged ? 'merged' : p.state}</span> <code>${escapeHtml(p.head)}</code> → <code>${escapeHtml(p.base)}</code></li>`,
  );
  return (
    `<section><h2><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></h2>` +
    `<p>Clone: <code>${escapeHtml(`${site.url}/${repo.fullName}.git`)}</code> · default branch <code>${escapeHtml(await defaultBranch(repo))}</code></p>` +
    (items.length ? `<ul>${items.join('')}</ul>` : '<p>No pull requests.</p>') +
    `</section>`
  );
}

/** diff2html's stylesheet, served by the forge itself (the pages' policy allows no other origin). */
export const DIFF_STYLESHEET_PATH = '/-/diff2html.min.css';

function htmlPage(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<link rel="stylesheet" href="${DIFF_STYLESHEET_PATH}"><style>` +
    'body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}' +
    '.state,.label{border-radius:1em;padding:0 .6em;background:#ddf4e4}.label{background:#e6e6fa}.number{color:#777}' +
    '.markdown-body{border:1px solid #d0d7de;border-radius:6px;padding:0 1rem;margin:1rem 0}.markdown-body pre{background:#f6f8fa;padding:.8rem;overflow:auto}' +
    '.markdown-body img{max-width:100%}pre.blob{background:#f6f8fa;padding:1rem;overflow:auto}.meta{color:#777}' +
    'details.diff-file{border:1px solid #d0d7de;border-radius:6px;margin:.5rem 0}details.diff-file>summary{padding:.4rem .8rem;cursor:pointer;background:#f6f8fa}' +
    '.diff-count.added{color:#1a7f37}.diff-count.deleted{color:#cf222e}.d2h-file-header{display:none}' +
    `</style></head><body>${body}</body></html>`
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
