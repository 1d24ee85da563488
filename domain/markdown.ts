// Writing Markdown that renders as meant (CommonMark, GitHub, markdown-it) whatever text goes into it:
// agents' notes, check output, diff hunks and file names are not ours, and any of them may hold backticks or
// something that looks like an HTML tag. Pure, so the workflow can use it.

/** The longest run of backticks in `text` (0 when there is none). */
function longestBacktickRun(text: string): number {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return longest;
}

/**
 * A fenced code block that no line of `content` can close: its fence is longer than any backtick run in
 * it (a hunk that itself holds ``` would otherwise end the block and swallow what follows).
 */
export function fencedBlock(content: string, language = ''): string {
  const fence = '`'.repeat(Math.max(3, longestBacktickRun(content) + 1));
  const body = content.endsWith('\n') ? content.slice(0, -1) : content;
  return `${fence}${language}\n${body}\n${fence}`;
}

/** An inline code span holding `text` exactly, whatever backticks it contains. */
export function codeSpan(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  const ticks = '`'.repeat(longestBacktickRun(flat) + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${flat}${pad}${ticks}`;
}

const HTML_SPECIAL: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

function escapeHtmlLike(text: string): string {
  // `&` only where it would start an entity, so "Q&A" stays readable in the Markdown source.
  return text.replace(/<|>|&(?=#?[A-Za-z0-9]+;)/g, (c) => HTML_SPECIAL[c]!);
}

/**
 * Prose from someone else (a narrative, an agent's notes, a risk) kept as Markdown, but with anything
 * HTML-like shown as text: `<Link external>` stays visible instead of vanishing as a tag. Code spans and
 * fenced blocks are left as written, since entities would show literally inside them.
 */
export function markdownProse(text: string): string {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const opener = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      out.push(line);
      if (opener && opener[1]![0] === fence[0] && opener[1]!.length >= fence.length && line.trim() === opener[1]) fence = null;
      continue;
    }
    if (opener && !(opener[1]![0] === '`' && line.slice(opener[0].length).includes('`'))) {
      fence = opener[1]!;
      out.push(line);
      continue;
    }
    out.push(escapeOutsideCodeSpans(line));
  }
  // An unclosed fence in someone's prose would swallow every section after it: close it here.
  if (fence !== null) out.push(fence);
  return out.join('\n');
}

function escapeOutsideCodeSpans(line: string): string {
  let result = '';
  let at = 0;
  while (at < line.length) {
    const open = line.indexOf('`', at);
    if (open === -1) break;
    let runEnd = open;
    while (line[runEnd] === '`') runEnd++;
    const run = line.slice(open, runEnd);
    const close = findClosingRun(line, runEnd, run.length);
    if (close === -1) {
      // A lone backtick run is text; go on after it.
      result += escapeHtmlLike(line.slice(at, runEnd));
      at = runEnd;
      continue;
    }
    result += escapeHtmlLike(line.slice(at, open)) + line.slice(open, close + run.length);
    at = close + run.length;
  }
  return result + escapeHtmlLike(line.slice(at));
}

/** Where a backtick run of exactly `length` starts at or after `from`, or -1. */
function findClosingRun(line: string, from: number, length: number): number {
  for (let i = from; i < line.length; ) {
    if (line[i] !== '`') {
      i++;
      continue;
    }
    let end = i;
    while (line[end] === '`') end++;
    if (end - i === length) return i;
    i = end;
  }
  return -1;
}

/** Text inside a link's brackets: no brackets of its own, nothing HTML-like, on one line. */
export function linkText(text: string): string {
  return escapeHtmlLike(text.replace(/\s+/g, ' ').trim()).replace(/([[\]\\`*_])/g, '\\$1');
}

/** One line of plain text (a title, a requirement) where Markdown and HTML characters show as typed. */
export function plainText(text: string): string {
  return escapeHtmlLike(text).replace(/([\\`*_[\]#|])/g, '\\$1');
}

/** `[text](url)`, the destination in `<…>` only when it needs it (spaces, parentheses, angle brackets). */
export function link(text: string, url: string): string {
  const destination = /[\s()<>]/.test(url) ? `<${url.replace(/[<>\s]/g, encodeURIComponent)}>` : url;
  return `[${linkText(text)}](${destination})`;
}
