// Files attached in the web chat: kept once by their sha256 under the data folder and served back at
// /uploads/<hash>/<name>, so an attachment reaches the run as a link and is read like any other (the
// web chat's own address is on the context allow-list). Text documents only: an API definition (YAML or
// JSON), Markdown or plain text; never HTML, which would run on this page's origin.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { HttpError } from './http';

export const MAX_UPLOAD_BYTES = 1024 * 1024;

const TYPES: Record<string, string> = {
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.json': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const UPLOAD_PATH = /^\/uploads\/([0-9a-f]{64})\/([^/]+)$/;

export class Uploads {
  constructor(private readonly dir: string) {}

  /** Keeps a text file once; refuses names, types and contents it will not serve back. */
  async put(name: string, content: string): Promise<{ hash: string; name: string }> {
    if (!NAME.test(name)) throw new HttpError(400, `bad body: name: "${name.slice(0, 100)}" is not a plain file name (letters, digits, ".", "-", "_")`);
    if (!TYPES[path.extname(name).toLowerCase()]) throw new HttpError(415, `${name}: only ${Object.keys(TYPES).join(', ')} files can be attached (API definitions, Markdown, text)`);
    const bytes = Buffer.from(content, 'utf8');
    if (bytes.length > MAX_UPLOAD_BYTES) throw new HttpError(413, `${name} is larger than ${MAX_UPLOAD_BYTES / 1024} KiB`);
    if (content.includes('\u0000')) throw new HttpError(415, `${name} is a binary file; attach text`);
    const hash = createHash('sha256').update(bytes).digest('hex');
    const file = this.file(hash, name);
    if (!(await fs.stat(file).then(() => true, () => false))) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await fs.writeFile(temporary, bytes);
      await fs.rename(temporary, file);
    }
    return { hash, name };
  }

  /** Serves /uploads/<hash>/<name>; false when there is no such upload. */
  async serve(pathname: string, response: http.ServerResponse): Promise<boolean> {
    const match = UPLOAD_PATH.exec(pathname);
    if (!match || !NAME.test(match[2]!)) return false;
    const type = TYPES[path.extname(match[2]!).toLowerCase()];
    const content = type ? await fs.readFile(this.file(match[1]!, match[2]!)).catch(() => null) : null;
    if (!content) return false;
    response.writeHead(200, {
      'content-type': type!,
      'content-length': content.length,
      'content-security-policy': 'sandbox',
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=31536000, immutable',
    });
    response.end(content);
    return true;
  }

  private file(hash: string, name: string): string {
    return path.join(this.dir, hash.slice(0, 2), hash, name);
  }
}
