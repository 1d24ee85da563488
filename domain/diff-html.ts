// A unified diff as HTML for people (the web chat's review panel, the forge's pull request and compare
// pages): rendered by diff2html, one collapsible section per file. Pure string → string, so every place that
// shows a diff shows the same thing. diff2html escapes the diff's content; the file names in the summaries
// are escaped here.
import { html as diffToHtml, parse as parseDiff } from 'diff2html';

/** Beyond this the rest of the diff is cut off, with a note; diff2html's time grows with the diff. */
export const MAX_RENDERED_DIFF_BYTES = 1024 * 1024;
/** Files with more changed lines than this start collapsed. */
const COLLAPSE_OVER_LINES = 400;

export interface DiffHtml {
  html: string;
  files: number;
  truncated: boolean;
}

/** `openFilesUpTo`: with more files than this, every file starts collapsed (its summary line still counts it). */
export function renderDiffHtml(patch: string, options: { openFilesUpTo?: number } = {}): DiffHtml {
  const truncated = Buffer.byteLength(patch) > MAX_RENDERED_DIFF_BYTES;
  const text = truncated ? cutAtFileBoundary(patch, MAX_RENDERED_DIFF_BYTES) : patch;
  const files = parseDiff(text);
  if (files.length === 0) return { html: '<p class="diff-empty">No changes.</p>', files: 0, truncated };
  const sections = files.map((file) => {
    const name = nameOf(file);
    const open = file.addedLines + file.deletedLines <= COLLAPSE_OVER_LINES && files.length <= (options.openFilesUpTo ?? Infinity) ? ' open' : '';
    const body = diffToHtml([file], { drawFileList: false, outputFormat: 'line-by-line', matching: 'lines', colorScheme: 'light' } as Parameters<typeof diffToHtml>[1]);
    return (
      `<details class="diff-file"${open}><summary><code>${escapeHtml(name)}</code> ` +
      `<span class="diff-count added">+${file.addedLines}</span> <span class="diff-count deleted">−${file.deletedLines}</span></summary>${body}</details>`
    );
  });
  const note = truncated ? `<p class="diff-truncated">The diff is longer than ${MAX_RENDERED_DIFF_BYTES / 1024} KiB; the files after this point are not shown.</p>` : '';
  return { html: sections.join('') + note, files: files.length, truncated };
}

function nameOf(file: { oldName: string; newName: string }): string {
  if (file.oldName === '/dev/null' || file.oldName === file.newName) return `${file.newName}${file.oldName === '/dev/null' ? ' (added)' : ''}`;
  if (file.newName === '/dev/null') return `${file.oldName} (deleted)`;
  return `${file.oldName} → ${file.newName}`;
}

/** The diff up to the last file that starts before `limit` bytes, so no file is shown half. */
function cutAtFileBoundary(patch: string, limit: number): string {
  const head = Buffer.from(patch).subarray(0, limit).toString('utf8');
  const lastFile = head.lastIndexOf('\ndiff --git ');
  return lastFile > 0 ? head.slice(0, lastFile + 1) : head;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
