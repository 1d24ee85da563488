// `npm run bench` — runs the benchmarks (all, or the ones named), prints a readable table per benchmark
// on stdout, writes one JSON document to bench/results.json, and with --write-docs puts the figures into
// docs/benchmarks.md. Goals are compared and reported as met / not met, never asserted.
//
//   npm run bench                              all: im-latency, polls, orchestration, git, changeset, scale
//   npm run bench -- im-latency                one (several may be named)
//   npm run bench -- scale --runs 200          fewer runs for a quick try (default 1000)
//   npm run bench -- scale --finish-timeout 0  wait until all confirmed runs have finished (default: 720 s)
//   npm run bench -- changeset --changeset-samples 3   fewer samples per path in both change-set cases
//   npm run bench -- --quick                   smaller everything (a smoke test of the benchmarks)
//   npm run bench -- --json                    the JSON document on stdout instead of the tables
//   npm run bench -- --write-docs              also update docs/benchmarks.md
//
// Progress goes to stderr. Each benchmark starts and tears down its own Temporal dev server, forge and
// worker, so they do not disturb each other.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import { writeDocs } from './docs';
import { changesetBenchmark } from './changeset';
import { imLatencyBenchmark } from './im-latency';
import { describeMachine, type MachineDescription } from './machine';
import { orchestrationBenchmark } from './orchestration';
import { pollsBenchmark } from './polls';
import { renderTable, unavailable, type BenchResult } from './report';
import { scaleBenchmark } from './scale';
import { cleanUpEnvironment, log, prepareEnvironment, PROJECT_ROOT, stopEverything } from './world';

export type { BenchResult } from './report';

const ORDER = ['im-latency', 'polls', 'orchestration', 'git', 'changeset', 'scale'] as const;
type BenchName = (typeof ORDER)[number];

interface Options {
  runs?: number;
  finishTimeout?: number;
  samples?: number;
  parked?: number;
  load?: number;
  repeats?: number;
  changesetSamples?: number;
  quick: boolean;
  json: boolean;
  writeDocs: boolean;
  out: string;
}

/**
 * bench/git.ts is written separately: loaded only when the git benchmark runs, and reported as not
 * available (instead of failing the others) when it is missing or does not load.
 */
async function runGit(options: Options): Promise<BenchResult> {
  let mod: typeof import('./git');
  try {
    mod = require('./git') as typeof import('./git');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      return unavailable('git', `bench/git.ts could not be loaded: ${(error as Error).message.split('\n')[0]}`);
    }
    throw error;
  }
  if (typeof mod.gitBenchmark !== 'function') return unavailable('git', 'bench/git.ts does not export gitBenchmark');
  return mod.gitBenchmark({ quick: options.quick });
}

const BENCHMARKS: Record<BenchName, (options: Options) => Promise<BenchResult>> = {
  'im-latency': (o) =>
    imLatencyBenchmark({
      ...(o.quick ? { samples: o.samples ?? 40, warmup: 10, presses: 15 } : { ...(o.samples ? { samples: o.samples } : {}) }),
      ...(o.parked ? { parked: o.parked } : {}),
      ...(o.load ? { load: o.load } : {}),
    }),
  polls: (o) => pollsBenchmark(o.quick ? { windowMs: 2000 } : {}),
  orchestration: (o) => orchestrationBenchmark({ repeats: o.repeats ?? (o.quick ? 2 : undefined) }),
  git: runGit,
  changeset: (o) => changesetBenchmark({ quick: o.quick, demoSamples: o.changesetSamples, realSamples: o.changesetSamples }),
  scale: (o) => scaleBenchmark({ runs: o.runs ?? (o.quick ? 100 : undefined), finishTimeoutMs: o.finishTimeout === 0 ? Number.POSITIVE_INFINITY : (o.finishTimeout ?? DEFAULT_FINISH_TIMEOUT_S) * 1000 }),
};

/**
 * How long `scale` waits for its confirmed runs to finish by default, so that the whole `npm run bench`
 * stays near 15 minutes on the two-core machine in docs/benchmarks.md; 0 waits until all have finished.
 */
const DEFAULT_FINISH_TIMEOUT_S = 720;

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number (0 or more)');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** Which code was measured: the commit, and the service's files that differed from it. */
async function sourceState(): Promise<{ commit: string; uncommitted: string[] }> {
  const git = (args: string[]) => promisify(execFile)('git', args, { cwd: PROJECT_ROOT }).then(({ stdout }) => stdout, () => '');
  const commit = (await git(['rev-parse', '--short', 'HEAD'])).trim() || 'unknown';
  const status = await git(['status', '--porcelain', '--', 'activities', 'workflows', 'worker', 'domain', 'client', 'im-adapters', 'forge']);
  return { commit, uncommitted: status.split('\n').filter(Boolean).map((line) => line.slice(3)) };
}

