// Scratch checkouts for one activity attempt. Durable state lives in git and in Temporal history, never
// here: a workspace is thrown away when the attempt ends, and any worker can redo it from the remote.
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface Workspace {
  dir: string;
  dispose(): Promise<void>;
}

export async function createWorkspace(root: string, runId: string, label: string): Promise<Workspace> {
  const parent = path.join(root, 'workspaces', safeSegment(runId));
  await fs.mkdir(parent, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parent, `${safeSegment(label)}-`));
  return { dir, dispose: () => fs.rm(dir, { recursive: true, force: true }) };
}

export async function withWorkspace<T>(root: string, runId: string, label: string, work: (dir: string) => Promise<T>): Promise<T> {
  const workspace = await createWorkspace(root, runId, label);
  try {
    return await work(workspace.dir);
  } finally {
    await workspace.dispose();
  }
}

function safeSegment(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
}
