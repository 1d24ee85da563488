// Turns changed paths into what people and dependent repositories' prompts read: per-file statistics,
// a shortened unified diff, the few hunks that tell the most, and changes to tests a reviewer must see.
import { structuredPatch, type StructuredPatchHunk } from 'diff';
import type { DiffStat, FileChange, RepoChange } from '../../domain/contracts';
import { isTestFile } from '../../domain/summary';
import type { PathChange } from './repository';

const MAX_PREVIEW_CHARS = 12_000;
const MAX_LINES_PER_FILE = 80;
const KEY_HUNKS = 3;
const MAX_KEY_HUNK_LINES = 30;
/** Changes here say little about what the change does. */
const UNTELLING = /(^|\/)(package-lock\.json|yarn\.lock|pnpm-lock\.yaml|npm-shrinkwrap\.json)$|(^|\/)(dist|build|vendor)\//;
/** Ways a test can stop testing: skipped, focused (so the others do not run), or marked to do. */
const SKIPPING = /\b(?:describe|it|test|context)\.(?:skip|only|todo)\s*\(|\b(?:xit|xdescribe|xtest|fit|fdescribe)\s*\(|\{\s*skip\s*:\s*true\b|\btodo\s*:\s*true\b/;
const ASSERTION = /\b(?:assert(?:\.\w+)?|expect)\s*\(/;

/** A diff, as the run keeps it. */
export type DiffReport = RepoChange;

interface FilePatch {
  change: PathChange;
  hunks: StructuredPatchHunk[];
  header: string[];
}

export function describeChanges(changes: readonly PathChange[]): DiffReport {
  const files: FileChange[] = [];
  const sections: string[] = [];
  const patches: FilePatch[] = [];
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
    const header = [`--- ${patch.oldFileName}`, `+++ ${patch.newFileName}`];
    const lines = [...header];
    for (const hunk of patch.hunks) lines.push(hunkHeader(hunk), ...hunk.lines);
    const count = (sign: string) => patch.hunks.reduce((n, h) => n + h.lines.filter((l) => l.startsWith(sign)).length, 0);
    files.push({ path: change.path, change: change.change, insertions: count('+'), deletions: count('-') });
    patches.push({ change, hunks: patch.hunks, header });
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
  return { files, diffStat, diffPreview, keyHunks: keyHunks(patches), testRisks: testRisks(files, patches) };
}

/** The hunks with the most changed lines, from the files that say what the change does. */
function keyHunks(patches: readonly FilePatch[]): string[] {
  const candidates = patches
    .filter((p) => !UNTELLING.test(p.change.path) && !isTestFile(p.change.path))
    .flatMap((p) => p.hunks.map((hunk) => ({ p, hunk, weight: hunk.lines.filter((l) => l.startsWith('+') || l.startsWith('-')).length })));
  return candidates
    .sort((a, b) => b.weight - a.weight)
    .slice(0, KEY_HUNKS)
    .map(({ p, hunk }) => {
      const body = hunk.lines.slice(0, MAX_KEY_HUNK_LINES);
      if (hunk.lines.length > body.length) body.push(`[... ${hunk.lines.length - body.length} more lines]`);
      return [...p.header, hunkHeader(hunk), ...body].join('\n');
    });
}

/** Deleted test files, tests that were skipped or focused, and assertions that were removed. */
function testRisks(files: readonly FileChange[], patches: readonly FilePatch[]): string[] {
  const risks: string[] = [];
  for (const file of files.filter((f) => isTestFile(f.path))) {
    if (file.change === 'deleted') {
      risks.push(`test file ${file.path} was deleted`);
      continue;
    }
    const patch = patches.find((p) => p.change.path === file.path);
    const added = patch?.hunks.flatMap((h) => h.lines.filter((l) => l.startsWith('+')).map((l) => l.slice(1))) ?? [];
    const removed = patch?.hunks.flatMap((h) => h.lines.filter((l) => l.startsWith('-')).map((l) => l.slice(1))) ?? [];
    const skipping = added.filter((l) => SKIPPING.test(l));
    if (skipping.length) risks.push(`${file.path} skips or focuses tests: ${skipping.map((l) => l.trim()).slice(0, 2).join(' | ')}`);
    const lostAssertions = removed.filter((l) => ASSERTION.test(l)).length - added.filter((l) => ASSERTION.test(l)).length;
    if (lostAssertions > 0) risks.push(`${file.path} has ${lostAssertions} fewer assertion${lostAssertions > 1 ? 's' : ''} than before`);
  }
  return risks;
}

function hunkHeader(hunk: StructuredPatchHunk): string {
  return `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`;
}

function decodeText(content: Uint8Array | null): string | null {
  if (content === null) return '';
  if (content.includes(0)) return null;
  return Buffer.from(content).toString('utf8');
}
