// Every recorded history replays against the current workflow code: a change that would make running
// workflows take a different path (non-determinism) fails here, before it reaches a worker.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { HISTORY_FIXTURES } from './helpers/histories';
import { workflowBundle } from './helpers/world';

jest.setTimeout(120_000);

test('the recorded histories of the main scenarios replay cleanly', async () => {
  const files = (await fs.readdir(HISTORY_FIXTURES)).filter((f) => f.endsWith('.json')).sort();
  expect(files.length).toBeGreaterThanOrEqual(8);
  const histories = await Promise.all(
    files.map(async (file) => ({ workflowId: path.basename(file, '.json'), history: historyFromJSON(JSON.parse(await fs.readFile(path.join(HISTORY_FIXTURES, file), 'utf8'))) })),
  );
  const problems: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: workflowBundle() }, histories)) {
    if (result.error) problems.push(`${result.workflowId}: ${result.error.message.split('\n')[0]}`);
  }
  expect(problems).toEqual([]);
});
