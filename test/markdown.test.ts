// PR bodies and summaries render as meant under CommonMark (markdown-it): a hunk holding a code fence does
// not close the diff's block, HTML-like text stays visible, every repository section and link survives.
import MarkdownIt from 'markdown-it';
import { parseHTML } from 'linkedom';
import { noSpend } from '../domain/budget';
import type { CombinedSummary, SummaryRepo } from '../domain/contracts';
import { codeSpan, fencedBlock, markdownProse } from '../domain/markdown';
import { earlierNotesOf, renderSummaryMarkdown, shortNote } from '../domain/summary';

// html: true, as GitHub allows <details>; what must not become a tag is escaped by the renderer.
const md = new MarkdownIt({ html: true });
const render = (markdown: string) => parseHTML(`<!doctype html><html><body>${md.render(markdown)}</body></html>`).document;

const FENCED_README_HUNK = ['@@ -1,3 +1,7 @@', ' # ui-kit', '+', '+```js', "+import { saleBadge } from '@acme/ui-kit';", '+```', '+Use `saleBadge(percent)`.'].join('\n');

function repo(id: string, role: SummaryRepo['role'], overrides: Partial<SummaryRepo> = {}): SummaryRepo {
  return {
    id,
    role,
    branch: `change-request/cr-1`,
    files: [{ path: 'README.md', change: 'modified', insertions: 4, deletions: 0 }, { path: 'src/`odd`.js', change: 'added', insertions: 1, deletions: 0 }],
    diffStat: { files: 2, insertions: 5, deletions: 0 },
    diffPreview: '',
    keyHunks: [],
    checksPassed: true,
    checks: [{ name: 'test', command: 'npm test', kind: 'check', status: 'passed', exitCode: 0, durationMs: 1200, outputTail: '' }],
    checkedAgainst: [],
    published: null,
    agentNotes: '',
    preview: null,
    spend: noSpend(),
    pr: null,
    ...overrides,
  };
}

function summary(): CombinedSummary {
  return {
    round: 1,
    requirement: 'Show a <Sale> badge with the *discount*',
    narrative: 'The badge uses `<Badge tone="sale">` from ui-kit and links out with <Link external>. See [the PRD](https://docs.example.com/prd?id=1).',
    narrativeBy: 'model',
    spent: noSpend(),
    repos: [
      repo('ui-kit', 'package', { keyHunks: [FENCED_README_HUNK], agentNotes: 'Added saleBadge. Point it back at <main> before merging.' }),
      repo('web-app', 'app', {
        preview: { repo: 'web-app', round: 1, sha: 'abc', kind: 'static', status: 'failed', url: null, screenshot: null, output: 'vite build\n```\nerror: <div> not closed', deployedAt: 0, expiresAt: 0, upstream: { packages: [], previews: [], unresolved: [] } },
      }),
    ],
    mergeOrder: ['ui-kit', 'web-app'],
    releasePlan: [],
    steps: [],
    risks: ['web-app: the preview could not be built (<div> not closed)'],
    sincePrevious: [],
    brief: { version: 1, goal: 'g', criteria: [{ text: 'Shows <b>-20%</b>', source: 'S1' }], sources: [{ id: 'S1', title: 'PRD [draft]', url: 'https://docs.example.com/prd?id=1' }] },
  };
}

