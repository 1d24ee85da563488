// `npm run eval -- [--model <id>]... [--cases <evals.yaml>] [--pass-rate 0.8] [--json <file>]`
// Runs every eval case through the real workflow with each model named (all agent steps on that model),
// prints progress while it runs, then a table, the JSON report (to --json, default
// .data/evals/<time>.json) and the verdict. Without ANTHROPIC_API_KEY it runs on the scripted demo model,
// which plays only the bundled demo requirements: that proves the harness, not a model.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { quietSdkLogs } from '../worker/create-worker';
import { PROJECT_ROOT } from '../worker/config';
import { loadCatalog } from '../domain/catalog-loader';
import { SCRIPTED_MODEL_NAME } from '../activities/agent/lineup';
import { loadEvalCases } from './cases';
import { renderTable, summarize, type EvalReport } from './report';
import { runCase, type CaseResult } from './run-case';
import { DEFAULT_EVALS_FILE, startEvalWorld } from './world';

export interface EvalOptions {
  models: string[];
  casesFile: string;
  catalogPath: string;
  reposDir: string;
  passRate: number;
  caseTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

export async function runEvals(options: EvalOptions): Promise<EvalReport> {
  const progress = options.progress ?? (() => undefined);
  const env = options.env ?? process.env;
  if (!env.ANTHROPIC_API_KEY && options.models.length > 0) {
    throw new Error(`--model needs ANTHROPIC_API_KEY: without a key only the scripted demo model runs (leave out --model).`);
  }
  const catalog = await loadCatalog(options.catalogPath, { ...env, FORGE_URL: env.FORGE_URL ?? 'http://127.0.0.1:1' });
  const cases = await loadEvalCases(options.casesFile, catalog.repositories.map((r) => r.id));
  // The catalog's packages are in the registry at their released version before the first run, as apps need.
  const releasedPackages = catalog.repositories.filter((r) => r.publish).map((r) => r.id);
  const world = await startEvalWorld({ catalogPath: options.catalogPath, reposDir: options.reposDir, releasedPackages, env, log: progress });
  try {
    progress(`model service: ${world.modelDescription}`);
    const models = world.isDemo ? [SCRIPTED_MODEL_NAME] : options.models.length ? options.models : [world.config.model.name];
    const results: CaseResult[] = [];
    const total = models.length * cases.cases.length;
    for (const model of models) {
      await world.useModel(world.isDemo ? null : model);
      for (const evalCase of cases.cases) {
        progress(`[${results.length + 1}/${total}] ${evalCase.id} on ${model}`);
        results.push(await runCase(world, model, evalCase, { evalDir: cases.dir, timeoutMs: options.caseTimeoutMs, progress }));
      }
    }
    return summarize(results, options.passRate, { cases: path.relative(PROJECT_ROOT, cases.file) || cases.file, modelService: world.modelDescription });
  } finally {
    await world.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true, default: [] },
      cases: { type: 'string', default: DEFAULT_EVALS_FILE },
      'pass-rate': { type: 'string', default: '0.8' },
      json: { type: 'string' },
      'case-timeout': { type: 'string', default: '1200' },
    },
  });
  const passRate = Number(values['pass-rate']);
  if (!(passRate > 0 && passRate <= 1)) throw new Error('--pass-rate is a fraction above 0 and at most 1, e.g. 0.8');
  quietSdkLogs();
  const casesFile = path.resolve(values.cases);
  const report = await runEvals({
    models: values.model,
    casesFile,
    // The catalog beside the cases (evals.yaml sits next to catalog.yaml), else the configured one.
    catalogPath: process.env.CATALOG_PATH ? path.resolve(process.env.CATALOG_PATH) : path.join(path.dirname(casesFile), 'catalog.yaml'),
    reposDir: path.join(path.dirname(casesFile), 'repos'),
    passRate,
    caseTimeoutMs: Number(values['case-timeout']) * 1000,
    progress: (line) => console.error(`eval: ${line}`),
  });
  const jsonFile = path.resolve(values.json ?? path.join(PROJECT_ROOT, '.data', 'evals', `${report.at.replace(/[:.]/g, '-')}.json`));
  await fs.mkdir(path.dirname(jsonFile), { recursive: true });
  await fs.writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(renderTable(report));
  console.log(`\nJSON: ${path.relative(process.cwd(), jsonFile)}`);
  process.exitCode = report.verdict.model ? 0 : 2;
}

if (require.main === module) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
