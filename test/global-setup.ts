// Once per `jest` run: make sure the Temporal CLI is present and bundle the workflows, so every test file
// starts its own dev server and workers without re-bundling (about 3 s each).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ensureTemporalCli } from '../scripts/ensure-temporal';

export default async function globalSetup(): Promise<void> {
  process.env.CR_TEST_TEMPORAL_CLI = await ensureTemporalCli((line) => process.stderr.write(`${line}\n`));
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietLogger() });
  const file = path.join(os.tmpdir(), `cr-workflow-bundle-${process.pid}.js`);
  await fs.writeFile(file, code);
  process.env.CR_TEST_WORKFLOW_BUNDLE = file;
}

function quietLogger() {
  const noop = () => undefined;
  return { trace: noop, debug: noop, info: noop, warn: (m: string) => console.warn(m), error: (m: string) => console.error(m), log: noop };
}
