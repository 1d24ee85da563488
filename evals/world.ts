// The system an eval runs in: the same parts `npm start` runs (a Temporal dev server, the git forge, the
// npm registry, the preview server and a worker with the production activities), on free ports, in a
// scratch folder, with fresh copies of the catalog's demo repositories, so an eval never touches .data.
import { freePort } from '../activities/free-port';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';

import YAML from 'yaml';
import { ChangeRequestGateway } from '../client/gateway';
import { startForge, type Forge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { startPreviewServer } from '../previews/server';
import { startEmbeddedRegistry, type EmbeddedRegistry } from '../registry/embedded';
import { publishReleased } from '../registry/seed';
import type { ModelChoice, StepKind } from '../domain/catalog-schema';
import { STEP_KINDS } from '../domain/catalog-schema';
import { loadCatalog } from '../domain/catalog-loader';
import { PROJECT_ROOT, readConfig, type ServiceConfig } from '../worker/config';
import { createChangeRequestWorker } from '../worker/create-worker';
import { connectClient } from '../client/connect';
import { activityDepsFor } from '../worker/main';
import { ensureTemporalCli } from '../scripts/ensure-temporal';
import { connectWithRetry, startDevServer } from '../scripts/temporal-dev-server';

export interface EvalWorld {
  gateway: ChangeRequestGateway;
  forge: Forge;
  forgeToken: string;
  registry: EmbeddedRegistry;
  config: ServiceConfig;
  /** Which model serves, e.g. "Anthropic claude-sonnet-5-5" or the scripted demo model. */
  modelDescription: string;
  isDemo: boolean;
  /** Makes every agent step of runs started from now on use this model (the catalog's policy.models). */
  useModel(model: string | null): Promise<void>;
  close(): Promise<void>;
}

export interface EvalWorldOptions {
  /** The catalog to evaluate; its demo repositories (demo/repos/<name>) are copied into the forge. */
  catalogPath: string;
  reposDir: string;
  /** Packages whose released version the apps need in the registry before the first run. */
  releasedPackages: string[];
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export async function startEvalWorld(options: EvalWorldOptions): Promise<EvalWorld> {
  const log = options.log ?? (() => undefined);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-eval-'));
  const closers: (() => Promise<unknown>)[] = [() => fs.rm(dataDir, { recursive: true, force: true })];
  const close = async () => {
    for (const stop of closers.splice(0)) await stop().catch(() => undefined);
  };
  try {
    const forgeToken = randomBytes(16).toString('hex');
    const forge = await startForge({ dataDir: path.join(dataDir, 'forge'), token: forgeToken });
    closers.unshift(() => forge.close());
    const repos = (await fs.readdir(options.reposDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    await seedRepositories(forge, repos.map((name) => ({ owner: 'demo', name, sourceDir: path.join(options.reposDir, name) })));
    const previewToken = randomBytes(16).toString('hex');
    const previews = await startPreviewServer({ dir: path.join(dataDir, 'previews'), token: previewToken });
    closers.unshift(() => previews.close());
    const registry = await startEmbeddedRegistry({ dir: path.join(dataDir, 'registry') });
    closers.unshift(() => registry.close());
    for (const name of options.releasedPackages) await publishReleased(registry, path.join(options.reposDir, name));

    const temporalPort = await freePort();
    const temporal: ChildProcess = startDevServer(await ensureTemporalCli(log), '127.0.0.1', temporalPort, null, null, 'ignore');
    closers.push(async () => void temporal.kill('SIGTERM'));
    const address = `127.0.0.1:${temporalPort}`;

    const catalogPath = path.join(dataDir, 'catalog.yaml');
    const catalogText = await fs.readFile(options.catalogPath, 'utf8');
    await fs.writeFile(catalogPath, catalogText);
    const config = readConfig({
      ...withoutChatSettings(options.env ?? process.env),
      DATA_DIR: path.join(dataDir, 'worker'),
      CATALOG_PATH: catalogPath,
      FORGE_URL: forge.url,
      FORGE_TOKEN: forgeToken,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: `evals-${randomBytes(3).toString('hex')}`,
      PREVIEW_BASE_URL: previews.url,
      PREVIEW_HOST_TOKEN: previewToken,
      NPM_REGISTRY_URL: registry.url,
      NPM_REGISTRY_TOKEN: registry.token,
    });
    const catalogEnv = { ...process.env, FORGE_URL: forge.url };
    await loadCatalog(catalogPath, catalogEnv); // a broken catalog stops the eval here, with its reason

    const connection = await connectWithRetry(address);
    closers.unshift(() => connection.close());
    const client = await connectClient(address, config.temporal.namespace);
    closers.unshift(() => client.connection.close());
    const deps = await activityDepsFor(config, client);
    const worker = await createChangeRequestWorker({ connection, namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, deps });
    const running = worker.run();
    closers.unshift(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });
    const gateway = new ChangeRequestGateway(client, { taskQueue: config.temporal.taskQueue, catalog: () => loadCatalog(catalogPath, catalogEnv) });

    return {
      gateway,
      forge,
      forgeToken,
      registry,
      config,
      modelDescription: deps.models.description,
      isDemo: deps.models.isDemo,
      async useModel(model) {
        // Every step kind on this model; the catalog's efforts stay as they are.
        const document = YAML.parseDocument(catalogText);
        type Models = Partial<Record<StepKind, ModelChoice>>;
        const plain = document.toJS() as { policy?: { models?: Models }; repositories?: { models?: Models }[] };
        const onModel = (current: Models = {}) => Object.fromEntries(STEP_KINDS.map((kind) => [kind, { ...current[kind], model }]));
        if (model) {
          document.setIn(['policy', 'models'], onModel(plain.policy?.models));
          // A repository's own choice would win over the policy's: it is replaced too.
          plain.repositories?.forEach((repo, index) => repo.models && document.setIn(['repositories', index, 'models'], onModel(repo.models)));
        }
        await fs.writeFile(catalogPath, document.toString());
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** An eval posts nothing to Slack or Lark, whatever the shell it runs in has set. */
function withoutChatSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !/^(SLACK|LARK)_/.test(name)));
}

export const DEFAULT_EVALS_FILE = path.join(PROJECT_ROOT, 'demo', 'evals.yaml');
