// The command line for people and operators: start a change request, follow it, answer it.
//   npm run cli -- demos | start | show | watch | confirm | feedback | context | approve | cancel | list
import os from 'node:os';
import { Command, Option } from 'commander';
import { loadScenarioBook } from '../activities/agent/scenarios';
import { readOutbox } from '../activities/notify';
import { AutonomySchema, PHASES, TERMINAL_PHASES, type Phase, type RunState } from '../domain/contracts';
import { DurationMsSchema } from '../domain/duration';
import { readConfig } from '../worker/config';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { formatState, formatTranscript } from './format';
import { formatTimeline, OperatorError } from './operator';
import { replayAgainstCurrentCode } from './replay';
import { executeCommand } from '../im-adapters/commands';
import { composeCli } from './compose';
import { newKey, RefusedError, UnknownRunError, UnreachableError } from './gateway';

const config = readConfig();

const { gateway, operator } = composeCli(config);

/** Progress for long operations goes to stderr, so stdout stays clean for `export` and pipes. */
function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function person(options: { as?: string }): string {
  return options.as ?? process.env.CR_USER ?? os.userInfo().username;
}

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name('npm run cli --')
  .description('Change requests: from a requirement to reviewed pull requests across repositories.')
  .showHelpAfterError();

const asOption = new Option('--as <person>', 'who you are (default: $CR_USER or your login name)');
const keyOption = new Option('--key <key>', 'idempotency key (a repeated key changes nothing)');

