// Which model serves this worker (Anthropic when a key is set, the scripted demo model otherwise), what
// each model costs, and which secrets must never reach a prompt or a transcript.
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { AnthropicModelProvider } from '../activities/agent/anthropic-model';
import { DEFAULT_PRICES, LINEUP, unpricedModels, type PriceTable } from '../activities/agent/lineup';
import { modelsNamedIn, type Catalog } from '../domain/catalog-schema';
import type { ModelProvider } from '../activities/agent/model';
import { redactorFor, type Redactor } from '../activities/agent/redact';
import { loadScenarioBook } from '../activities/agent/scenarios';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import type { ServiceConfig } from './config';

export async function chooseModelProvider(config: ServiceConfig): Promise<ModelProvider> {
  const { model } = config;
  if (model.anthropicApiKey) {
    return new AnthropicModelProvider({
      apiKey: model.anthropicApiKey,
      model: model.name,
      baseURL: model.baseURL,
      maxRetries: model.maxRetries,
      timeoutMs: model.timeoutMs,
    });
  }
  return new ScriptedModelProvider(await loadScenarioBook(config.demoScenariosPath));
}

const PriceFileSchema = z.record(
  z.string(),
  z.object({ input: z.number().nonnegative(), output: z.number().nonnegative(), cacheWrite: z.number().nonnegative(), cacheRead: z.number().nonnegative(), cacheWrite1h: z.number().nonnegative().optional() }).strict(),
);

/** The default price list, with MODEL_PRICES' entries added or replacing defaults. */
export async function loadPrices(config: ServiceConfig): Promise<PriceTable> {
  if (!config.model.pricesFile) return DEFAULT_PRICES;
  const parsed = PriceFileSchema.safeParse(JSON.parse(await fs.readFile(config.model.pricesFile, 'utf8')));
  if (!parsed.success) throw new Error(`MODEL_PRICES ${config.model.pricesFile}: ${z.prettifyError(parsed.error)}`);
  return { ...DEFAULT_PRICES, ...parsed.data };
}

/**
 * Refuses to start a worker that would call a model it cannot price, its own or one the catalog chooses
 * for a step: that step's money budget could not be enforced. (A catalog changed later is checked again
 * by each step, which then fails plainly without calling the model.)
 */
export function assertPriced(provider: ModelProvider, prices: PriceTable, catalog: Pick<Catalog, 'policy' | 'repositories'>): void {
  if (provider.isDemo) return;
  const missing = unpricedModels([provider.defaultModel, ...modelsNamedIn(catalog)], prices);
  if (missing.length > 0) {
    throw new Error(`No price is configured for ${missing.map((m) => `"${m}"`).join(', ')}; add ${missing.length === 1 ? 'it' : 'them'} to a MODEL_PRICES file so budgets can be enforced (known: ${Object.keys(LINEUP).join(', ')}).`);
  }
}

/** The environment variables the catalog's installCredentials name. */
export function installTokenNames(catalog: Pick<Catalog, 'repositories'>): string[] {
  return [...new Set(catalog.repositories.flatMap((repo) => (repo.installCredentials ?? []).map((c) => c.tokenEnv)))];
}

export function missingInstallTokens(catalog: Pick<Catalog, 'repositories'>, env: NodeJS.ProcessEnv = process.env): string[] {
  return installTokenNames(catalog).filter((name) => !env[name]);
}

/** Every secret the worker knows, including the install tokens the catalog names, masked wherever output goes. */
export function secretsRedactor(config: ServiceConfig, env: NodeJS.ProcessEnv = process.env, catalog?: Pick<Catalog, 'repositories'>): Redactor {
  return redactorFor([
    ...(catalog ? installTokenNames(catalog).map((name) => env[name]) : []),
    config.model.anthropicApiKey,
    config.forge.token,
    env.GITHUB_TOKEN,
    env.FORGE_TOKEN,
    env.GITHUB_APP_PRIVATE_KEY,
    env.SLACK_BOT_TOKEN,
    env.SLACK_SIGNING_SECRET,
    env.SLACK_APP_TOKEN,
    env.LARK_APP_SECRET,
    env.LARK_ENCRYPT_KEY,
    env.LARK_VERIFICATION_TOKEN,
    config.registry.token,
    config.previews.hostToken,
  ]);
}