async function main(): Promise<void> {
  const program = new Command()
    .name('npm run bench --')
    .description('Benchmarks of the change-request service (see docs/benchmarks.md)')
    .argument('[benchmarks...]', `which to run, in this order: ${ORDER.join(', ')} (default: all)`)
    .option('--runs <n>', 'scale: how many runs to park and confirm (default 1000)', positiveInt)
    .option('--finish-timeout <seconds>', `scale: stop waiting for the confirmed runs to finish after this long (default ${DEFAULT_FINISH_TIMEOUT_S}; 0: until all have)`, wholeNumber)
    .option('--samples <n>', 'im-latency: measured actions per path (default 200)', positiveInt)
    .option('--parked <n>', 'im-latency: runs parked at confirmation before measuring (issue 16: 1000)', positiveInt)
    .option('--load <n>', 'im-latency: runs kept going through edits and checks while measuring', positiveInt)
    .option('--repeats <n>', 'orchestration: measured runs per configuration (default 5)', positiveInt)
    .option('--changeset-samples <n>', 'changeset: samples per path in each case (default 7 for the demo, 5 for the real tree)', positiveInt)
    .option('--quick', 'smaller everything: a smoke test of the benchmarks, not figures to keep', false)
    .option('--json', 'print the JSON document on stdout instead of the tables', false)
    .option('--write-docs', 'write the figures and the machine into docs/benchmarks.md', false)
    .option('--out <file>', 'where to write the JSON document', path.join(PROJECT_ROOT, 'bench', 'results.json'))
    .showHelpAfterError();
  program.parse(process.argv);
  const names = program.args as string[];
  const options = program.opts<Options>();
  const unknown = names.filter((n) => !(ORDER as readonly string[]).includes(n));
  if (unknown.length) program.error(`unknown benchmark: ${unknown.join(', ')} (choose from ${ORDER.join(', ')})`);
  const selected = ORDER.filter((n) => names.length === 0 || names.includes(n));

  const { temporalCli } = await prepareEnvironment();
  const machine: MachineDescription = await describeMachine(temporalCli);
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}, ${machine.temporalCli}`);

  const results: BenchResult[] = [];
  const durations: Record<string, number> = {};
  let crashed = false;
  for (const name of selected) {
    const loadBefore = os.loadavg()[0]!;
    log(`${name}: starting (load average ${loadBefore.toFixed(2)} on ${machine.cores} cores)`);
    if (loadBefore > machine.cores / 2) log(`${name}: the machine is busy with other work; figures will be noisy`);
    const t0 = Date.now();
    let result: BenchResult;
    try {
      result = await BENCHMARKS[name](options);
    } catch (error) {
      crashed = true;
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`${name}: failed: ${message}`);
      result = { name, figures: { status: 'failed' }, goals: [], notes: [`the benchmark did not complete: ${message.split('\n')[0]}`] };
    }
    durations[name] = Math.round((Date.now() - t0) / 100) / 10;
    const loadAfter = os.loadavg()[0]!;
    result.notes = [...(result.notes ?? []), `1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (${machine.cores} cores); took ${durations[name]} s`];
    log(`${name}: finished in ${durations[name]} s`);
    results.push(result);
    if (!options.json) process.stdout.write(`${renderTable(result)}\n\n`);
  }

  const document = { machine, source: await sourceState(), options: { benchmarks: selected, ...options }, durationsSeconds: durations, results };
  await fs.mkdir(path.dirname(options.out), { recursive: true });
  await fs.writeFile(options.out, `${JSON.stringify(document, null, 2)}\n`);
  if (options.json) process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  else process.stdout.write(`JSON: ${path.relative(process.cwd(), options.out) || options.out}\n`);
  if (options.writeDocs) {
    const command = ['npm run bench', ...(process.argv.slice(2).length ? ['--', ...process.argv.slice(2)] : [])].join(' ');
    const problems = await writeDocs(path.join(PROJECT_ROOT, 'docs', 'benchmarks.md'), machine, results, command);
    for (const p of problems) log(p);
    log('docs/benchmarks.md updated');
  }
  await cleanUpEnvironment();
  if (crashed) process.exitCode = 1;
}

// Interrupted: stop the servers and workers this run started (they would otherwise outlive it).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping what the benchmarks started`);
    void stopEverything()
      .then(cleanUpEnvironment)
      .finally(() => process.exit(130));
  });
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  // Temporal's native runtime can keep the process alive after everything was closed.
  .finally(() => setTimeout(() => process.exit(), 100));
