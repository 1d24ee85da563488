// Turns changed paths into what people and dependent repositories' prompts read: per-file statistics
// and a shortened unified diff.
import { structuredPatch } from 'diff';
import type { DiffStat, FileChange } from '../../shared/contracts';
import type { PathChange } from './repository';

const MAX_PREVIEW_CHARS = 12_000;
const MAX_LINES_PER_FILE = 80;

export interface DiffReport {
  files: FileChange[];
  diffStat: DiffStat;
  diffPreview: string;
}

export function describeChanges(changes: readonly PathChange[]): DiffReport {
  const files: FileChange[] = [];
  const sections: string[] = [];
  for (const change of changes) {
    const before = decodeText(change.before);
    const after = decodeText(change.after);
    if (before === null || after === null) {
      files.push({ path: change.path, change: change.change, insertions: 0, deletions: 0 });
      sections.push(`--- ${change.path} (binary file ${change.change})`);
      continue;
    }
    const patch = structuredPatch(
      change.change === 'added' ? '/dev/null' : `a/${change.path}`,
      change.change === 'deleted' ? '/dev/null' : `b/${change.path}`,
      before,
      after,
      undefined,
      undefined,
      { context: 2 },
    );
    let insertions = 0;
    let deletions = 0;
    const lines = [`--- ${patch.oldFileName}`, `+++ ${patch.newFileName}`];
    for (const hunk of patch.hunks) {
      lines.push(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`);
      for (const line of hunk.lines) {
        if (line.startsWith('+')) insertions++;
        else if (line.startsWith('-')) deletions++;
        lines.push(line);
      }
    }
    files.push({ path: change.path, change: change.change, insertions, deletions });
    const shown = lines.slice(0, MAX_LINES_PER_FILE);
    if (lines.length > shown.length) shown.push(`[... ${lines.length - shown.length} more diff lines in ${change.path}]`);
    sections.push(shown.join('\n'));
  }
  const diffStat: DiffStat = {
    files: files.length,
    insertions: files.reduce((sum, f) => sum + f.insertions, 0),
    deletions: files.reduce((sum, f) => sum + f.deletions, 0),
  };
  let diffPreview = sections.join('\n');
  if (diffPreview.length > MAX_PREVIEW_CHARS) {
    diffPreview = `${diffPreview.slice(0, MAX_PREVIEW_CHARS)}\n[... diff shortened; ${diffPreview.length - MAX_PREVIEW_CHARS} more characters]`;
  }
  return { files, diffStat, diffPreview };
}

function decodeText(content: Uint8Array | null): string | null {
  if (content === null) return '';
  if (content.includes(0)) return null;
  return Buffer.from(content).toString('utf8');
}