program
  .command('demos')
  .description('list the requirements the scripted demo model can work on')
  .action(async () => {
    for (const scenario of await loadScenarioBook(config.demoScenariosPath)) {
      console.log(`${scenario.id.padEnd(14)} ${scenario.requirement}`);
    }
    console.log('\nStart one with:  npm run cli -- start "<requirement>"');
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
      { requirement: words.join(' '), requester: person(options), autonomy: options.autonomy, repos: options.repos, conversation: { platform: 'cli', channel: os.hostname() } },
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

program
  .command('confirm')
  .description('confirm the repositories to change (default: as proposed)')
  .argument('<runId>')
  .argument('[repos...]', 'repository ids; omit to accept the proposal')
  .addOption(asOption)
  .addOption(keyOption)
  .action(async (runId: string, repos: string[], options: { as?: string; key?: string }) => {
    const gw = await gateway();
    const chosen = repos.length ? repos : ((await gw.state(runId)).proposal?.repos.map((r) => r.id) ?? []);
    await executeCommand(gw, { kind: 'confirmRepos', runId, payload: { by: person(options), key: options.key ?? newKey('cli'), repos: chosen } });
    console.log(`Confirmed ${chosen.join(', ')}.`);
  });

program
  .command('feedback')
  .description('ask for changes after reviewing the summary')
  .argument('<runId>')
  .argument('<text...>')
  .option('--repos <ids>', 'only these repositories (default: all of the change)', list)
  .addOption(asOption)
  .addOption(keyOption)
  .action(async (runId: string, words: string[], options: { repos?: string[]; as?: string; key?: string }) => {
    await executeCommand(await gateway(), { kind: 'feedback', runId, payload: { by: person(options), key: options.key ?? newKey('cli'), text: words.join(' '), repos: options.repos } });
    console.log('Feedback accepted; a new round has started.');
  });

program
  .command('context')
  .description('add context (API details, constraints) for the next rounds')
  .argument('<runId>')
  .argument('<text...>')
  .addOption(asOption)
  .addOption(keyOption)
  .action(async (runId: string, words: string[], options: { as?: string; key?: string }) => {
    await executeCommand(await gateway(), { kind: 'addContext', runId, payload: { by: person(options), key: options.key ?? newKey('cli'), text: words.join(' ') } });
    console.log('Context added.');
  });

program
  .command('approve')
  .description('approve the change; pull requests are opened')
  .argument('<runId>')
  .addOption(asOption)
  .addOption(keyOption)
  .option('--release <repo=bump...>', "an owner's choice of a package's planned release instead of the catalog's, e.g. ui-kit=major", collectReleases, {})
  .action(async (runId: string, options: { as?: string; key?: string; release: Record<string, string> }) => {
    const releases = Object.keys(options.release).length ? { releases: options.release as Record<string, 'major' | 'minor' | 'patch'> } : {};
    await executeCommand(await gateway(), { kind: 'approve', runId, payload: { by: person(options), key: options.key ?? newKey('cli'), ...releases } });
    console.log('Approved; opening pull requests.');
  });

/** `--release ui-kit=major --release tokens=patch` → { "ui-kit": "major", tokens: "patch" }; validated by the gateway. */
function collectReleases(value: string, previous: Record<string, string>): Record<string, string> {
  const [repo, bump] = value.split('=');
  if (!repo || !bump) throw new Error(`--release ${value}: write it as <repo>=<major|minor|patch>, e.g. ui-kit=major`);
  return { ...previous, [repo.trim()]: bump.trim() };
}

program
  .command('cancel')
  .description('cancel a run')
  .argument('<runId>')
  .option('--reason <text>')
  .addOption(asOption)
  .addOption(keyOption)
  .action(async (runId: string, options: { reason?: string; as?: string; key?: string }) => {
    await executeCommand(await gateway(), { kind: 'cancel', runId, payload: { by: person(options), key: options.key ?? newKey('cli'), reason: options.reason } });
    console.log('Cancelled.');
  });

program
  .command('extend-budget')
  .description('after a budget ran out: extend it and let the agent continue (default: double what ran out), or --stop to review the partial work')
  .argument('<runId>')
  .option('--stop', 'do not extend; go on to review what was done')
  .option('--cost <usd>', 'add this many dollars (per step and per run)', Number)
  .option('--turns <n>', 'add this many turns (per step and per run)', Number)
  .option('--time <duration>', 'add this much agent time, e.g. 10m (per step and per run)')
  .addOption(asOption)
  .addOption(keyOption)
  .action(async (runId: string, options: { stop?: boolean; cost?: number; turns?: number; time?: string; as?: string; key?: string }) => {
    const patch = {
      ...(options.cost !== undefined ? { costUsd: options.cost } : {}),
      ...(options.turns !== undefined ? { turns: options.turns } : {}),
      ...(options.time !== undefined ? { wallTime: DurationMsSchema.parse(options.time) } : {}),
    };
    const given = Object.keys(patch).length > 0;
    await executeCommand(await gateway(), {
      kind: 'extendBudget',
      runId,
      payload: { by: person(options), key: options.key ?? newKey('cli'), decision: options.stop ? 'continue' : 'extend', ...(given ? { perStep: patch, perRun: patch } : {}) },
    });
    console.log(options.stop ? 'Going on to review the partial work.' : 'Budget extended; the agent continues.');
  });

// ---- operators ----

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
    console.log(`${'RUN'.padEnd(width)}  ${'STATUS'.padEnd(10)} ${'PHASE'.padEnd(22)} ${'STARTED'.padEnd(17)} SUMMARY`);
    for (const run of found) console.log(`${run.runId.padEnd(width)}  ${run.status.padEnd(10)} ${(run.phase ?? '?').padEnd(22)} ${run.startTime.toISOString().slice(0, 16).padEnd(17)} ${run.summary ?? ''}`);
  });

runs
  .command('show')
  .description('timeline of phases and activities with durations, attempts, errors and budget')
  .argument('<runId>')
  .action(async (runId: string) => console.log(formatTimeline(await (await operator()).timeline(runId))));

runs
  .command('export')
  .description("the run's history as JSON (stdout)")
  .argument('<runId>')
  .action(async (runId: string) => console.log(await (await operator()).exportHistory(runId)));

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
