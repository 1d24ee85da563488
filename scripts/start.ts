// `npm start`: the whole system on one machine with its embedded defaults — a Temporal dev server
// (SQLite under .data, so runs survive a restart), the local git forge with the demo repositories, and a
// worker process per role — then tells you where everything is.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startForge } from '../forge/server';
import { startPullRequestWebhooks, WEBHOOK_PATH } from '../client/pull-request-webhooks';
import { seedRepositories } from '../forge/seed';
import { startPreviewServer } from '../previews/server';
import { startEmbeddedRegistry } from '../registry/embedded';
import { publishReleased } from '../registry/seed';
import { demoRequirementText, loadScenarioBook } from '../activities/agent/scenarios';
import { startDemoPages } from '../demo/pages-server';
import { ChangeRequestGateway } from '../client/gateway';
import { ConversationRouter } from '../im-adapters/core/router';
import { startWebChat } from '../im-adapters/web/server';
import { CHAT_PLATFORMS, configuredPlatforms } from '../im-adapters/chat-platforms';
import { loadCatalog } from '../domain/catalog-loader';
import { chooseModelProvider } from '../worker/model-provider';
import { workerVersion } from '../worker/build-id';
import { Deployments } from '../client/deployments';
import { replayAgainstCurrentCode } from '../client/replay';
import { WORKER_ROLES, taskQueueFor } from '../workflows/task-queues';
import { startWorkerProcesses } from './worker-processes';
import { catalogEnvironment, PROJECT_ROOT, readConfig } from '../worker/config';
import { quietSdkLogs } from '../worker/create-worker';
import { connectClient } from '../client/connect';
import { ensureTemporalCli } from './ensure-temporal';
import { connectWithRetry, startDevServer } from './temporal-dev-server';

const DEMO_REPOS = ['ui-kit', 'bff-api', 'web-app'];
/** Demo packages whose released version must be in the registry for the apps that depend on them. */
const DEMO_PACKAGES = ['ui-kit'];

