// Which Node.js a repository asks for: the catalog's `node` if set (operators decide), else the checkout's
// .nvmrc or .node-version (what nvm, fnm and volta read), else package.json's engines.node. Pure reading,
// no network: the answer is a semver range and where it came from, or why the file could not be read.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { validRange } from 'semver';

export interface WantedNode {
  range: string;
  /** Where the range was found, for the check's report: "catalog", ".nvmrc", "package.json engines.node". */
  source: string;
}

export type WantedNodeAnswer = { wanted: WantedNode | null } | { unreadable: string };

/** nvm's LTS names; `lts/*` and `node` follow whatever is newest, which a reproducible check cannot. */
const LTS_CODENAMES: Record<string, number> = { argon: 4, boron: 6, carbon: 8, dubnium: 10, erbium: 12, fermium: 14, gallium: 16, hydrogen: 18, iron: 20, jod: 22, krypton: 24 };

export async function wantedNode(checkout: string, catalogNode: string | undefined): Promise<WantedNodeAnswer> {
  if (catalogNode) return { wanted: { range: catalogNode.replace(/^v/, ''), source: 'catalog' } };
  for (const file of ['.nvmrc', '.node-version']) {
    const text = await readIfThere(path.join(checkout, file));
    if (text === null) continue;
    const line = text.split('\n').map((l) => l.replace(/#.*/, '').trim()).find(Boolean) ?? '';
    const range = rangeOfVersionFile(line);
    if (range === null) return { unreadable: `${file} says "${line.slice(0, 40)}", which names no version (use e.g. 22 or 22.12.0, or set node in the catalog)` };
    return { wanted: { range, source: file } };
  }
  const manifest = await readIfThere(path.join(checkout, 'package.json'));
  if (manifest !== null) {
    let engines: unknown;
    try {
      engines = (JSON.parse(manifest) as { engines?: { node?: unknown } }).engines?.node;
    } catch {
      return { wanted: null }; // a broken package.json fails the install, which says so better
    }
    if (typeof engines === 'string' && engines.trim()) {
      if (validRange(engines) === null) return { unreadable: `package.json engines.node is "${engines.slice(0, 40)}", not a semver range` };
      return { wanted: { range: engines.trim(), source: 'package.json engines.node' } };
    }
  }
  return { wanted: null };
}

function rangeOfVersionFile(line: string): string | null {
  const lts = /^lts\/([a-z]+)$/i.exec(line);
  if (lts) {
    const major = LTS_CODENAMES[lts[1]!.toLowerCase()];
    return major ? `${major}.x` : null;
  }
  const version = line.replace(/^v/, '');
  // "22" and "22.12" mean the newest of that line, as nvm reads them.
  if (/^\d+$/.test(version)) return `${version}.x`;
  if (/^\d+\.\d+$/.test(version)) return `${version}.x`;
  return validRange(version) === null ? null : version;
}

async function readIfThere(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
}
