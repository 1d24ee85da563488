// An append-only ledger of every model answer a worker received: one JSON line per call with the run,
// the step and the usage, never the words. It is what `npm run soak` holds the runs' recorded spend
// against (spend is lost when a run records less than its answers used), and an operator's audit of
// model use per run. Written before the answer is handed on, so an answer the worker died holding counts.
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AgentTask, ModelProvider } from './model';

export interface LedgerLine {
  runId: string;
  kind: AgentTask['kind'];
  repo: string | null;
  round: number | null;
  model: string;
  inputTokens: number;
  outputTokens: number;
  at: number;
}

export function withCallLedger(provider: ModelProvider, file: string): ModelProvider {
  mkdirSync(path.dirname(file), { recursive: true });
  return {
    description: provider.description,
    isDemo: provider.isDemo,
    defaultModel: provider.defaultModel,
    forTask: (task, choice) => {
      const model = provider.forTask(task, choice);
      return {
        name: model.name,
        complete: async (...args: Parameters<typeof model.complete>) => {
          const response = await model.complete(...args);
          const line: LedgerLine = {
            runId: task.runId,
            kind: task.kind,
            repo: task.kind === 'edit' ? task.repo : null,
            round: task.kind === 'edit' ? task.round : null,
            model: model.name,
            inputTokens: response.usage.inputTokens,
            outputTokens: response.usage.outputTokens,
            at: Date.now(),
          };
          // One write(2) with O_APPEND per line: lines of concurrent steps and processes never interleave.
          appendFileSync(file, `${JSON.stringify(line)}\n`);
          return response;
        },
      };
    },
  };
}
