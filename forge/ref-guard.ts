// Refs of the forge's repositories change only through the forge itself: its authenticated smart HTTP
// (git receive-pack, run by http-backend) and its own seeding. Each bare repository gets a
// reference-transaction hook that refuses any ref update whose environment lacks the forge's write key,
// so `git update-ref`, `git branch` or a `git push /path/to/repo.git` by anything else on the machine
// fails. (Sandboxed repository code cannot see the repositories at all; this covers everything else, e.g.
// a worker started with REPO_SANDBOX=off.) The hook holds only the key's hash; the key is in a file of the
// forge's data folder, readable by the forge's user alone.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

const KEY_VARIABLE = 'CR_FORGE_REF_KEY';
export const REFUSAL = "refs of this repository change only through the forge's authenticated HTTP";

/** The forge's write key, made once per data folder and kept there. */
export async function forgeWriteKey(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'ref-write-key');
  const existing = await fs.readFile(file, 'utf8').catch(() => null);
  if (existing && /^[0-9a-f]{64}$/.test(existing.trim())) return existing.trim();
  const key = randomBytes(32).toString('hex');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, key, { mode: 0o600 });
  return key;
}

/** The environment entry that lets the forge's own git processes update refs. */
export function writerEnv(key: string): Record<string, string> {
  return { [KEY_VARIABLE]: key };
}

function hookScript(key: string): string {
  const hash = createHash('sha256').update(key).digest('hex');
  return `#!/bin/sh
# Written by the forge (forge/ref-guard.ts): ${REFUSAL}.
[ "$1" = prepared ] || exit 0
[ "$(printf %s "$${KEY_VARIABLE}" | sha256sum | cut -d' ' -f1)" = "${hash}" ] && exit 0
echo "${REFUSAL}" >&2
exit 1
`;
}

/** Installs (or renews) the hook in one bare repository. */
export async function guardRefs(gitDir: string, key: string): Promise<void> {
  const hooks = path.join(gitDir, 'hooks');
  await fs.mkdir(hooks, { recursive: true });
  const file = path.join(hooks, 'reference-transaction');
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, hookScript(key), { mode: 0o755 });
  await fs.rename(temporary, file);
}
