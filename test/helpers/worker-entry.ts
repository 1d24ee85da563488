// A worker in its own process, so a test can kill it with SIGKILL the way a machine dies.
// Configured by environment variables set by test/helpers/worker-process.ts. Optional: CR_PUBLISH_DELAY_MS
// (a pause after each pull-request request), and CR_SLACK_BOT_TOKEN with CR_SLACK_API_URL (runs whose
// conversation is a Slack thread post their card and messages there, through a Slack channel).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { ScenarioSchema } from '../../activities/agent/scenarios';
import { ScriptedModelProvider } from '../../activities/agent/scripted-model';
import type { ModelProvider } from '../../activities/agent/model';
import { DEFAULT_PRICES } from '../../activities/agent/pricing';
import { redactorFor } from '../../activities/agent/redact';
import { tokenForgeAccess, type ForgeAccess } from '../../activities/forge-access';
import { Conversations, OutboxChannel } from '../../activities/notify';
import { SlackChannel } from '../../im-adapters/slack/channel';
import { loadCatalog } from '../../domain/catalog-loader';
import { createChangeRequestWorker, progressReporterVia, spendLedgerVia } from '../../worker/create-worker';
import { connectClient } from '../../client/connect';

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  const scenarios = ScenarioSchema.array().parse(JSON.parse(await fs.readFile(env('CR_SCENARIOS_FILE'), 'utf8')));
  const client = await connectClient(env('CR_TEMPORAL_ADDRESS'), env('CR_NAMESPACE'));
  const connection = await NativeConnection.connect({ address: env('CR_TEMPORAL_ADDRESS') });
  const dataDir = env('CR_DATA_DIR');
  const worker = await createChangeRequestWorker({
    connection,
    namespace: env('CR_NAMESPACE'),
    taskQueue: env('CR_TASK_QUEUE'),
    workflowBundle: { codePath: env('CR_TEST_WORKFLOW_BUNDLE') },
    identity: `child-worker-${process.pid}`,
    deps: {
      loadCatalog: () => loadCatalog(env('CR_CATALOG')),
      dataDir,
      models: dyingAfterAnswers(new ScriptedModelProvider(scenarios, 'test scenarios'), Number(process.env.CR_KILL_AFTER_MODEL_ANSWERS ?? 0)),
      prices: DEFAULT_PRICES,
      maxTokensPerCall: 4096,
      redact: redactorFor([env('CR_FORGE_TOKEN'), env('CR_REGISTRY_TOKEN'), env('CR_PREVIEW_TOKEN')]),
      forge: withPublishDelay(tokenForgeAccess(env('CR_FORGE_TOKEN')), Number(process.env.CR_PUBLISH_DELAY_MS ?? 0)),
      reportProgress: progressReporterVia(client),
      spendLedger: spendLedgerVia(client),
      conversations: new Conversations(new OutboxChannel(dataDir), slackChannels()),
      previews: { dir: env('CR_PREVIEW_DIR'), baseUrl: env('CR_PREVIEW_URL'), chromiumPath: '/usr/bin/chromium', viewport: { width: 1024, height: 640 }, host: { url: env('CR_PREVIEW_URL'), token: env('CR_PREVIEW_TOKEN') } },
      registry: { url: env('CR_REGISTRY_URL'), token: env('CR_REGISTRY_TOKEN') },
      progressIntervalMs: 0,
    },
  });
  await fs.mkdir(path.dirname(env('CR_READY_FILE')), { recursive: true });
  const running = worker.run();
  await fs.writeFile(env('CR_READY_FILE'), String(process.pid));
  await running;
}

/**
 * Fault injection for the spend-survives-a-crash test: the process dies (SIGKILL, as a machine does) the
 * moment the n-th model answer arrives, before the loop can record or report anything about it.
 */
function dyingAfterAnswers(provider: ModelProvider, answers: number): ModelProvider {
  if (!answers) return provider;
  let answered = 0;
  return {
    description: provider.description,
    isDemo: provider.isDemo,
    defaultModel: provider.defaultModel,
    forTask: (...args: Parameters<ModelProvider['forTask']>) => {
      const model = provider.forTask(...args);
      return {
        name: model.name,
        complete: async (...callArgs: Parameters<typeof model.complete>) => {
          const response = await model.complete(...callArgs);
          if (++answered >= answers) process.kill(process.pid, 'SIGKILL');
          return response;
        },
      };
    },
  };
}

/** A Slack channel when the test gives a bot token (and where its Web API is). */
function slackChannels(): ConstructorParameters<typeof Conversations>[1] {
  const token = process.env.CR_SLACK_BOT_TOKEN;
  if (!token) return {};
  const slackApiUrl = process.env.CR_SLACK_API_URL;
  return { slack: new SlackChannel({ token, ...(slackApiUrl ? { slackApiUrl } : {}) }) };
}

/**
 * Fault injection for the kill-during-publishing test: a pause after each pull-request request has been
 * carried out by the forge and before the worker records it, the window a crash is most harmful in.
 */
function withPublishDelay(access: ForgeAccess, delayMs: number): ForgeAccess {
  if (!delayMs) return access;
  return {
    ...access,
    octokit: (apiUrl) => {
      const octokit = access.octokit(apiUrl);
      octokit.hook.after('request', async (_response, options) => {
        if (String(options.url).includes('/pulls')) await new Promise((resolve) => setTimeout(resolve, delayMs));
      });
      return octokit;
    },
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