async function main(): Promise<void> {
  const config = readConfig();
  // A half-configured chat platform stops start-up here, before anything is started.
  const configured = configuredPlatforms();
  quietSdkLogs();
  await fs.mkdir(config.dataDir, { recursive: true });
  const [host, portText] = config.temporal.address.split(':');
  const temporalPort = Number(portText ?? 7233);

  // The catalog is checked before anything starts: a broken one stops start-up with file, field and reason.
  await loadCatalog(config.catalogPath, catalogEnvironment(config));

  const temporalCli = await ensureTemporalCli((line) => console.log(line));
  await refuseBusyPort(temporalPort, `Temporal (${config.temporal.address})`, 'TEMPORAL_ADDRESS');
  await refuseBusyPort(config.temporal.uiPort, `the Temporal Web UI (port ${config.temporal.uiPort})`, 'TEMPORAL_UI_PORT');
  await refuseBusyPort(config.forge.port, `the git forge (port ${config.forge.port})`, 'FORGE_PORT');
  await refuseBusyPort(config.previews.port, `the preview server (port ${config.previews.port})`, 'PREVIEW_PORT');
  await refuseBusyPort(config.webChatPort, `the web chat (port ${config.webChatPort})`, 'WEB_CHAT_PORT');
  await refuseBusyPort(config.demoPages.port, `the demo pages (port ${config.demoPages.port})`, 'DEMO_PAGES_PORT');
  if (!config.registry.url) await refuseBusyPort(config.registry.port, `the npm registry (port ${config.registry.port})`, 'REGISTRY_PORT');
  const temporal = startDevServer(temporalCli, host ?? '127.0.0.1', temporalPort, config.temporal.uiPort, path.join(config.dataDir, 'temporal.sqlite'));
  const stopAll: (() => Promise<void>)[] = [async () => void temporal.kill('SIGTERM')];

  try {
    const forgeToken = config.forge.token ?? (await localForgeToken(config.dataDir));
    const forge = await startForge({ dataDir: path.join(config.dataDir, 'forge'), port: config.forge.port, token: forgeToken });
    stopAll.unshift(() => forge.close());
    const previewHostToken = config.previews.hostToken ?? (await localToken(config.dataDir, 'preview-host-token'));
    const previews = await startPreviewServer({ dir: config.previews.dir, port: config.previews.port, token: previewHostToken });
    stopAll.unshift(() => previews.close());
    const demoPages = await startDemoPages({ dir: config.demoPages.dir, port: config.demoPages.port });
    stopAll.unshift(() => demoPages.close());
    const seeded = await seedRepositories(forge, DEMO_REPOS.map((name) => ({ owner: 'demo', name, sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', name) })));
    const registry = await registryFor(config);
    if (registry.close) stopAll.unshift(registry.close);
    const released = registry.embedded
      ? await Promise.all(DEMO_PACKAGES.map((name) => publishReleased(registry.access, path.join(PROJECT_ROOT, 'demo', 'repos', name))))
      : [];

    await (await connectWithRetry(config.temporal.address)).close();
    const client = await connectClient(config.temporal.address, config.temporal.namespace);
    const models = await chooseModelProvider(config);
    // One process per worker role, as in production; they get the tokens this process made or read.
    const version = workerVersion(config);
    const workers = startWorkerProcesses(
      WORKER_ROLES,
      {
        ...process.env,
        FORGE_TOKEN: forgeToken,
        PREVIEW_HOST_TOKEN: previewHostToken,
        NPM_REGISTRY_URL: registry.access.url,
        NPM_REGISTRY_TOKEN: registry.access.token,
        // This process makes the build current, once, and then moves runs left on builds nobody serves.
        WORKER_MAKE_CURRENT: 'off',
        ...(version ? { WORKER_BUILD_ID: version.buildId } : {}),
      },
      (line) => console.log(line),
    );
    stopAll.unshift(() => workers.stop());
    const deployments = version ? new Deployments(client, config.temporal.namespace, version.deploymentName, config.temporal.taskQueue) : null;
    await workers.ready;
    if (version) await deployments!.makeCurrent(version.buildId, { waitMs: 60_000 });
    const deployLines = deployments ? await moveStrandedRuns(deployments) : [];

    // The IM side: one router for every adapter, all sending through the same gateway.
    const loadCurrentCatalog = () => loadCatalog(config.catalogPath, catalogEnvironment(config));
    const gateway = new ChangeRequestGateway(client, { taskQueue: config.temporal.taskQueue, catalog: loadCurrentCatalog });
    const router = new ConversationRouter(gateway);
    const webChat = await startWebChat({
      gateway,
      router,
      loadCatalog: loadCurrentCatalog,
      outboxDir: config.dataDir,
      demoRequirements: models.isDemo ? (await loadScenarioBook(config.demoScenariosPath)).map((s) => demoRequirementText(s.requirement, demoPages.url)) : [],
      port: config.webChatPort,
      ...(config.webChatPublicUrl ? { publicUrl: config.webChatPublicUrl } : {}),
    });
    stopAll.unshift(() => webChat.close());
    // Pull request webhooks: from GitHub with its secret, and from the embedded forge, which gets the same.
    const webhookSecret = config.webhooks.secret ?? (await localToken(config.dataDir, 'webhook-secret'));
    const webhooks = await startPullRequestWebhooks({ client, secret: webhookSecret, port: config.webhooks.port });
    stopAll.unshift(() => webhooks.close());
    forge.addWebhook({ url: `${webhooks.url}${WEBHOOK_PATH}`, secret: webhookSecret });
    const platformLines: string[] = [];
    for (const module of CHAT_PLATFORMS) {
      const platform = configured.find((c) => c.module === module);
      const adapter = platform ? await platform.configured.startAdapter({ router, loadCatalog: loadCurrentCatalog }) : null;
      if (adapter) stopAll.unshift(() => adapter.close());
      platformLines.push(`  ${module.label.padEnd(18)}${adapter ? (adapter.url ?? 'connected (no public URL needed)') : `not configured (${module.settingNames.join(', ')})`}`);
    }

    console.log(
      [
        '',
        'Change-request service is running.',
        `  Web chat          ${webChat.url}   ← start here: pick who you are and describe a change`,
        `  Temporal server   ${config.temporal.address} (namespace ${config.temporal.namespace}, data ${path.relative(PROJECT_ROOT, config.dataDir)}/temporal.sqlite)`,
        `  Temporal Web UI   http://localhost:${config.temporal.uiPort}`,
        `  Git forge         ${forge.url}  (repositories ${DEMO_REPOS.map((r) => `demo/${r}`).join(', ')}${seeded.created.length ? `; imported ${seeded.created.join(', ')}` : ''})`,
        ...platformLines,
        `  PR webhooks       ${webhooks.url}${WEBHOOK_PATH}  (the forge delivers here; for GitHub set GITHUB_WEBHOOK_SECRET and point a webhook with pull request, review and check events at it)`,
        `  Demo pages        ${demoPages.url}/  (a PRD the prd-sale-badge demo links; requirement links are read from here and the forge)`,
        `  Preview server    ${config.previews.baseUrl} (screenshots with ${config.previews.chromiumPath ?? 'no browser: CHROMIUM_PATH=none'}; service previews run here)`,
        `  npm registry      ${registry.access.url} ${registry.embedded ? `(embedded Verdaccio, data ${path.relative(PROJECT_ROOT, config.registry.dir)}, ${config.registry.uplink ? `uplink ${config.registry.uplink}` : 'offline: no uplink'}${released.length ? `; ${released.map((r) => `${r.name}@${r.version}${r.published ? ' published' : ''}`).join(', ')}` : ''})` : '(NPM_REGISTRY_URL)'}`,
        `  Workers           ${workers.processes.map((w) => `${w.role} (pid ${w.pid()})`).join(', ')}; task queues ${WORKER_ROLES.map((role) => `"${taskQueueFor(config.temporal.taskQueue, role)}"`).join(', ')}`,
        `  Build             ${version ? `${version.buildId} of deployment ${version.deploymentName}: new runs start on it (npm run cli -- versions)` : 'unversioned (WORKER_VERSIONING=off)'}`,
        ...deployLines,
        `  Model             ${models.description}`,
        `  Catalog           ${path.relative(PROJECT_ROOT, config.catalogPath)}`,
        '',
        'Or from a terminal:',
        '  npm run cli -- demos',
        '  npm run cli -- start --as fiona "Show prices with the currency code, like USD 12.50, on product cards"',
        '  npm run cli -- watch <run id>',
        '',
        'Press Ctrl-C to stop.',
      ].join('\n'),
    );

    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      temporal.once('exit', (code) => {
        console.error(`The Temporal dev server exited (code ${code}).`);
        resolve();
      });
    });
  } finally {
    console.log('Stopping…');
    for (const stop of stopAll) await stop().catch((error: unknown) => console.error(String(error)));
  }
}

/**
 * After a restart on new code, runs pinned to an earlier build have no worker here any more: each is moved
 * onto the current build if its history replays against the current code, and is named if it does not.
 */
async function moveStrandedRuns(deployments: Deployments): Promise<string[]> {
  const lines: string[] = [];
  for (const stranded of await deployments.stranded()) {
    const { moved, kept } = await deployments.moveRuns(stranded.buildId, replayAgainstCurrentCode);
    if (moved.length) lines.push(`                    moved ${moved.length} run${moved.length === 1 ? '' : 's'} from build ${stranded.buildId} (no worker serves it; they replay on this one)`);
    for (const { runId, reason } of kept) lines.push(`                    ${runId} stays on build ${stranded.buildId}: it ${reason}; run that build's workers to finish it`);
  }
  return lines;
}

/** The team's registry when NPM_REGISTRY_URL is set (it needs NPM_REGISTRY_TOKEN to publish), else an embedded Verdaccio. */
async function registryFor(config: ReturnType<typeof readConfig>): Promise<{ access: { url: string; token: string }; embedded: boolean; close?: () => Promise<void> }> {
  if (config.registry.url) {
    if (!config.registry.token) throw new Error('NPM_REGISTRY_URL is set but NPM_REGISTRY_TOKEN is not: the service needs a token that may publish the packages of the catalog.');
    return { access: { url: config.registry.url, token: config.registry.token }, embedded: false };
  }
  const registry = await startEmbeddedRegistry({ dir: config.registry.dir, port: config.registry.port, uplink: config.registry.uplink ?? null });
  // For people publishing their own packages' released versions into it (README: your own repositories).
  await fs.writeFile(path.join(config.dataDir, 'registry-token'), registry.token, { mode: 0o600 });
  return { access: { url: registry.url, token: registry.token }, embedded: true, close: () => registry.close() };
}

/** The embedded forge's token lives in the data folder, so the worker and repeated starts agree on it. */
async function localForgeToken(dataDir: string): Promise<string> {
  return localToken(dataDir, 'forge-token');
}

/** A random token kept in the data folder (0600), so the worker and repeated starts agree on it. */
async function localToken(dataDir: string, name: string): Promise<string> {
  const file = path.join(dataDir, name);
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    const token = randomBytes(24).toString('hex');
    await fs.writeFile(file, token, { mode: 0o600 });
    return token;
  }
}

async function refuseBusyPort(port: number, what: string, setting: string): Promise<void> {
  const busy = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (busy) throw new Error(`Port ${port} is already in use, so ${what} cannot start. Stop what is using it, or set ${setting}.`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
