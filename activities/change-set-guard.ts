// What only the change set may know stays out of a repository. A dependent is installed against the run's
// prereleases in its workspaces, but what it commits (and what its pull request ships) must never depend on a
// prerelease of this run, the run's dist-tag or its work branch: those vanish with the run, and the range
// the PR needs is planned by code when the PRs open. This reverts such a dependency spec in any package.json
// the agent changed to what the branch had before the round, and says so.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { distTagFor, isRunPrerelease } from '../domain/change-set';

const SECTIONS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies', 'overrides', 'resolutions'] as const;

export interface RunMarks {
  runId: string;
  branch: string;
}

/** A dependency spec that points at something this run made. */
export function pinsTheRun(spec: unknown, marks: RunMarks): boolean {
  if (typeof spec !== 'string') return false;
  return isRunPrerelease(spec) || spec.includes(distTagFor(marks.runId)) || spec.includes(marks.branch) || spec.includes(marks.runId);
}

/**
 * Reverts run pins in the package.json files changed in the work tree against HEAD. Returns one line per
 * reverted spec (empty when there was nothing to revert).
 */
export async function revertRunPins(dir: string, marks: RunMarks): Promise<string[]> {
  const changed = (await git.statusMatrix({ fs, dir, filter: (file) => path.basename(file) === 'package.json' }))
    .filter(([, head, workdir]) => workdir === 2 || (head === 0 && workdir !== 0))
    .map(([file]) => file);
  const reverted: string[] = [];
  for (const file of changed) {
    const absolute = path.join(dir, file);
    const text = await fs.readFile(absolute, 'utf8');
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(text) as Record<string, unknown>;
    } catch {
      continue; // not ours to repair; the checks report a broken package.json
    }
    const before = await manifestAtHead(dir, file);
    let touched = false;
    for (const section of SECTIONS) {
      const specs = manifest[section];
      if (!specs || typeof specs !== 'object') continue;
      for (const [name, spec] of Object.entries(specs as Record<string, unknown>)) {
        if (!pinsTheRun(spec, marks)) continue;
        const previous = (before?.[section] as Record<string, unknown> | undefined)?.[name];
        if (previous === undefined || pinsTheRun(previous, marks)) delete (specs as Record<string, unknown>)[name];
        else (specs as Record<string, unknown>)[name] = previous;
        reverted.push(`${file}: ${section}.${name} "${String(spec)}" → ${previous === undefined ? 'removed' : `"${String(previous)}"`}`);
        touched = true;
      }
    }
    if (touched) await fs.writeFile(absolute, JSON.stringify(manifest, null, indentationOf(text)) + (text.endsWith('\n') ? '\n' : ''));
  }
  return reverted;
}

async function manifestAtHead(dir: string, file: string): Promise<Record<string, unknown> | null> {
  try {
    const oid = await git.resolveRef({ fs, dir, ref: 'HEAD' });
    const { blob } = await git.readBlob({ fs, dir, oid, filepath: file });
    return JSON.parse(Buffer.from(blob).toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function indentationOf(text: string): string | number {
  const match = /^\{\r?\n([ \t]+)"/.exec(text);
  return match ? match[1]! : 2;
}
