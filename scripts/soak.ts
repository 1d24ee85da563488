// `npm run soak -- --runs 200 --kills 30`: the demo under chaos. The whole system as `npm start` runs it
// (a Temporal dev server on SQLite, the forge, the registry, the preview server with Chromium, one worker
// process per role, all confined), N runs of the prices change set (ui-kit's prerelease installed into
// web-app's checks, a fix round on ui-kit), each approved when it reaches review, while a chaos loop
// SIGKILLs random worker processes (their supervisor starts them again) and restarts the Temporal server
// on its database. At the end every run must be following its pull requests, with exactly one commit per
// round per repository, one pull request per repository, no chat message twice and no spend lost (each run
// recorded at least the usage of every model answer its workers received, per the call ledger). The
// figures go to stdout; histories of runs that failed a workflow task are kept as replay fixtures to be.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import YAML from 'yaml';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { LedgerLine } from '../activities/agent/call-ledger';
import { freePort } from '../activities/free-port';
import { readOutbox } from '../activities/notify';
import { connectClient } from '../client/connect';
import { Deployments } from '../client/deployments';
import { ChangeRequestGateway } from '../client/gateway';
import { loadCatalog } from '../domain/catalog-loader';
import { startForge } from '../forge/server';
import { seedRepositories } from '../forge/seed';
import { startPreviewServer } from '../previews/server';
import { startEmbeddedRegistry } from '../registry/embedded';
import { publishReleased } from '../registry/seed';
import { PROJECT_ROOT } from '../worker/config';
import { quietSdkLogs } from '../worker/create-worker';
import { WORKER_ROLES } from '../workflows/task-queues';
import { ensureTemporalCli } from './ensure-temporal';
import { connectWithRetry, startDevServer } from './temporal-dev-server';
import { startWorkerProcesses } from './worker-processes';

const execFileAsync = promisify(execFile);
const REQUIREMENT = 'Show prices with the currency code, like USD 12.50, on product cards';
const REPOS = ['ui-kit', 'web-app'];
const DEMO_REPOS = ['ui-kit', 'bff-api', 'web-app'];
const REQUESTER = 'fiona';
const BUILD = 'soak';

interface Options {
  runs: number;
  kills: number;
  temporalRestarts: number;
  concurrency: number;
  timeoutMinutes: number;
  keep: boolean;
}

