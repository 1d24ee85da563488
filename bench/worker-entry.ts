// The worker for benchmarks, in its own process: the same worker `npm run worker` builds
// (createChangeRequestWorker, production progress interval, WORKFLOW_CACHE_SIZE if set), with the
// scripted model, the bench catalog and the local forge's token. Configured by environment variables set
// by bench/world.ts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { ScenarioSchema } from '../activities/agent/scenarios';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import { DEFAULT_PRICES } from '../activities/agent/pricing';
import { redactorFor } from '../activities/agent/redact';
import { tokenForgeAccess } from '../activities/forge-access';
import { Conversations, OutboxChannel } from '../activities/notify';
import { loadCatalog } from '../domain/catalog-loader';
import { createChangeRequestWorker, progressReporterVia, spendLedgerVia, quietSdkLogs } from '../worker/create-worker';
import { connectClient } from '../client/connect';
import { readConfig } from '../worker/config';

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  quietSdkLogs();
  const scenarios = ScenarioSchema.array().parse(JSON.parse(await fs.readFile(env('CR_SCENARIOS_FILE'), 'utf8')));
  const client = await connectClient(env('CR_TEMPORAL_ADDRESS'), env('CR_NAMESPACE'));
  const connection = await NativeConnection.connect({ address: env('CR_TEMPORAL_ADDRESS') });
  const dataDir = env('CR_DATA_DIR');
  const worker = await createChangeRequestWorker({
    connection,
    namespace: env('CR_NAMESPACE'),
    taskQueue: env('CR_TASK_QUEUE'),
    workflowBundle: { codePath: env('CR_TEST_WORKFLOW_BUNDLE') },
    identity: `bench-worker-${process.pid}`,
    // As `npm run worker` reads it: WORKER_ROLES=workflows for a workflow worker alone, and so on.
    ...(process.env.WORKER_ROLES ? { roles: readConfig({ WORKER_ROLES: process.env.WORKER_ROLES }).workers.roles } : {}),
    // As `npm run worker` reads it (worker/config.ts); unset: the worker's default.
    ...(process.env.WORKFLOW_CACHE_SIZE ? { maxCachedWorkflows: Number(process.env.WORKFLOW_CACHE_SIZE) } : {}),
    deps: {
      loadCatalog: () => loadCatalog(env('CR_CATALOG')),
      dataDir,
      models: new ScriptedModelProvider(scenarios, 'benchmark scenarios'),
      prices: DEFAULT_PRICES,
      maxTokensPerCall: 4096,
      redact: redactorFor([env('CR_FORGE_TOKEN')]),
      forge: tokenForgeAccess(env('CR_FORGE_TOKEN')),
      reportProgress: progressReporterVia(client),
      spendLedger: spendLedgerVia(client),
      conversations: new Conversations(new OutboxChannel(dataDir)),
      previews: { dir: env('CR_PREVIEW_DIR'), baseUrl: env('CR_PREVIEW_URL'), chromiumPath: null, viewport: { width: 1280, height: 800 }, host: null },
      registry: process.env.CR_REGISTRY_URL ? { url: env('CR_REGISTRY_URL'), token: env('CR_REGISTRY_TOKEN') } : null,
      // The worker's default (PROGRESS_INTERVAL_MS in worker/config.ts).
      progressIntervalMs: Number(process.env.CR_PROGRESS_INTERVAL_MS ?? 1000),
    },
  });
  if (process.env.CR_BENCH_MEMORY_LOG) {
    // Where the memory is: the main thread's heap (activities, SDK) against the whole resident set
    // (which also holds the workflow thread's heap and native memory).
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    setInterval(() => {
      const m = process.memoryUsage();
      console.error(`memory: rss ${mib(m.rss)}, main heap ${mib(m.heapUsed)}/${mib(m.heapTotal)}, external ${mib(m.external)}, array buffers ${mib(m.arrayBuffers)}`);
    }, Number(process.env.CR_BENCH_MEMORY_LOG) || 5000).unref();
  }
  await fs.mkdir(path.dirname(env('CR_READY_FILE')), { recursive: true });
  // SIGTERM (bench/world.ts stop) makes the SDK shut the worker down; run() then resolves.
  const running = worker.run();
  await fs.writeFile(env('CR_READY_FILE'), String(process.pid));
  await running;
  await connection.close();
  await client.connection.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
