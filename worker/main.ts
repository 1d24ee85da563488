// A worker process (production, docker-compose, and each worker `npm start` runs): connects to Temporal,
// refuses to start on a broken catalog, and serves the roles of WORKER_ROLES (all by default) until
// SIGINT/SIGTERM. A workflows worker of a versioned build makes that build current as it comes up.
import { NativeConnection } from '@temporalio/worker';
import { Conversations, OutboxChannel } from '../activities/notify';
import { configuredPlatforms } from '../im-adapters/chat-platforms';
import { loadCatalog } from '../domain/catalog-loader';
import { catalogEnvironment, readConfig, serviceContextHosts, type ServiceConfig } from './config';
import { createChangeRequestWorker, progressReporterVia, spendLedgerVia, quietSdkLogs } from './create-worker';
import { workerVersion } from './build-id';
import { Deployments } from '../client/deployments';
import { taskQueueFor } from '../workflows/task-queues';
import { connectClient } from '../client/connect';
import { assertPriced, chooseModelProvider, loadPrices, missingInstallTokens, secretsRedactor } from './model-provider';
import type { ActivityDeps } from '../activities/deps';
import { withCallLedger } from '../activities/agent/call-ledger';
import { sandboxState } from '../activities/sandbox';
import { forgeAccessFromEnv, pullRequestSettingsFromEnv } from '../activities/forge-access';
import type { Client } from '@temporalio/client';

export async function activityDepsFor(config: ServiceConfig, client: Client): Promise<ActivityDeps> {
  const env = catalogEnvironment(config);
  // Repository code never runs unconfined by accident: no sandbox stops start-up here (unless REPO_SANDBOX=off).
  const sandbox = sandboxState();
  if (sandbox.mode === 'off') console.warn(`worker: repository commands run UNCONFINED (${sandbox.reason}); every check result says so`);
  const chosen = await chooseModelProvider(config);
  const models = config.model.callLedger ? withCallLedger(chosen, config.model.callLedger) : chosen;
  const prices = await loadPrices(config);
  const catalog = await loadCatalog(config.catalogPath, env);
  assertPriced(models, prices, catalog);
  for (const name of missingInstallTokens(catalog)) console.warn(`worker: the catalog's installCredentials name ${name}, which is not set here; those installs will fail until it is`);
  return {
    loadCatalog: () => loadCatalog(config.catalogPath, env),
    dataDir: config.dataDir,
    installCacheMaxBytes: config.installCacheMaxBytes,
    nodeRuntimeRegistry: config.nodeRuntimeRegistry,
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

/** How long a new build's workflows worker waits for the build's other workers before giving up on becoming current. */
const MAKE_CURRENT_PATIENCE_MS = 10 * 60_000;

async function main(): Promise<void> {
  const config = readConfig(withRolesArgument(process.argv.slice(2), process.env));
  const roles = config.workers.roles;
  const servesSteps = roles.some((role) => role !== 'workflows');
  if (servesSteps) configuredPlatforms(); // a half-configured chat platform stops start-up here
  quietSdkLogs();
  await loadCatalog(config.catalogPath, catalogEnvironment(config)); // a broken catalog stops start-up here
  const client = await connectClient(config.temporal.address, config.temporal.namespace);
  const version = workerVersion(config);
  // Only the steps need models, tokens and the sandbox; a workflows worker decides and holds none of them.
  const deps = servesSteps ? await activityDepsFor(config, client) : undefined;
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const workers = await createChangeRequestWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    roles,
    ...(deps ? { deps } : {}),
    concurrency: config.workers.concurrency,
    version,
    maxCachedWorkflows: config.workflowCacheSize,
  });
  const running = workers.run();
  if (version && roles.includes('workflows') && config.versioning.makeCurrent) {
    // Waits (in the background) for this build's workers of the other roles, wherever they run.
    new Deployments(client, config.temporal.namespace, version.deploymentName, config.temporal.taskQueue)
      .makeCurrent(version.buildId, { waitMs: MAKE_CURRENT_PATIENCE_MS })
      .then(
        ({ previous }) => previous !== version.buildId && console.log(`worker: build ${version.buildId} is now current for new runs${previous ? ` (was ${previous}; its runs stay pinned to it)` : ''}`),
        (error: unknown) => console.error(`worker: ${(error as Error).message}`),
      );
  }
  console.log(
    `worker: serving ${roles.join(', ')} on task queue${roles.length > 1 ? 's' : ''} ${roles.map((role) => `"${taskQueueFor(config.temporal.taskQueue, role)}"`).join(', ')} at ${config.temporal.address}` +
      `; ${version ? `build ${version.buildId} of ${version.deploymentName}` : 'unversioned'}${deps ? `; model: ${deps.models.description}` : ''}`,
  );
  await running;
  await connection.close();
  await client.connection.close();
}

/** `npm run worker -- --roles agent,work` is WORKER_ROLES=agent,work. */
function withRolesArgument(args: string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const at = args.findIndex((arg) => arg === '--roles' || arg === '--role');
  if (at === -1) return env;
  const value = args[at + 1];
  if (!value) throw new Error('--roles needs a value, e.g. --roles agent,work');
  return { ...env, WORKER_ROLES: value };
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