test('a PR body with a fenced hunk holding ``` and HTML-like text renders with every section intact', () => {
  const body = renderSummaryMarkdown(summary(), {
    siblings: [{ repo: 'ui-kit', number: 4, url: 'http://127.0.0.1:1/demo/ui-kit/pull/4' }, { repo: 'web-app', number: 7, url: 'http://127.0.0.1:1/demo/web-app/pull/7' }],
    forRepo: 'web-app',
  });
  const doc = render(body);
  const headings = [...doc.querySelectorAll('h3')].map((h) => h.textContent);
  expect(headings).toEqual(expect.arrayContaining(['Pull requests in this change', 'Merge order', 'ui-kit (package) — checks passing', 'web-app (app) — checks passing']));
  // The sections come in order and none is swallowed by a code block.
  expect(headings.indexOf('ui-kit (package) — checks passing')).toBeLessThan(headings.indexOf('web-app (app) — checks passing'));
  expect([...doc.querySelectorAll('pre code')].every((c) => !c.textContent!.includes('### '))).toBe(true);

  // The hunk is one diff block, its own ``` lines inside it.
  const diff = doc.querySelector('code.language-diff')!;
  expect(diff.textContent).toContain("+```js\n+import { saleBadge } from '@acme/ui-kit';\n+```");
  // A failing preview's output, with its own fence, is one block too.
  expect([...doc.querySelectorAll('pre code')].some((c) => c.textContent!.includes('```\nerror: <div> not closed'))).toBe(true);

  // HTML-like text is visible as text, not swallowed as a tag, in the title, narrative, notes, risks and criteria.
  const text = doc.body.textContent!;
  for (const visible of ['Show a <Sale> badge with the *discount*', 'links out with <Link external>', 'Point it back at <main> before merging', '(<div> not closed)', 'Shows <b>-20%</b>']) expect(text).toContain(visible);
  expect(doc.querySelector('link, main, sale, b')).toBeNull();
  // A code span in the narrative is kept as code.
  expect([...doc.querySelectorAll('p code')].map((c) => c.textContent)).toContain('<Badge tone="sale">');
  // File names with backticks are one code span each.
  expect([...doc.querySelectorAll('li code')].map((c) => c.textContent)).toContain('src/`odd`.js');

  // Every link is clickable, with the address it was given.
  const hrefs = [...doc.querySelectorAll('a')].map((a) => [a.textContent, a.getAttribute('href')]);
  expect(hrefs).toEqual(expect.arrayContaining([
    ['ui-kit #4', 'http://127.0.0.1:1/demo/ui-kit/pull/4'],
    ['the PRD', 'https://docs.example.com/prd?id=1'],
    ['S1', 'https://docs.example.com/prd?id=1'],
    ['S1 PRD [draft]', 'https://docs.example.com/prd?id=1'],
  ]));
  expect(doc.querySelector('details summary')!.textContent).toBe('Key changes');
});

test('fences and code spans are longer than any backtick run they hold', () => {
  expect(fencedBlock('a\n````\nb', 'diff')).toBe('`````diff\na\n````\nb\n`````');
  expect(fencedBlock('plain')).toBe('```\nplain\n```');
  expect(codeSpan('a`b')).toBe('``a`b``');
  expect(codeSpan('`x`')).toBe('`` `x` ``');
  expect(render(codeSpan('`x`')).querySelector('code')!.textContent).toBe('`x`');
});

test("an earlier round's notes are kept short: the first sentence and every caution", () => {
  const notes = 'Pointed the dependency at the branch build. The tests pass with it. Point it back at main before merging, or CI installs the branch. Nothing else changed.';
  expect(shortNote(notes)).toBe('Pointed the dependency at the branch build. Point it back at main before merging, or CI installs the branch.');
  expect(earlierNotesOf({ agentNotes: 'r2', notes: [{ round: 1, text: notes }, { round: 2, text: 'r2' }] })).toEqual([{ round: 1, text: shortNote(notes) }]);
});

test('prose keeps its Markdown, its code and fenced blocks, and closes a fence it left open', () => {
  expect(markdownProse('**bold** <br> `<kbd>` done')).toBe('**bold** &lt;br&gt; `<kbd>` done');
  expect(markdownProse('```html\n<div>\n```\n<p>')).toBe('```html\n<div>\n```\n&lt;p&gt;');
  const unclosed = render(`${markdownProse('Before:\n```\nleft open')}\n\n### After`);
  expect(unclosed.querySelector('h3')!.textContent).toBe('After');
});
