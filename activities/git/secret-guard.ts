// Nothing the service holds secret is committed: before a round's commit, every changed file is read and
// one that carries a known secret in any form (as is, reversed, base64, hex, URL-encoded) is put back as
// it was, kept out of the commit, and reported in the round's notes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import type { Redactor } from '../agent/redact';

const MAX_SCANNED_BYTES = 8 * 1024 * 1024;

/** Puts back the changed files that hold a secret; returns their paths. */
export async function keepSecretsOut(dir: string, redact: Redactor): Promise<string[]> {
  const contains = redact.containsKnownSecret;
  if (!contains) return [];
  const leaking: string[] = [];
  for (const [file, head, workdir] of await git.statusMatrix({ fs, dir })) {
    if (workdir === 0 || (head === 1 && workdir === 1)) continue; // deleted, or unchanged
    const full = path.join(dir, file);
    const stat = await fs.lstat(full);
    if (!stat.isFile() || stat.size > MAX_SCANNED_BYTES) continue;
    // Binary content is scanned as latin1 so that every byte sequence can match.
    if (!contains((await fs.readFile(full)).toString('latin1'))) continue;
    leaking.push(file);
    if (head === 1) await git.checkout({ fs, dir, filepaths: [file], force: true });
    else await fs.rm(full, { force: true });
  }
  return leaking;
}
