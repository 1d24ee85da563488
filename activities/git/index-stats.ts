// A stat-only comparison of a work tree with its git index, the way git decides a file is unchanged without
// reading it (size, modification time, inode), plus a count of files the index does not know. Used to
// trust a cached checkout quickly; isomorphic-git's statusMatrix answers the same question but walks trees
// and hashes more than this needs.
import { promises as fs } from 'node:fs';
import path from 'node:path';

interface IndexEntry {
  path: string;
  mtimeSeconds: number;
  ino: number;
  size: number;
}

/** The entries of a version 2 or 3 index (what isomorphic-git writes); null when it is not one. */
export async function readIndexEntries(gitDir: string): Promise<IndexEntry[] | null> {
  const buffer = await fs.readFile(path.join(gitDir, 'index')).catch(() => null);
  if (!buffer || buffer.length < 12 || buffer.toString('latin1', 0, 4) !== 'DIRC') return null;
  const version = buffer.readUInt32BE(4);
  if (version !== 2 && version !== 3) return null;
  const count = buffer.readUInt32BE(8);
  const entries: IndexEntry[] = [];
  let offset = 12;
  for (let i = 0; i < count; i++) {
    if (offset + 62 > buffer.length) return null;
    const flags = buffer.readUInt16BE(offset + 60);
    const extended = version === 3 && (flags & 0x4000) !== 0;
    const nameStart = offset + 62 + (extended ? 2 : 0);
    const nameEnd = buffer.indexOf(0, nameStart);
    if (nameEnd < 0) return null;
    entries.push({
      path: buffer.toString('utf8', nameStart, nameEnd),
      mtimeSeconds: buffer.readUInt32BE(offset + 8),
      ino: buffer.readUInt32BE(offset + 20),
      size: buffer.readUInt32BE(offset + 36),
    });
    // Entries are NUL-padded to a multiple of eight bytes.
    offset += Math.ceil((nameEnd - offset + 1) / 8) * 8;
  }
  return entries;
}

/** The first file that differs from the index by its stats, or is not in it; null when none does. */
export async function firstChangedFile(dir: string): Promise<string | null> {
  const entries = await readIndexEntries(path.join(dir, '.git'));
  if (!entries) return '.git/index';
  for (const entry of entries) {
    const stats = await fs.lstat(path.join(dir, entry.path)).catch(() => null);
    if (!stats) return entry.path;
    const same = stats.size % 2 ** 32 === entry.size && Math.floor(stats.mtimeMs / 1000) % 2 ** 32 === entry.mtimeSeconds && stats.ino % 2 ** 32 === entry.ino;
    if (!same) return entry.path;
  }
  const known = new Set(entries.map((e) => e.path));
  const present = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  for (const item of present) {
    if (item.isDirectory()) continue;
    const relative = path.relative(dir, path.join(item.parentPath, item.name)).split(path.sep).join('/');
    if (relative === '.git' || relative.startsWith('.git/')) continue;
    if (!known.has(relative)) return relative;
  }
  return null;
}
