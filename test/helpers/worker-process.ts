// Starts test/helpers/worker-entry.ts as a child process and waits until its worker is polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Scenario } from '../../activities/agent/scenarios';
import { PROJECT_ROOT, workflowBundle, type World } from './world';

export interface WorkerProcess {
  child: ChildProcess;
  kill(): Promise<void>;
}

export async function startWorkerProcess(world: World, scenarios: Scenario[], name: string, extraEnv: Record<string, string> = {}): Promise<WorkerProcess> {
  const scenariosFile = path.join(world.dataDir, `${name}-scenarios.json`);
  const readyFile = path.join(world.dataDir, `${name}.ready`);
  await fs.writeFile(scenariosFile, JSON.stringify(scenarios));
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(PROJECT_ROOT, 'test', 'helpers', 'worker-entry.ts')], {
    cwd: PROJECT_ROOT,
    // Its own process group: tsx runs the worker in a grandchild, and the kill must reach it too.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      CR_SCENARIOS_FILE: scenariosFile,
      CR_TEMPORAL_ADDRESS: world.env.address,
      CR_NAMESPACE: world.env.namespace ?? 'default',
      CR_TASK_QUEUE: world.taskQueue,
      CR_DATA_DIR: path.join(world.dataDir, 'worker'),
      CR_CATALOG: world.catalogPath,
      CR_FORGE_TOKEN: world.forgeToken,
      CR_PREVIEW_DIR: world.previewServer.dir,
      CR_PREVIEW_URL: world.previewServer.url,
      CR_PREVIEW_TOKEN: world.previewServer.token,
      CR_REGISTRY_URL: world.registry.url,
      CR_REGISTRY_TOKEN: world.registry.token,
      CR_TEST_WORKFLOW_BUNDLE: workflowBundle().codePath,
      CR_READY_FILE: readyFile,
      ...extraEnv,
    },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!(await fs.stat(readyFile).then(() => true, () => false))) {
    if (child.exitCode !== null) throw new Error(`worker process ${name} exited with ${child.exitCode} before it was ready`);
    if (Date.now() > deadline) throw new Error(`worker process ${name} did not become ready`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    },
  };
}
