// Which model serves this worker: the scripted demo model unless a model key is configured.
import { loadScenarioBook } from '../activities/agent/scenarios';
import type { ModelProvider } from '../activities/agent/model';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import type { ServiceConfig } from './config';

export async function chooseModelProvider(config: ServiceConfig): Promise<ModelProvider> {
  // The Anthropic adapter arrives with the agent's budgets (issue 3); until then every worker plays the demo.
  return new ScriptedModelProvider(await loadScenarioBook(config.demoScenariosPath));
}
