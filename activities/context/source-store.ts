// Texts the run read, stored once by their sha256 (workflow history holds only the hash), and the run's
// record of which link gave which text, so a retried read of the same link in the same run reads the
// stored text instead of fetching again (the page may have changed, or gone).
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ContextSource } from '../../domain/brief';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class SourceStore {
  constructor(private readonly dir: string) {}

  static under(dataDir: string): SourceStore {
    return new SourceStore(path.join(dataDir, 'context'));
  }

  /** Stores a text once; returns its hash. */
  async put(text: string): Promise<string> {
    const hash = sha256(text);
    const file = this.textFile(hash);
    if (await exists(file)) return hash;
    await writeAtomically(file, text);
    return hash;
  }

  /** The text with this hash; null when this worker has not stored it (the caller reads the link again). */
  async text(hash: string): Promise<string | null> {
    if (!/^[0-9a-f]{64}$/.test(hash)) return null;
    const text = await fs.readFile(this.textFile(hash), 'utf8').catch(() => null);
    return text !== null && sha256(text) === hash ? text : null;
  }

  /** What this run read at `url` before, if it did (and its text is still here). */
  async readBefore(runId: string, url: string): Promise<Omit<ContextSource, 'id' | 'via'> | null> {
    const raw = await fs.readFile(this.recordFile(runId, url), 'utf8').catch(() => null);
    if (raw === null) return null;
    const record = JSON.parse(raw) as Omit<ContextSource, 'id' | 'via'>;
    return (await this.text(record.hash)) === null ? null : record;
  }

  async remember(runId: string, record: Omit<ContextSource, 'id' | 'via'>): Promise<void> {
    await writeAtomically(this.recordFile(runId, record.url), JSON.stringify(record));
  }

  private textFile(hash: string): string {
    return path.join(this.dir, 'texts', hash.slice(0, 2), `${hash}.md`);
  }

  private recordFile(runId: string, url: string): string {
    return path.join(this.dir, 'runs', sha256(runId).slice(0, 32), `${sha256(url)}.json`);
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}

/** Write to a temporary name, then rename: a reader never sees half a file. */
async function writeAtomically(file: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temporary, content);
  await fs.rename(temporary, file);
}
