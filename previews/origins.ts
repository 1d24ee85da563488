// Which preview a `<repo>--<run>.localhost` address names (previews/store.ts makes the labels): found among
// the previews in the store and remembered. A label not known yet makes one look through the store again
// (one look at a time, shared by the requests that wait for it): a deploy's screenshot asks for its preview
// before the deploy has written its record.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isStoreId, originLabel, readPreviewMetas, servicesRoot } from './store';

export interface PreviewAt {
  runId: string;
  repo: string;
}

export class PreviewOrigins {
  private readonly labels = new Map<string, PreviewAt>();
  private scanning: Promise<void> | null = null;

  constructor(private readonly root: string) {}

  async resolve(label: string): Promise<PreviewAt | null> {
    const known = this.labels.get(label);
    if (known) return known;
    this.scanning ??= this.scan().finally(() => (this.scanning = null));
    await this.scanning;
    return this.labels.get(label) ?? null;
  }

  private async scan(): Promise<void> {
    const names = async (folder: string) => (await fs.readdir(folder).catch(() => [] as string[])).filter(isStoreId);
    // Static previews, screenshots and records live under the run's folder; services under .services.
    const runs = new Set([...(await names(this.root)), ...(await names(servicesRoot(this.root)))]);
    for (const runId of runs) {
      const repos = new Set<string>([
        ...(await names(path.join(this.root, runId))).filter((name) => !name.startsWith('_')),
        ...(await names(path.join(servicesRoot(this.root), runId))),
        ...(await readPreviewMetas(this.root, runId)).map((meta) => meta.repo),
      ]);
      for (const repo of repos) {
        const at = originLabel(runId, repo);
        if (at) this.labels.set(at, { runId, repo });
      }
    }
  }
}
