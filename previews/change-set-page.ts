// The change-set page at <baseUrl>/<runId>/: every preview of a run on one page, each with what it runs
// (repo@sha) and what it runs against (the run's packages it installed, the upstream previews it points at),
// so a reviewer sees the change as one thing. Drawn from the metadata the deploys leave in the store
// (previews/store.ts); all text is escaped, and only http(s) and same-origin addresses become links.
import type { UpstreamVersion } from '../domain/contracts';
import type { PreviewMeta } from './store';
import type { ServiceView } from './services';

const OUTPUT_TAIL_CHARS = 1_500;

export function renderChangeSetPage(runId: string, metas: PreviewMeta[], serviceOf: (repo: string) => ServiceView | null): string {
  const items = metas.map((meta) => previewItem(meta, meta.kind === 'service' ? serviceOf(meta.repo) : null)).join('\n');
  const ready = metas.filter((meta) => meta.status === 'ready').length;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Change set ${escapeHtml(runId)}</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d2530; background: #f6f7f9; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  .lead { color: #556; margin: 0 0 1.5rem; }
  ul.previews { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 1rem; }
  li.preview { background: #fff; border: 1px solid #d8dde3; border-radius: 8px; padding: 1rem; }
  li.preview h2 { font-size: 1.1rem; margin: 0 0 .25rem; font-family: ui-monospace, monospace; }
  .status { display: inline-block; padding: 0 .5rem; border-radius: 4px; font-size: .8rem; font-weight: 600; }
  .status-ready { background: #dcf5e3; color: #16622f; }
  .status-failed, .status-crashed, .status-removed { background: #fde2e1; color: #8c1c13; }
  .status-starting { background: #fff3cd; color: #7a5b00; }
  .facts { color: #556; font-size: .85rem; margin: .25rem 0 .75rem; }
  img.thumbnail { width: 100%; border: 1px solid #e3e6ea; border-radius: 4px; display: block; }
  h3 { font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; color: #667; margin: .75rem 0 .25rem; }
  ul.upstream { margin: 0; padding-left: 1.1rem; font-size: .9rem; }
  code { font-family: ui-monospace, monospace; font-size: .9em; }
  pre { white-space: pre-wrap; font-size: .75rem; background: #f3f4f6; padding: .5rem; border-radius: 4px; max-height: 12rem; overflow: auto; }
</style>
</head>
<body>
<h1>Change set <code>${escapeHtml(runId)}</code></h1>
<p class="lead">${metas.length} ${metas.length === 1 ? 'preview' : 'previews'}, ${ready} ready: each repository at the commit of its latest round, running against the others' changes.</p>
<ul class="previews">
${items}
</ul>
</body>
</html>
`;
}

function previewItem(meta: PreviewMeta, service: ServiceView | null): string {
  const title = `${meta.repo}@${shortSha(meta.sha)}`;
  const href = safeHref(meta.originUrl ?? meta.url);
  const heading = href ? `<a href="${escapeHtml(href)}">${escapeHtml(title)}</a>` : escapeHtml(title);
  // For a service, what runs now says more than what the deploy saw (it may have crashed since).
  const status = service && meta.status === 'ready' ? service.status : meta.status === 'ready' && meta.problems?.length ? 'degraded' : meta.status;
  const facts = [meta.kind, `round ${meta.round}`, `branch ${meta.branch}`].map(escapeHtml).join(' · ');
  const shot = safeHref(meta.screenshot?.url ?? null);
  const thumbnail = shot ? `<a href="${escapeHtml(href ?? shot)}"><img class="thumbnail" src="${escapeHtml(shot)}" alt="${escapeHtml(`Screenshot of ${title}`)}" loading="lazy"></a>` : '';
  const problem =
    status === 'ready'
      ? ''
      : status === 'degraded'
        ? `<ul class="problems">${(meta.problems ?? []).map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>`
        : `<pre>${escapeHtml((service?.reason ? `${service.reason}\n` : '') + meta.output.slice(-OUTPUT_TAIL_CHARS))}</pre>`;
  return `<li class="preview" data-repo="${escapeHtml(meta.repo)}">
  <h2>${heading}</h2>
  <span class="status status-${escapeHtml(status)}">${escapeHtml(status)}</span>
  <p class="facts">${facts}</p>
  ${thumbnail}
  ${upstreamSection(meta)}
  ${problem}
</li>`;
}

function upstreamSection(meta: PreviewMeta): string {
  const { packages, previews, unresolved } = meta.upstream ?? { packages: [], previews: [], unresolved: [] };
  const lines = [
    ...packages.map((pkg) => `<li>package <code>${escapeHtml(packageLabel(pkg))}</code>${pkg.source === 'run' ? ' (this run)' : ' released'}${pkg.note ? ` — ${escapeHtml(pkg.note)}` : ''}</li>`),
    ...previews.map((upstream) => {
      const href = safeHref(upstream.url);
      const target = `${upstream.repo}@${shortSha(upstream.sha)}`;
      const link = href ? `<a href="${escapeHtml(href)}">${escapeHtml(target)}</a>` : escapeHtml(target);
      return `<li><code>${escapeHtml(upstream.variable)}</code> → preview ${link}</li>`;
    }),
    ...unresolved.map((variable) => `<li>left unset: <code>${escapeHtml(variable)}</code> (no such preview in this run)</li>`),
  ];
  if (lines.length === 0) return '';
  return `<h3>Runs against</h3>\n  <ul class="upstream">${lines.join('')}</ul>`;
}

function packageLabel(pkg: UpstreamVersion): string {
  const version = pkg.version ?? pkg.installed ?? null;
  return version ? `${pkg.name}@${version}` : pkg.name;
}

function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** Only web addresses and same-origin paths are linked: a record's URL came from a deploy hook's output. */
function safeHref(url: string | null): string | null {
  if (url === null) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.toString() : null;
  } catch {
    return null;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
