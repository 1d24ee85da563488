// Configuration from the environment, validated once, with embedded defaults that run the whole system
// on one machine (`npm start`). Secrets are read here and passed on explicitly; nothing else reads env.
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_MODEL } from '../activities/agent/lineup';
import { WORKER_ROLES, type ActivityRole, type WorkerRole } from '../workflows/task-queues';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

const ConfigSchema = z.object({
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('change-requests'),
  TEMPORAL_UI_PORT: z.coerce.number().int().positive().default(8233),
  CATALOG_PATH: z.string().default(path.join(PROJECT_ROOT, 'demo', 'catalog.yaml')),
  DEMO_SCENARIOS_PATH: z.string().default(path.join(PROJECT_ROOT, 'demo', 'scenarios.yaml')),
  DATA_DIR: z.string().default(path.join(PROJECT_ROOT, '.data')),
  FORGE_PORT: z.coerce.number().int().min(0).max(65535).default(8740),
  /** Where the catalog's ${FORGE_URL} points; the embedded forge by default. */
  FORGE_URL: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  /** Token for git and the forge API: a GitHub token in production, the local forge's token otherwise. */
  FORGE_TOKEN: z.string().optional().transform((v) => v || undefined),
  GITHUB_TOKEN: z.string().optional().transform((v) => v || undefined),
  ANTHROPIC_API_KEY: z.string().optional().transform((v) => v || undefined),
  ANTHROPIC_MODEL: z.string().min(1).default(DEFAULT_MODEL),
  ANTHROPIC_BASE_URL: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  MODEL_MAX_TOKENS: z.coerce.number().int().min(256).max(128_000).default(8192),
  MODEL_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(4),
  MODEL_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** A JSON file of extra or changed prices: { "<model>": { input, output, cacheWrite, cacheRead } } in USD per million tokens. */
  MODEL_PRICES: z.string().optional().transform((v) => v || undefined),
  /** A file each model answer's usage is appended to (run, step, tokens; never the words): the soak's and an audit's ledger. */
  MODEL_CALL_LEDGER: z.string().optional().transform((v) => v || undefined),
  /** The team's npm registry for in-flight packages; unset: the embedded Verdaccio that `npm start` runs. */
  NPM_REGISTRY_URL: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  /** Publishes the run's prereleases to NPM_REGISTRY_URL (an automation token that may publish the packages). */
  NPM_REGISTRY_TOKEN: z.string().optional().transform((v) => v || undefined),
  REGISTRY_PORT: z.coerce.number().int().min(0).max(65535).default(8745),
  /** The embedded registry's upstream for packages not published to it (e.g. https://registry.npmjs.org/); unset: offline. */
  REGISTRY_UPLINK: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  /** The demo's local pages (a PRD and its criteria) that demo requirements link; 0 picks a free port. */
  DEMO_PAGES_PORT: z.coerce.number().int().min(0).max(65535).default(8746),
  PREVIEW_PORT: z.coerce.number().int().min(0).max(65535).default(8741),
  /** The preview server's control API token (service previews); `npm start` makes one when unset. */
  PREVIEW_HOST_TOKEN: z.string().optional().transform((v) => v || undefined),
  /** Where people reach the preview server (defaults to this machine's preview port). */
  PREVIEW_BASE_URL: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  /** Chromium for preview screenshots; "none" turns screenshots off. */
  CHROMIUM_PATH: z.string().default('/usr/bin/chromium'),
  WEB_CHAT_PORT: z.coerce.number().int().min(0).max(65535).default(8742),
  /** The web chat's address when people reach it through a proxy: its host is accepted besides this machine's. */
  WEB_CHAT_PUBLIC_URL: z.string().optional().transform((v) => v || undefined).pipe(z.string().url().optional()),
  PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  /** GitHub's (or the forge's) pull request webhooks: tracking looks at once instead of at its next time. */
  WEBHOOK_PORT: z.coerce.number().int().min(0).max(65535).default(8747),
  GITHUB_WEBHOOK_SECRET: z.string().optional().transform((v) => v || undefined).pipe(z.string().min(16, 'use at least 16 characters').optional()),
  /** The install cache's size cap per worker data folder, in MiB (least recently used entries go first). */
  INSTALL_CACHE_MAX_MB: z.coerce.number().int().min(1).default(2048),
  /** Where Node.js builds for repositories that ask for another Node come from (node-linux-<arch>); "none": never fetched. */
  NODE_RUNTIME_REGISTRY: z.union([z.literal('none'), z.string().url()]).default('https://registry.npmjs.org/'),
  WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(1).optional(),
  /** The roles this worker process serves (workflows/task-queues.ts), comma-separated; all of them by default. */
  WORKER_ROLES: z
    .string()
    .default(WORKER_ROLES.join(','))
    .transform((v) => v.split(',').map((r) => r.trim()).filter(Boolean))
    .pipe(z.array(z.enum(WORKER_ROLES)).min(1, `name at least one of ${WORKER_ROLES.join(', ')}`)),
  AGENT_CONCURRENCY: z.coerce.number().int().min(1).optional(),
  WORK_CONCURRENCY: z.coerce.number().int().min(1).optional(),
  QUICK_CONCURRENCY: z.coerce.number().int().min(1).optional(),
  /** Worker Versioning (README: Deploying): "off" runs unversioned workers, as before versioning. */
  WORKER_VERSIONING: z.enum(['on', 'off']).default('on'),
  TEMPORAL_DEPLOYMENT_NAME: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _').default('change-request'),
  /** This build's id; unset: the git commit the code is checked out at (with "-dirty" for local edits). */
  WORKER_BUILD_ID: z
    .string()
    .optional()
    .transform((v) => v || undefined)
    .pipe(z.string().regex(/^[A-Za-z0-9._+-]+$/, 'letters, digits and . _ + -').optional()),
  /** The workflows worker makes its version the current one once it polls; "off" leaves that to `npm run cli -- versions current`. */
  WORKER_MAKE_CURRENT: z.enum(['on', 'off']).default('on'),
});

