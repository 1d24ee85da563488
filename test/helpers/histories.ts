// Histories of the main test scenarios are kept as fixtures and replayed against the workflow code on
// every test run (test/replay.test.ts), so a change that would break runs in flight fails CI.
// Refresh them on purpose, after a change that is guarded with patched() or that no running workflow can
// meet: RECORD_HISTORIES=1 npx jest (or just the files that record).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';

export const HISTORY_FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/** Saves the run's history as a fixture when RECORD_HISTORIES=1; does nothing otherwise. */
export async function recordHistory(client: Client, runId: string, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await client.workflow.getHandle(runId).fetchHistory();
  await fs.mkdir(HISTORY_FIXTURES, { recursive: true });
  await fs.writeFile(path.join(HISTORY_FIXTURES, `${name}.json`), `${historyToJSON(history)}\n`);
}
