// Which preview a `<repo>--<run>.localhost` address names (previews/store.ts makes the labels): found among
// the previews in the store, remembered, and looked for again (at most once a second) when a label is new.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isStoreId, originLabel, readPreviewMetas, servicesRoot } from './store';

export interface PreviewAt {
  runId: string;
  repo: string;
}

const RESCAN_AFTER_MS = 1000;

export class PreviewOrigins {
  private readonly labels = new Map<string, PreviewAt>();
  private scannedAt = 0;

  constructor(private readonly root: string) {}

  async resolve(label: string): Promise<PreviewAt | null> {
    const known = this.labels.get(label);
    if (known || Date.now() - this.scannedAt < RESCAN_AFTER_MS) return known ?? null;
    this.scannedAt = Date.now();
    for (const runId of await fs.readdir(this.root).catch(() => [] as string[])) {
      if (!isStoreId(runId)) continue;
      // Static previews' folders, running services and recorded previews: a deploy's screenshot comes
      // before its record is written.
      const repos = new Set<string>([
        ...(await fs.readdir(path.join(this.root, runId)).catch(() => [] as string[])).filter((name) => isStoreId(name) && !name.startsWith('_')),
        ...(await fs.readdir(path.join(servicesRoot(this.root), runId)).catch(() => [] as string[])).filter(isStoreId),
        ...(await readPreviewMetas(this.root, runId)).map((meta) => meta.repo),
      ]);
      for (const repo of repos) {
        const at = originLabel(runId, repo);
        if (at) this.labels.set(at, { runId, repo });
      }
    }
    return this.labels.get(label) ?? null;
  }
}
