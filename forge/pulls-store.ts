// Pull request records: a JSON file beside each bare repository, written atomically, changed one at a time.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import type { Repo } from './repos';

const PullRecordSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullable(),
  state: z.enum(['open', 'closed']),
  draft: z.boolean(),
  head: z.string(),
  base: z.string(),
  // The commits last seen by the forge, still shown after a branch is deleted (as GitHub keeps showing them).
  headSha: z.string(),
  baseSha: z.string(),
  labels: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  closedAt: z.string().nullable(),
  // Records written before merging existed have none of these.
  merged: z.boolean().default(false),
  mergedAt: z.string().nullable().default(null),
  mergeCommitSha: z.string().nullable().default(null),
  // Reviews and line comments people left, as GitHub keeps them.
  reviews: z.array(z.object({ id: z.number().int(), user: z.string(), state: z.enum(['APPROVED', 'CHANGES_REQUESTED', 'COMMENTED']), body: z.string(), submittedAt: z.string() })).default([]),
  comments: z.array(z.object({ id: z.number().int(), user: z.string(), body: z.string(), path: z.string(), line: z.number().int().nullable(), createdAt: z.string() })).default([]),
});
export type PullRecord = z.infer<typeof PullRecordSchema>;

const PullsFileSchema = z.object({ repository: z.string(), pulls: z.array(PullRecordSchema) });

export const newestFirst = (a: PullRecord, b: PullRecord): number => b.number - a.number;

export class PullStore {
  /** Per file, the tail of the queue of changes, so read-modify-write cycles never interleave. */
  private readonly queues = new Map<string, Promise<void>>();

  async read(repo: Repo): Promise<PullRecord[]> {
    let text: string;
    try {
      text = await fs.readFile(repo.pullsFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return PullsFileSchema.parse(JSON.parse(text)).pulls;
  }

  /** Runs `change` on the current records and saves them, one change per repository at a time. A throw saves nothing. */
  mutate<T>(repo: Repo, change: (pulls: PullRecord[]) => Promise<T>): Promise<T> {
    const file = repo.pullsFile;
    const run = (this.queues.get(file) ?? Promise.resolve()).then(async () => {
      const pulls = await this.read(repo);
      const result = await change(pulls);
      await writeAtomically(file, `${JSON.stringify({ repository: repo.fullName, pulls }, null, 2)}\n`);
      return result;
    });
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(file, tail);
    void tail.then(() => {
      if (this.queues.get(file) === tail) this.queues.delete(file);
    });
    return run;
  }

  /** Resolves once every change queued so far has been saved or abandoned. */
  async settled(): Promise<void> {
    await Promise.all(this.queues.values());
  }
}

/** Readers never see a half-written file: they get the old one or the new one. */
async function writeAtomically(file: string, content: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(temp, content);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
