// The worker process on its own (production, docker-compose): connects to Temporal, refuses to start on
// a broken catalog, and serves the change-request task queue until SIGINT/SIGTERM.
import { NativeConnection } from '@temporalio/worker';
import { Conversations, OutboxChannel } from '../activities/notify';
import { configuredPlatforms } from '../im-adapters/chat-platforms';
import { loadCatalog } from '../domain/catalog-loader';
import { catalogEnvironment, readConfig, serviceContextHosts, type ServiceConfig } from './config';
import { createChangeRequestWorker, progressReporterVia, spendLedgerVia, quietSdkLogs } from './create-worker';
import { connectClient } from '../client/connect';
import { assertPriced, chooseModelProvider, loadPrices, missingInstallTokens, secretsRedactor } from './model-provider';
import type { ActivityDeps } from '../activities/deps';
import { sandboxState } from '../activities/sandbox';
import { forgeAccessFromEnv, pullRequestSettingsFromEnv } from '../activities/forge-access';
import type { Client } from '@temporalio/client';

export async function activityDepsFor(config: ServiceConfig, client: Client): Promise<ActivityDeps> {
  const env = catalogEnvironment(config);
  // Repository code never runs unconfined by accident: no sandbox stops start-up here (unless REPO_SANDBOX=off).
  const sandbox = sandboxState();
  if (sandbox.mode === 'off') console.warn(`worker: repository commands run UNCONFINED (${sandbox.reason}); every check result says so`);
  const models = await chooseModelProvider(config);
  const prices = await loadPrices(config);
  const catalog = await loadCatalog(config.catalogPath, env);
  assertPriced(models, prices, catalog);
  for (const name of missingInstallTokens(catalog)) console.warn(`worker: the catalog's installCredentials name ${name}, which is not set here; those installs will fail until it is`);
  return {
    loadCatalog: () => loadCatalog(config.catalogPath, env),
    dataDir: config.dataDir,
    installCacheMaxBytes: config.installCacheMaxBytes,
    models,
    prices,
    maxTokensPerCall: config.model.maxTokensPerCall,
    redact: secretsRedactor(config, process.env, catalog),
    // The local forge's generated token stands in for FORGE_TOKEN when none is set.
    forge: forgeAccessFromEnv({ ...process.env, FORGE_TOKEN: config.forge.token }, pullRequestSettingsFromEnv(process.env)),
    reportProgress: progressReporterVia(client),
    spendLedger: spendLedgerVia(client),
    conversations: conversationsFor(config),
    previews: {
      dir: config.previews.dir,
      baseUrl: config.previews.baseUrl,
      chromiumPath: config.previews.chromiumPath,
      viewport: { width: 1280, height: 800 },
      // The preview server runs service previews; its control API is on the same address.
      host: config.previews.hostToken ? { url: config.previews.baseUrl, token: config.previews.hostToken } : null,
    },
    registry: config.registry.url && config.registry.token ? { url: config.registry.url, token: config.registry.token } : null,
    progressIntervalMs: config.progressIntervalMs,
    contextHosts: serviceContextHosts(config),
    chatDocuments: configuredPlatforms().map(({ configured }) => configured.documents()),
  };
}

/** The outbox for the CLI and the web chat; each chat platform that is configured (im-adapters/chat-platforms.ts). */
function conversationsFor(config: ServiceConfig): Conversations {
  return new Conversations(new OutboxChannel(config.dataDir), Object.fromEntries(configuredPlatforms().map(({ module, configured }) => [module.platform, configured.channel()])));
}

async function main(): Promise<void> {
  const config = readConfig();
  configuredPlatforms(); // a half-configured chat platform stops start-up here
  quietSdkLogs();
  await loadCatalog(config.catalogPath, catalogEnvironment(config)); // a broken catalog stops start-up here
  const client = await connectClient(config.temporal.address, config.temporal.namespace);
  const deps = await activityDepsFor(config, client);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createChangeRequestWorker({ connection, namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, deps, maxCachedWorkflows: config.workflowCacheSize });
  console.log(`worker: serving task queue "${config.temporal.taskQueue}" on ${config.temporal.address}; model: ${deps.models.description}`);
  await worker.run();
  await connection.close();
  await client.connection.close();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
