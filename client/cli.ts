// The command line for people and operators: start a change request, follow it, answer it.
//   npm run cli -- demos | start | show | watch | confirm | feedback | context | approve | cancel | list
import os from 'node:os';
import { Command, Option } from 'commander';
import { demoRequirementText, loadScenarioBook } from '../activities/agent/scenarios';
import { readOutbox } from '../activities/notify';
import { evictBeyond, listInstallCache } from '../activities/install-cache';
import { AutonomySchema, PHASES, TERMINAL_PHASES, type Phase, type RunState } from '../domain/contracts';
import { DurationMsSchema } from '../domain/duration';
import { catalogEnvironment, readConfig } from '../worker/config';
import { loadCatalog } from '../domain/catalog-loader';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { formatDeployment, formatState, formatTranscript } from './format';
import { formatTimeline, OperatorError } from './operator';
import { replayAgainstCurrentCode } from './replay';
import { executeCommand, type InputCommand } from './execute-command';
import type { SignalName } from '../domain/human-inputs';
import { CLI_INPUTS, type CliInput } from './input-commands';
import { composeCli } from './compose';
import { newKey, RefusedError, UnknownRunError, UnreachableError } from './gateway';

const config = readConfig();

const { gateway, operator, deployments } = composeCli(config);

/** Progress for long operations goes to stderr, so stdout stays clean for `export` and pipes. */
function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Who is acting: `--as`, else CR_USER. Never the machine's login name: on a shared box or in CI that is
 * `root`, and a decision recorded as root's says nothing about who made it.
 */
async function person(options: { as?: string }): Promise<string> {
  const named = (options.as ?? process.env.CR_USER)?.trim();
  if (named) return named;
  const known = await knownPeople();
  throw new RefusedError(`say who you are with --as <person> or CR_USER=<person>${known.length ? `; the catalog knows ${known.join(', ')}` : ''}`);
}

/** The handles the catalog names (people, owners, access lists, groups); none if it cannot be read. */
async function knownPeople(): Promise<string[]> {
  const catalog = await loadCatalog(config.catalogPath, catalogEnvironment(config)).catch(() => null);
  if (!catalog) return [];
  const principals = [
    ...Object.keys(catalog.people),
    ...Object.values(catalog.groups).flat(),
    ...catalog.repositories.flatMap((repo) => [...repo.owners, ...repo.access]),
  ];
  return [...new Set(principals.filter((p) => p !== '*' && !p.startsWith('group:')))].sort();
}

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name('npm run cli --')
  .description('Change requests: from a requirement to reviewed pull requests across repositories.')
  .showHelpAfterError();

const asOption = new Option('--as <person>', 'who you are (else $CR_USER; one of them is required to act)');
const keyOption = new Option('--key <key>', 'idempotency key (a repeated key changes nothing)');

program
  .command('demos')
  .description('list the requirements the scripted demo model can work on')
  .action(async () => {
    for (const scenario of await loadScenarioBook(config.demoScenariosPath)) {
      console.log(`${scenario.id.padEnd(16)} ${demoRequirementText(scenario.requirement, config.demoPages.url)}`);
    }
    console.log('\nStart one with:  npm run cli -- start --as <person> "<requirement>"');
  });

program
  .command('start')
  .description('start a change request')
  .argument('<requirement...>', 'what should change, in plain words')
  .addOption(new Option('--autonomy <preset>', 'fixed | guided | free (default: the catalog policy)').choices(AutonomySchema.options))
  .option('--repos <ids>', 'repositories to change (needed for --autonomy fixed)', list)
  .option('--id <runId>', 'run id (default: a new one)')
  .addOption(asOption)
  .action(async (words: string[], options: { autonomy?: 'fixed' | 'guided' | 'free'; repos?: string[]; id?: string; as?: string }) => {
    const gw = await gateway();
    const { runId, alreadyStarted } = await gw.start(
      { requirement: words.join(' '), requester: await person(options), autonomy: options.autonomy, repos: options.repos, conversation: { platform: 'cli', channel: os.hostname() } },
      options.id,
    );
    console.log(alreadyStarted ? `Run ${runId} was already started.` : `Started ${runId}.`);
    console.log(`Follow it with:  npm run cli -- watch ${runId}`);
  });

program
  .command('show')
  .description("show a run's state")
  .argument('<runId>')
  .option('--summary', 'include the combined change summary')
  .option('--json', 'print the raw state as JSON')
  .action(async (runId: string, options: { summary?: boolean; json?: boolean }) => {
    const state = await (await gateway()).state(runId);
    if (options.json) return console.log(JSON.stringify(state, null, 2));
    console.log(formatState(state, { summary: options.summary }));
    const messages = await readOutbox(config.dataDir, runId);
    for (const message of messages) console.log(`message ${new Date(message.at).toISOString()}: ${message.text}`);
  });