export interface ServiceConfig {
  temporal: { address: string; namespace: string; taskQueue: string; uiPort: number };
  catalogPath: string;
  demoScenariosPath: string;
  dataDir: string;
  forge: { port: number; url: string; token: string | undefined };
  webhooks: { port: number; secret: string | undefined };
  installCacheMaxBytes: number;
  nodeRuntimeRegistry: string | null;
  model: {
    anthropicApiKey: string | undefined;
    name: string;
    baseURL: string | undefined;
    maxTokensPerCall: number;
    maxRetries: number;
    timeoutMs: number;
    pricesFile: string | undefined;
    callLedger: string | undefined;
  };
  previews: { port: number; baseUrl: string; dir: string; chromiumPath: string | null; hostToken: string | undefined };
  /** The team's registry when NPM_REGISTRY_URL is set; otherwise the embedded one (`npm start`). */
  registry: { url: string | undefined; token: string | undefined; port: number; uplink: string | undefined; dir: string };
  webChatPort: number;
  webChatPublicUrl?: string;
  /** The demo pages `npm start` serves (demo/pages): requirement links are read from here and the forge. */
  demoPages: { port: number; url: string; dir: string };
  progressIntervalMs: number;
  /** Workflows a worker keeps in memory (unset: the worker's default). */
  workflowCacheSize: number | undefined;
  /** What a worker process serves, and how much at once. */
  workers: { roles: WorkerRole[]; concurrency: Partial<Record<ActivityRole, number>> };
  /** Worker Versioning; the build id is resolved by workerVersion() (worker/build-id.ts) when a worker needs it. */
  versioning: { enabled: boolean; deploymentName: string; buildId: string | undefined; makeCurrent: boolean };
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`Configuration error: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  const resolve = (p: string) => path.resolve(PROJECT_ROOT, p);
  return {
    temporal: { address: c.TEMPORAL_ADDRESS, namespace: c.TEMPORAL_NAMESPACE, taskQueue: c.TEMPORAL_TASK_QUEUE, uiPort: c.TEMPORAL_UI_PORT },
    catalogPath: resolve(c.CATALOG_PATH),
    demoScenariosPath: resolve(c.DEMO_SCENARIOS_PATH),
    dataDir: resolve(c.DATA_DIR),
    forge: { port: c.FORGE_PORT, url: c.FORGE_URL ?? `http://127.0.0.1:${c.FORGE_PORT}`, token: c.FORGE_TOKEN ?? c.GITHUB_TOKEN },
    webhooks: { port: c.WEBHOOK_PORT, secret: c.GITHUB_WEBHOOK_SECRET },
    installCacheMaxBytes: c.INSTALL_CACHE_MAX_MB * 1024 * 1024,
    nodeRuntimeRegistry: c.NODE_RUNTIME_REGISTRY === 'none' ? null : c.NODE_RUNTIME_REGISTRY,
    model: {
      anthropicApiKey: c.ANTHROPIC_API_KEY,
      name: c.ANTHROPIC_MODEL,
      baseURL: c.ANTHROPIC_BASE_URL,
      maxTokensPerCall: c.MODEL_MAX_TOKENS,
      maxRetries: c.MODEL_MAX_RETRIES,
      timeoutMs: c.MODEL_TIMEOUT_MS,
      pricesFile: c.MODEL_PRICES ? resolve(c.MODEL_PRICES) : undefined,
      callLedger: c.MODEL_CALL_LEDGER ? resolve(c.MODEL_CALL_LEDGER) : undefined,
    },
    previews: {
      port: c.PREVIEW_PORT,
      baseUrl: c.PREVIEW_BASE_URL ?? `http://127.0.0.1:${c.PREVIEW_PORT}`,
      dir: path.join(resolve(c.DATA_DIR), 'previews'),
      chromiumPath: c.CHROMIUM_PATH === 'none' ? null : c.CHROMIUM_PATH,
      hostToken: c.PREVIEW_HOST_TOKEN,
    },
    registry: { url: c.NPM_REGISTRY_URL, token: c.NPM_REGISTRY_TOKEN, port: c.REGISTRY_PORT, uplink: c.REGISTRY_UPLINK, dir: path.join(resolve(c.DATA_DIR), 'registry') },
    webChatPort: c.WEB_CHAT_PORT,
    demoPages: { port: c.DEMO_PAGES_PORT, url: `http://127.0.0.1:${c.DEMO_PAGES_PORT}`, dir: path.join(PROJECT_ROOT, 'demo', 'pages') },
    webChatPublicUrl: c.WEB_CHAT_PUBLIC_URL,
    progressIntervalMs: c.PROGRESS_INTERVAL_MS,
    workflowCacheSize: c.WORKFLOW_CACHE_SIZE,
    workers: {
      roles: [...new Set(c.WORKER_ROLES)],
      concurrency: {
        ...(c.AGENT_CONCURRENCY ? { agent: c.AGENT_CONCURRENCY } : {}),
        ...(c.WORK_CONCURRENCY ? { work: c.WORK_CONCURRENCY } : {}),
        ...(c.QUICK_CONCURRENCY ? { quick: c.QUICK_CONCURRENCY } : {}),
      },
    },
    versioning: { enabled: c.WORKER_VERSIONING === 'on', deploymentName: c.TEMPORAL_DEPLOYMENT_NAME, buildId: c.WORKER_BUILD_ID, makeCurrent: c.WORKER_MAKE_CURRENT === 'on' },
  };
}

/** Hosts a requirement's links are always read from: the service's own forge, its web chat (attachments) and the demo pages. */
export function serviceContextHosts(config: ServiceConfig): string[] {
  const webChat = [`http://127.0.0.1:${config.webChatPort}`, ...(config.webChatPublicUrl ? [config.webChatPublicUrl] : [])];
  return [config.forge.url, config.demoPages.url, ...webChat].map((url) => new URL(url).host);
}

/** The catalog substitutes ${FORGE_URL}; make sure it is set to what this process uses. */
export function catalogEnvironment(config: ServiceConfig, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, FORGE_URL: env.FORGE_URL ?? config.forge.url };
}