function log(line: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function main(options: Options): Promise<number> {
  quietSdkLogs();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-soak-'));
  const stops: (() => Promise<void>)[] = [];
  const started = Date.now();
  log(`data in ${dataDir}`);
  try {
    // The system, as `npm start` builds it, on ports of its own.
    const cli = await ensureTemporalCli(log);
    const temporalPort = await freePort();
    const address = `127.0.0.1:${temporalPort}`;
    const dbFile = path.join(dataDir, 'temporal.sqlite');
    let temporal = startDevServer(cli, '127.0.0.1', temporalPort, null, dbFile, 'ignore');
    stops.unshift(async () => void temporal.kill('SIGKILL'));
    const forgeToken = randomBytes(24).toString('hex');
    const forge = await startForge({ dataDir: path.join(dataDir, 'forge'), token: forgeToken });
    stops.unshift(() => forge.close());
    await seedRepositories(forge, DEMO_REPOS.map((name) => ({ owner: 'demo', name, sourceDir: path.join(PROJECT_ROOT, 'demo', 'repos', name) })));
    const previewToken = randomBytes(24).toString('hex');
    // The workers' data folder is this one, as `npm start`'s is .data: previews land where the server serves them.
    const previews = await startPreviewServer({ dir: path.join(dataDir, 'previews'), token: previewToken });
    stops.unshift(() => previews.close());
    const registry = await startEmbeddedRegistry({ dir: path.join(dataDir, 'registry') });
    stops.unshift(() => registry.close());
    await publishReleased(registry, path.join(PROJECT_ROOT, 'demo', 'repos', 'ui-kit'));
    const catalogPath = path.join(dataDir, 'catalog.yaml');
    const catalog = YAML.parse(await fs.readFile(path.join(PROJECT_ROOT, 'demo', 'catalog.yaml'), 'utf8')) as { repositories: { url: string }[] };
    for (const repo of catalog.repositories) repo.url = repo.url.replace('${FORGE_URL}', forge.url);
    await fs.writeFile(catalogPath, YAML.stringify(catalog));
    await (await connectWithRetry(address)).close();

    const ledger = path.join(dataDir, 'model-calls.jsonl');
    const workers = startWorkerProcesses(
      WORKER_ROLES,
      {
        ...process.env,
        TEMPORAL_ADDRESS: address,
        DATA_DIR: dataDir,
        CATALOG_PATH: catalogPath,
        FORGE_URL: forge.url,
        FORGE_TOKEN: forgeToken,
        PREVIEW_BASE_URL: previews.url,
        PREVIEW_HOST_TOKEN: previewToken,
        NPM_REGISTRY_URL: registry.url,
        NPM_REGISTRY_TOKEN: registry.token,
        WORKER_BUILD_ID: BUILD,
        WORKER_MAKE_CURRENT: 'off',
        MODEL_CALL_LEDGER: ledger,
        ANTHROPIC_API_KEY: '',
      },
      () => undefined, // the workers' own lines would drown the soak's
    );
    stops.unshift(() => workers.stop());
    await workers.ready;
    const client = await connectClient(address, 'default');
    const deployments = new Deployments(client, 'default', 'change-request', 'change-requests');
    await deployments.makeCurrent(BUILD, { waitMs: 60_000 });
    const gateway = new ChangeRequestGateway(client, { taskQueue: 'change-requests', catalog: () => loadCatalog(catalogPath) });
    log(`system up in ${((Date.now() - started) / 1000).toFixed(0)} s: ${options.runs} runs, ${options.kills} worker kills, ${options.temporalRestarts} Temporal restarts`);

    // The runs: started `concurrency` at a time; each approved once it waits for review.
    const ids: string[] = [];
    const approved = new Set<string>();
    const t0 = Date.now();
    const deadline = t0 + options.timeoutMinutes * 60_000;
    let settled = false;
    const done = { kills: 0, restarts: 0 };
    const chaos = (async () => {
      // Spread over the time the runs are expected to take (about 50 s each on two cores, `concurrency` at
      // a time); whatever is left when every run has settled is not done, and the figures say so.
      const events = [...Array(options.kills).fill('kill'), ...Array(options.temporalRestarts).fill('restart')].sort(() => Math.random() - 0.5) as ('kill' | 'restart')[];
      const spacingMs = Math.max(3_000, (options.runs * 50_000) / options.concurrency / (events.length + 1));
      for (const event of events) {
        for (const until = Date.now() + spacingMs * (0.5 + Math.random()); Date.now() < until && !settled; ) await sleep(500);
        if (settled || Date.now() > deadline) break;
        if (event === 'kill') {
          const victim = workers.processes[Math.floor(Math.random() * workers.processes.length)]!;
          const pid = victim.pid();
          if (pid) {
            process.kill(pid, 'SIGKILL');
            done.kills += 1;
            log(`chaos: SIGKILL the ${victim.role} worker (pid ${pid})`);
          }
        } else {
          temporal.kill('SIGKILL');
          await new Promise((resolve) => temporal.once('exit', resolve));
          temporal = startDevServer(cli, '127.0.0.1', temporalPort, null, dbFile, 'ignore');
          await (await connectWithRetry(address)).close();
          done.restarts += 1;
          log('chaos: the Temporal dev server was killed and started again on its database');
        }
      }
    })();

    let next = 0;
    const inFlight = new Set<string>();
    let lastLog = 0;
    for (;;) {
      while (next < options.runs && inFlight.size < options.concurrency) {
        const id = await retrying(() => gateway.start({ requirement: REQUIREMENT, requester: REQUESTER, autonomy: 'fixed', repos: REPOS }).then((r) => r.runId));
        ids.push(id);
        inFlight.add(id);
        next += 1;
      }
      for (const id of [...inFlight]) {
        const state = await gateway.state(id).catch(() => null);
        if (!state) continue;
        if (state.phase === 'awaiting_review' && !approved.has(id)) {
          await retrying(() => gateway.send(id, 'approve', { by: REQUESTER, key: `soak-approve-${id}` }));
          approved.add(id);
        }
        if (['tracking', 'done', 'failed', 'cancelled'].includes(state.phase)) inFlight.delete(id);
      }
      if (next >= options.runs && inFlight.size === 0) break;
      if (Date.now() > deadline) {
        log(`stopped waiting after ${options.timeoutMinutes} min with ${inFlight.size} runs still going`);
        break;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(`${ids.length - inFlight.size}/${options.runs} settled, ${inFlight.size} going`);
      }
      await sleep(500);
    }
    const settledSeconds = (Date.now() - t0) / 1000;
    settled = true;
    await chaos;

    // The invariants, run by run.
    log('checking every run…');
    const problems: string[] = [];
    const ledgerLines = (await fs.readFile(ledger, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as LedgerLine);
    const mirrors = await mirrorsOf(forge.url, forgeToken, dataDir);
    const pulls = await pullsOf(forge.apiUrl, forgeToken);
    const failingHistories: string[] = [];
    let spendRecorded = 0;
    let tracking = 0;
    let spendAnswered = 0;
    for (const id of ids) {
      const state = await retrying(() => gateway.state(id));
      if (state.phase === 'tracking') tracking += 1;
      else problems.push(`${id}: ends ${state.phase}, not tracking${state.outcome?.reason ? ` (${state.outcome.reason})` : ''}`);
      for (const repo of REPOS) {
        const rounds = state.rounds.filter((r) => r.repos.includes(repo) && state.repos[repo]!.commits.some((c) => c.round === r.n)).map((r) => r.n);
        const trailers = await roundTrailers(mirrors[repo]!, `change-request/${id}`, id);
        const twice = trailers.filter((n, i) => trailers.indexOf(n) !== i);
        if (twice.length) problems.push(`${id} ${repo}: round ${twice.join(', ')} committed more than once`);
        if ([...new Set(trailers)].sort().join() !== [...rounds].sort().join()) problems.push(`${id} ${repo}: commits for rounds [${trailers}], the run recorded [${rounds}]`);
        const open = pulls[repo]!.filter((p) => p.head.ref === `change-request/${id}`);
        if (open.length !== 1) problems.push(`${id} ${repo}: ${open.length} pull requests`);
      }
      const outbox = await readOutbox(dataDir, id);
      const keys = outbox.map((m) => m.key);
      if (new Set(keys).size !== keys.length) problems.push(`${id}: a chat message was posted twice (${keys.filter((k, i) => keys.indexOf(k) !== i).join(', ')})`);
      const answered = ledgerLines.filter((l) => l.runId === id).reduce((sum, l) => sum + l.inputTokens + l.outputTokens, 0);
      const used = state.budget.used;
      const recorded = used.inputTokens + used.outputTokens;
      spendAnswered += answered;
      spendRecorded += recorded;
      if (recorded < answered) problems.push(`${id}: spend lost: the run recorded ${recorded} tokens, its model answers used ${answered}`);
      if (await failedAWorkflowTask(client, id)) {
        const file = path.join(dataDir, 'failing-histories', `${id}.json`);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, historyToJSON(await client.workflow.getHandle(id).fetchHistory()));
        failingHistories.push(file);
      }
    }
    const figures = {
      runs: ids.length,
      worker_kills: done.kills,
      temporal_restarts: done.restarts,
      seconds_until_settled: Math.round(settledSeconds),
      tracking,
      model_answers: ledgerLines.length,
      tokens_answered: spendAnswered,
      tokens_recorded: spendRecorded,
      workflow_task_failures_kept: failingHistories.length,
      problems: problems.length,
    };
    console.log(JSON.stringify(figures, null, 2));
    for (const problem of problems) console.log(`PROBLEM ${problem}`);
    for (const file of failingHistories) console.log(`A run failed a workflow task; its history is kept at ${file}. Copy it to test/fixtures/histories/ to replay it in CI.`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    if (!options.keep) await fs.rm(dataDir, { recursive: true, force: true });
  }
}

/** One bare mirror per repository, fetched once at the end, for reading every run's branch locally. */
async function mirrorsOf(forgeUrl: string, token: string, dataDir: string): Promise<Record<string, string>> {
  const mirrors: Record<string, string> = {};
  for (const repo of REPOS) {
    const url = new URL(`${forgeUrl}/demo/${repo}.git`);
    url.username = 'x';
    url.password = token;
    const dir = path.join(dataDir, 'mirrors', `${repo}.git`);
    await execFileAsync('git', ['clone', '--quiet', '--mirror', url.toString(), dir]);
    mirrors[repo] = dir;
  }
  return mirrors;
}

/** The round numbers in the Change-Request-Round trailers of the branch's commits that are not on main. */
async function roundTrailers(mirror: string, branch: string, runId: string): Promise<number[]> {
  const { stdout } = await execFileAsync('git', ['--git-dir', mirror, 'log', '--format=%B%x00', `main..refs/heads/${branch}`]).catch(() => ({ stdout: '' }));
  return [...stdout.matchAll(new RegExp(`^Change-Request-Round: ${runId}/(\\d+)$`, 'gm'))].map((m) => Number(m[1]));
}

async function pullsOf(apiUrl: string, token: string): Promise<Record<string, { head: { ref: string } }[]>> {
  const out: Record<string, { head: { ref: string } }[]> = {};
  for (const repo of REPOS) {
    out[repo] = [];
    // GitHub's shape: at most 100 a page, page after page until one comes back short.
    for (let page = 1; ; page++) {
      const response = await fetch(`${apiUrl}/repos/demo/${repo}/pulls?state=all&per_page=100&page=${page}`, { headers: { authorization: `token ${token}` } });
      if (!response.ok) throw new Error(`listing the pull requests of ${repo}: HTTP ${response.status}`);
      const batch = (await response.json()) as { head: { ref: string } }[];
      out[repo]!.push(...batch);
      if (batch.length < 100) break;
    }
  }
  return out;
}

async function failedAWorkflowTask(client: Awaited<ReturnType<typeof connectClient>>, runId: string): Promise<boolean> {
  const { events } = await client.workflow.getHandle(runId).fetchHistory();
  return (events ?? []).some((e) => e.workflowTaskFailedEventAttributes);
}

/** The server may be restarting under us: calls are tried again for up to a minute. */
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(1000);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const program = new Command()
  .name('npm run soak --')
  .description('the demo under chaos: runs, worker kills and Temporal restarts, then every run checked')
  .option('--runs <n>', 'runs to start', (v) => Number(v), 200)
  .option('--kills <n>', 'worker processes SIGKILLed at random times', (v) => Number(v), 30)
  .option('--temporal-restarts <n>', 'times the Temporal dev server is killed and started again on its database', (v) => Number(v), 3)
  .option('--concurrency <n>', 'runs going at once', (v) => Number(v), 6)
  .option('--timeout-minutes <n>', 'stop waiting for the runs after this long', (v) => Number(v), 240)
  .option('--keep', 'keep the data folder (histories, outbox, ledger) for a look afterwards')
  .action(async (options: Options) => process.exit(await main(options)));

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