program
  .command('transcript')
  .description("what an agent step did, turn by turn: the model's words, tool calls and results, usage and cost")
  .argument('<runId>')
  .argument('[id]', 'transcript id, e.g. web-app-r1 (omit to list them)')
  .action(async (runId: string, id: string | undefined) => {
    const gw = await gateway();
    if (!id) {
      const { transcripts } = await gw.state(runId);
      if (transcripts.length === 0) return console.log('No transcripts yet.');
      for (const t of transcripts) console.log(`${t.id.padEnd(18)} ${t.step} (${t.turns} turns)`);
      return;
    }
    const transcript = await gw.transcript(runId, id);
    if (!transcript) throw new UnknownRunError(`run ${runId} has no transcript ${id}`);
    console.log(formatTranscript(transcript));
  });

program
  .command('watch')
  .description('follow a run until it waits for people or ends')
  .argument('<runId>')
  .action(async (runId: string) => {
    const gw = await gateway();
    let seen = -1;
    for (;;) {
      const state: RunState = await gw.state(runId);
      if (state.version !== seen) {
        seen = state.version;
        console.log(`\n${formatState(state)}`);
      }
      if (state.phase.startsWith('awaiting_') || TERMINAL_PHASES.includes(state.phase)) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  });

// One subcommand per human input the CLI has (client/input-commands.ts), sent through the gateway.
for (const [signal, spec] of Object.entries(CLI_INPUTS) as [SignalName, CliInput<SignalName> | null][]) {
  if (!spec) continue;
  const sub = program.command(spec.command).description(spec.description).argument('<runId>');
  for (const argument of spec.arguments ?? []) sub.argument(argument.name, argument.description);
  for (const option of spec.options ?? []) sub.addOption(option);
  sub
    .addOption(asOption)
    .addOption(keyOption)
    .action(async (runId: string, ...rest: unknown[]) => {
      // commander passes the positional arguments, then the options, then the command itself.
      const positional = rest.slice(0, -2);
      const options = rest.at(-2) as Record<string, unknown> & { as?: string; key?: string };
      const gw = await gateway();
      const fields = await spec.fields({ positional, options, gateway: gw, runId });
      await executeCommand(gw, { kind: signal, runId, payload: { by: await person(options), key: options.key ?? newKey('cli'), ...fields } } as InputCommand);
      console.log(spec.done(fields));
    });
}

// ---- operators ----

program
  .command('install-cache')
  .description("this machine's install cache (DATA_DIR/install-cache): entries by last use, their sizes and the cap (INSTALL_CACHE_MAX_MB); --trim applies the cap now")
  .option('--trim', 'remove the entries used longest ago until the cache is under its cap')
  .action(async (options: { trim?: boolean }) => {
    const dir = path.join(config.dataDir, 'install-cache');
    const evicted = options.trim ? await evictBeyond(dir, config.installCacheMaxBytes) : [];
    const entries = await listInstallCache(dir);
    const mib = (bytes: number) => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`);
    const total = entries.reduce((sum, e) => sum + e.bytes, 0);
    console.log(`Install cache ${dir}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${mib(total)} of ${mib(config.installCacheMaxBytes)}`);
    for (const e of entries) console.log(`  ${e.repo.padEnd(20)} ${e.key.slice(0, 12)}  ${mib(e.bytes).padStart(11)}  last used ${e.lastUsed.toISOString().slice(0, 19)}`);
    if (evicted.length) console.log(`Removed ${evicted.length}: ${evicted.map((e) => `${e.repo} ${e.key.slice(0, 12)} (${mib(e.bytes)})`).join(', ')}`);
  });

const versions = program
  .command('versions')
  .description("Worker Versioning: this deployment's builds, which is current, who serves each and how many runs are pinned to it")
  .action(async () => console.log(formatDeployment(await (await deployments()).report())));

versions
  .command('current')
  .description('make a build current: new runs start on it; runs already going stay on the build that started them')
  .argument('<buildId>')
  .action(async (buildId: string) => {
    const { previous } = await (await deployments()).makeCurrent(buildId);
    console.log(`Build ${buildId} is current${previous && previous !== buildId ? ` (was ${previous}; its runs stay pinned to it until they end or are moved)` : ''}.`);
  });

versions
  .command('move')
  .description("move the runs pinned to a build onto the current one, each only if its history replays against this checkout's workflow code")
  .requiredOption('--from <buildId>', 'the build whose runs move')
  .action(async (options: { from: string }) => {
    progress('Bundling the current workflow code and replaying each run…');
    const { moved, kept } = await (await deployments()).moveRuns(options.from, replayAgainstCurrentCode);
    console.log(`Moved ${moved.length} run${moved.length === 1 ? '' : 's'} from build ${options.from}${moved.length ? `: ${moved.join(', ')}` : ''}.`);
    for (const { runId, reason } of kept) console.log(`Kept ${runId} on ${options.from}: it ${reason}`);
    if (kept.length) process.exitCode = 1;
  });

const runs = program.command('runs').description('operate on runs: find failed ones, understand them, get them going again');

runs
  .command('list')
  .description('runs from Temporal visibility, newest first')
  .option('--failed', 'only failed runs')
  .addOption(new Option('--phase <phase>').choices([...PHASES]))
  .option('--requester <person>')
  .option('--repo <id>', 'runs that touch this repository')
  .option('--since <when>', 'started after this ISO date, or this long ago (e.g. 2h, 3d)')
  .option('--limit <n>', 'at most this many', (v) => Number(v), 50)
  .action(async (options: { failed?: boolean; phase?: Phase; requester?: string; repo?: string; since?: string; limit: number }) => {
    const since = options.since ? parseSince(options.since) : undefined;
    const found = await (await gateway()).list({ ...options, since });
    if (found.length === 0) return console.log('No runs match.');
    const width = Math.max(...found.map((r) => r.runId.length), 3);
    const buildWidth = Math.max(...found.map((r) => (r.build ?? '-').length), 5);
    console.log(`${'RUN'.padEnd(width)}  ${'STATUS'.padEnd(10)} ${'PHASE'.padEnd(22)} ${'STARTED'.padEnd(17)} ${'BUILD'.padEnd(buildWidth)} SUMMARY`);
    for (const run of found) console.log(`${run.runId.padEnd(width)}  ${run.status.padEnd(10)} ${(run.phase ?? '?').padEnd(22)} ${run.startTime.toISOString().slice(0, 16).padEnd(17)} ${(run.build ?? '-').padEnd(buildWidth)} ${run.summary ?? ''}`);
  });

runs
  .command('show')
  .description('timeline of phases and activities with durations, attempts, errors and budget')
  .argument('<runId>')
  .action(async (runId: string) => console.log(formatTimeline(await (await operator()).timeline(runId))));

runs
  .command('export')
  .description("the run's history as JSON, to stdout or --out (through npm, use `npm run -s cli` or --out: npm prints a banner on stdout)")
  .argument('<runId>')
  .option('--out <file>', 'write the history to this file instead of stdout')
  .action(async (runId: string, options: { out?: string }) => {
    const history = await (await operator()).exportHistory(runId);
    if (!options.out) return console.log(history);
    await fs.writeFile(options.out, `${history}\n`);
    progress(`Wrote the history of ${runId} to ${options.out} (${Buffer.byteLength(history)} bytes). Replay it with: npm run cli -- runs replay --history ${options.out}`);
  });

runs
  .command('replay')
  .description("replay a run's history against the current workflow code and report any non-determinism")
  .argument('[runId]')
  .option('--history <file>', 'a history exported with `runs export` (or from the Temporal UI)')
  .action(async (runId: string | undefined, options: { history?: string }) => {
    if (!runId && !options.history) throw new RefusedError('give a run id or --history <file>');
    const ops = await (options.history ? Promise.resolve(null) : operator());
    const history = options.history ? JSON.parse(await fs.readFile(options.history, 'utf8')) : await ops!.history(runId!);
    progress('Bundling the current workflow code and replaying…');
    const result = await replayAgainstCurrentCode(history, runId ?? path.basename(options.history!));
    if (result.ok) return console.log('Replayed cleanly: the current code makes the same decisions.');
    throw new RefusedError(`non-determinism${result.eventId ? ` at event ${result.eventId}` : ''}: ${result.message}`);
  });

runs
  .command('reset')
  .description('reset a run to the workflow task just before a phase began, so that phase runs again')
  .argument('<runId>')
  .requiredOption('--to <phase>', 'the phase to run again, e.g. editing')
  .option('--no-signals', 'do not re-apply signals received after that point')
  .option('--reason <text>', 'recorded with the reset', 'reset by an operator')
  .action(async (runId: string, options: { to: string; signals: boolean; reason: string }) => {
    const phase = PHASES.find((p) => p === options.to);
    if (!phase) throw new RefusedError(`unknown phase "${options.to}" (phases: ${PHASES.join(', ')})`);
    const { newRunId, eventId } = await (await operator()).reset(runId, phase, { reapplySignals: options.signals, reason: options.reason });
    console.log(`Reset ${runId} to event ${eventId}; it runs again from just before ${phase} (new execution ${newRunId}${options.signals ? ', later signals re-applied' : ''}).`);
  });

runs
  .command('retry')
  .description('start a new run with the same input, linked to the old one')
  .argument('<runId>')
  .action(async (runId: string) => {
    const { newRunId } = await (await operator()).retry(runId);
    console.log(`Started ${newRunId} (a retry of ${runId}).`);
  });

function parseSince(text: string): Date {
  const duration = DurationMsSchema.safeParse(text);
  if (duration.success) return new Date(Date.now() - duration.data);
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new RefusedError(`--since takes an ISO date or a duration such as 2h, got "${text}"`);
  return date;
}

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (error: unknown) => {
    const known = error instanceof RefusedError || error instanceof UnknownRunError || error instanceof UnreachableError || error instanceof OperatorError;
    console.error(known ? (error as Error).message : `error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
