// The Claude models this service knows: what each costs and how it wants to be called. Prices and traits
// are from the Claude platform's model overview pages (checked 2026-12-03: platform.claude.com/docs/en/
// about-claude/models/overview and each model's page). MODEL_PRICES (a JSON file) prices other models
// or corrects an entry without a release; a model missing here is called without thinking settings.

/** US dollars per million tokens. `cacheWrite` is the 5-minute write; `cacheWrite1h` the 1-hour one. */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
  cacheWrite1h?: number;
}

export type PriceTable = Record<string, ModelPrice>;

/**
 * How a model thinks. `adaptive`: the model decides (sent as `thinking: {type: "adaptive"}`, effort through
 * `output_config`; on Opus 5.5 and Fable it cannot be switched off, which this service never tries);
 * `extended`: only manual thinking with a token budget (not used here, so these models answer without).
 */
export type ThinkingMode = 'adaptive' | 'extended';

/**
 * What the adapter needs to know of a model. (This service never forces a tool and never sends sampling
 * parameters, so which models refuse those needs no entry; with no effort sent, a model uses its own default.)
 */
export interface ModelTraits {
  price: ModelPrice;
  thinking: ThinkingMode;
}

const price = (input: number, output: number, cacheWrite: number, cacheWrite1h: number, cacheRead: number): ModelPrice => ({ input, output, cacheWrite, cacheWrite1h, cacheRead });

/** Current models first; then the legacy ones still served (Sonnet 5, Opus 5, the 4.x models). */
export const LINEUP: Readonly<Record<string, ModelTraits>> = {
  'claude-sonnet-5-5': { price: price(2, 10, 2.5, 4, 0.2), thinking: 'adaptive' },
  'claude-opus-5-5': { price: price(4, 20, 5, 8, 0.2), thinking: 'adaptive' },
  'claude-fable-5-1': { price: price(10, 50, 12.5, 20, 1), thinking: 'adaptive' },
  'claude-haiku-4-5': { price: price(1, 5, 1.25, 2, 0.1), thinking: 'extended' },
  'claude-sonnet-5': { price: price(2, 10, 2.5, 4, 0.2), thinking: 'adaptive' },
  'claude-opus-5': { price: price(5, 25, 6.25, 10, 0.5), thinking: 'adaptive' },
  'claude-sonnet-4-6': { price: price(3, 15, 3.75, 6, 0.3), thinking: 'adaptive' },
  'claude-sonnet-4-5': { price: price(3, 15, 3.75, 6, 0.3), thinking: 'extended' },
  'claude-opus-4-8': { price: price(5, 25, 6.25, 10, 0.5), thinking: 'adaptive' },
  'claude-opus-4-7': { price: price(5, 25, 6.25, 10, 0.5), thinking: 'adaptive' },
  'claude-opus-4-6': { price: price(5, 25, 6.25, 10, 0.5), thinking: 'adaptive' },
  'claude-opus-4-5': { price: price(5, 25, 6.25, 10, 0.5), thinking: 'extended' },
};

/** The worker's model when ANTHROPIC_MODEL is unset: the current Sonnet. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5';

export const SCRIPTED_MODEL_NAME = 'scripted demo model';

export const DEFAULT_PRICES: PriceTable = {
  ...Object.fromEntries(Object.entries(LINEUP).map(([id, traits]) => [id, traits.price])),
  [SCRIPTED_MODEL_NAME]: { input: 0, output: 0, cacheWrite: 0, cacheRead: 0 },
};

export function traitsOf(model: string): ModelTraits | undefined {
  return LINEUP[model];
}

/** The models that must be priced before a worker starts: its own and every one the catalog names. */
export function unpricedModels(models: readonly string[], prices: PriceTable): string[] {
  return [...new Set(models)].filter((m) => !prices[m]);
}
