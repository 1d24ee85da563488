// Every file the agent touches goes through here: paths are resolved inside one checkout and refused,
// with a reason the model can act on, when they would leave it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ToolRefusal } from './registry';

const HIDDEN_DIRS = new Set(['.git', 'node_modules']);
export const MAX_READ_BYTES = 256 * 1024;
export const MAX_WRITE_BYTES = 512 * 1024;

export class RepoSandbox {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<RepoSandbox> {
    return new RepoSandbox(await fs.realpath(root));
  }

  /** Resolves a repository-relative path; refuses absolute paths, `..` escapes, `.git` and outside symlinks. */
  async resolve(relative: string, purpose: 'read' | 'write'): Promise<string> {
    const cleaned = relative.trim() === '' ? '.' : relative.trim();
    if (path.isAbsolute(cleaned) || /^[a-zA-Z]:[\\/]/.test(cleaned)) {
      throw new ToolRefusal(`"${relative}" is an absolute path. Use a path relative to the repository root, e.g. "src/index.js".`);
    }
    const target = path.resolve(this.root, cleaned);
    if (!isInside(this.root, target)) {
      throw new ToolRefusal(`"${relative}" points outside the repository. Only files inside the repository can be used.`);
    }
    const segments = path.relative(this.root, target).split(path.sep);
    if (segments.some((s) => s === '.git')) {
      throw new ToolRefusal(`"${relative}" is inside .git, which is managed by the service, not by tools.`);
    }
    // Follow symlinks for every existing ancestor: a link inside the repository may point anywhere.
    const existing = await deepestExisting(target);
    const real = await fs.realpath(existing).catch(() => {
      throw new ToolRefusal(`"${relative}" is a symbolic link that points nowhere.`);
    });
    if (!isInside(this.root, real)) {
      throw new ToolRefusal(`"${relative}" resolves (through a symbolic link) outside the repository and cannot be ${purpose === 'read' ? 'read' : 'written'}.`);
    }
    if (purpose === 'write' && existing === target) {
      const stat = await fs.lstat(target);
      if (stat.isSymbolicLink()) throw new ToolRefusal(`"${relative}" is a symbolic link; write to the file it points to instead.`);
      if (stat.isDirectory()) throw new ToolRefusal(`"${relative}" is a directory.`);
    }
    return target;
  }

  relative(absolute: string): string {
    return path.relative(this.root, absolute).split(path.sep).join('/') || '.';
  }

  /** All files under a folder, repository-relative, skipping .git and node_modules, sorted. */
  async listFiles(relativeDir = '.', limit = 2000): Promise<{ files: string[]; truncated: boolean }> {
    const start = await this.resolve(relativeDir, 'read');
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      entries.sort((a, b) => a.name.localeCompare(b.name));
      for (const entry of entries) {
        if (files.length >= limit) return;
        if (HIDDEN_DIRS.has(entry.name)) continue;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() || entry.isSymbolicLink()) files.push(this.relative(full));
      }
    };
    const stat = await fs.stat(start).catch(() => null);
    if (!stat) throw new ToolRefusal(`"${relativeDir}" does not exist.`);
    if (stat.isFile()) return { files: [this.relative(start)], truncated: false };
    await walk(start);
    return { files, truncated: files.length >= limit };
  }

  async readText(relative: string): Promise<string> {
    const file = await this.resolve(relative, 'read');
    const stat = await fs.stat(file).catch(() => null);
    if (!stat) throw new ToolRefusal(`"${relative}" does not exist. Use list_files to see what is there.`);
    if (stat.isDirectory()) throw new ToolRefusal(`"${relative}" is a directory; use list_files.`);
    if (stat.size > MAX_READ_BYTES) {
      throw new ToolRefusal(`"${relative}" is ${stat.size} bytes, over the ${MAX_READ_BYTES}-byte read limit. Use search to find the part you need.`);
    }
    const buffer = await fs.readFile(file);
    if (buffer.includes(0)) throw new ToolRefusal(`"${relative}" is a binary file.`);
    return buffer.toString('utf8');
  }

  async writeText(relative: string, content: string): Promise<'created' | 'updated'> {
    if (Buffer.byteLength(content) > MAX_WRITE_BYTES) {
      throw new ToolRefusal(`The content is over the ${MAX_WRITE_BYTES}-byte write limit.`);
    }
    const file = await this.resolve(relative, 'write');
    const existed = await fs.stat(file).then(() => true, () => false);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
    return existed ? 'updated' : 'created';
  }

  async remove(relative: string): Promise<void> {
    const file = await this.resolve(relative, 'write');
    const stat = await fs.lstat(file).catch(() => null);
    if (!stat) throw new ToolRefusal(`"${relative}" does not exist.`);
    if (stat.isDirectory()) throw new ToolRefusal(`"${relative}" is a directory; delete its files one by one.`);
    await fs.rm(file);
  }
}

function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

async function deepestExisting(target: string): Promise<string> {
  let current = target;
  for (;;) {
    try {
      await fs.lstat(current);
      return current;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}
