// Scale on one machine. N guided runs are started through the gateway (the scripted model proposes the
// three demo repositories at once) and park at awaiting_confirmation; then each is confirmed for one of
// them, in turn, and goes on to edit (one small file), check (`true`) and summarize until they reach awaiting_review, which is "finished" here:
// the end of the automated work a confirmation sets off (past it a run waits for a person again).
// The worker runs in its own process (configured like `npm run worker`), so its resident memory, sampled
// from /proc/<pid>/status, is the worker's alone. Progress is counted with visibility queries
// (CountWorkflowExecutions on the CrPhase search attribute), which cost the worker nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { ChangeRequestInput } from '../domain/contracts';
import { goal, type BenchResult } from './report';
import { median, round } from './stats';
import { timelineOf } from './history';
import { DEMO_REPOS } from '../test/helpers/world';
import { BENCH_REQUESTER, BENCH_REQUIREMENT, benchScenario, cpuSeconds, createBenchWorld, inParallel, log, RssSampler, sleep, startProductionWorkers, type BenchWorker, type BenchWorld } from './world';

export interface ScaleOptions {
  runs?: number;
  /** Starts (and confirmations) in flight at once, like many people in many threads. */
  concurrency?: number;
  /** Stop waiting for the runs to finish after this long (ms); by default wait until all have finished (or stall). */
  finishTimeoutMs?: number;
}

/** Run i is confirmed for repository i mod 3 (the proposal names all three). */
const repoOf = (i: number) => DEMO_REPOS[i % DEMO_REPOS.length]!;
/** Give up waiting when nothing has moved for this long (and report how far it got). */
const STALL_MS = 120_000;

export async function scaleBenchmark(options: ScaleOptions = {}): Promise<BenchResult> {
  const runs = options.runs ?? 1000;
  const concurrency = options.concurrency ?? 32;
  const world = await createBenchWorld();
  const { workflows: worker, steps } = await startProductionWorkers(world, [benchScenario(DEMO_REPOS)], 'scale');
  const sampler = new RssSampler(worker, 250);
  const stepSampler = new RssSampler(steps, 250);
  const notes: string[] = [];
  try {
    await sleep(1000);
    const idleMiB = await worker.rssMiB();
    const stepsIdleMiB = await steps.rssMiB();
    sampler.start();
    stepSampler.start();
    const cpuNow = async () => ({
      worker: await cpuSeconds(worker.pid),
      steps: await cpuSeconds(steps.pid),
      temporal: await cpuSeconds(world.temporalPid),
      bench: await cpuSeconds('self'),
    });
    const cpuStart = await cpuNow();
    const stamp = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const ids = Array.from({ length: runs }, (_, i) => `cr-bench-${stamp}-${i.toString().padStart(5, '0')}-${randomBytes(2).toString('hex')}`);
    const input: ChangeRequestInput = {
      requirement: BENCH_REQUIREMENT,
      requester: BENCH_REQUESTER,
      conversation: { platform: 'cli', channel: 'bench' },
      autonomy: 'guided',
    };

    // 1. Start them all, `concurrency` at a time, through the gateway (as the adapters and the CLI do).
    const t0 = performance.now();
    await inParallel(ids, concurrency, async (id) => {
      await world.gateway.start(input, id);
    });
    const startSeconds = (performance.now() - t0) / 1000;
    log(`scale: ${runs} runs started in ${startSeconds.toFixed(1)} s (${(runs / startSeconds).toFixed(0)}/s)`);

    // 2. Until all wait for confirmation.
    // Parking has no time limit of its own (it takes a few minutes at most); only a stall ends it early.
    const parked = await waitForCount(world, [worker, steps], 'awaiting_confirmation', runs, 'parked', ['intake', 'proposing']);
    const cpuParked = await cpuNow();
    const parkedSeconds = (parked.at - t0) / 1000;
    const parkedMiB = await worker.rssMiB();
    const stepsParkedMiB = await steps.rssMiB();
    log(`scale: ${parked.count}/${runs} parked ${parkedSeconds.toFixed(1)} s after the first start; workflow worker RSS ${parkedMiB.toFixed(0)} MiB, activity worker ${stepsParkedMiB.toFixed(0)} MiB`);
    if (parked.count < runs) notes.push(`only ${parked.count} of ${runs} runs parked (${parked.why}; then: ${parked.others})`);

    // 3. Confirm them all (the confirmRepos signal, as the adapters send it after a button press).
    const t1 = performance.now();
    await inParallel(ids, concurrency, async (id, i) => {
      await world.env.client.workflow.getHandle(id).signal('confirmRepos', { by: BENCH_REQUESTER, key: `bench-confirm-${i}`, repos: [repoOf(i)] });
    });
    const confirmSeconds = (performance.now() - t1) / 1000;
    log(`scale: ${runs} confirmations sent in ${confirmSeconds.toFixed(1)} s`);

    // 4. Until all have finished their edits and checks and await review.
    const finished = await waitForCount(world, [worker, steps], 'awaiting_review', runs, 'finished', ['awaiting_confirmation', 'editing', 'checking'], options.finishTimeoutMs);
    const cpuFinished = await cpuNow();
    const finishedSeconds = (finished.at - t1) / 1000;
    if (finished.count < runs) {
      notes.push(`NOT ALL FINISHED: ${finished.count} of ${runs} runs reached awaiting_review (${finished.why}); all_finished_after_confirm_s is when waiting stopped, not a finishing time; then: ${finished.others}`);
    }
    const failed = await countWhere(world, `CrPhase = 'failed' OR ExecutionStatus = 'Failed'`);
    const activities = await activityTimings(world, ids.filter((_, i) => i % Math.max(1, Math.floor(runs / 30)) === 0));
    const memory = await sampler.stop();
    const stepMemory = await stepSampler.stop();
    const peakMiB = Math.max(memory.peakSampledMiB, memory.highWaterMiB);
    const stepsPeakMiB = Math.max(stepMemory.peakSampledMiB, stepMemory.highWaterMiB);
    // The cost of a spawn at the worker's idle and peak sizes (after the runs, so it disturbs nothing).
    const spawnIdle = await spawnBlockMs(Math.round(stepsIdleMiB)).catch(() => Number.NaN);
    const spawnPeak = await spawnBlockMs(Math.round(stepsPeakMiB)).catch(() => Number.NaN);
    const peakMB = (peakMiB * 2 ** 20) / 1e6;
    log(`scale: ${finished.count}/${runs} finished ${finishedSeconds.toFixed(1)} s after confirming; workflow worker RSS peak ${peakMiB.toFixed(0)} MiB, activity worker ${stepsPeakMiB.toFixed(0)} MiB`);
    return {
      name: 'scale',
      figures: {
        runs,
        concurrency,
        start_seconds: round(startSeconds, 1),
        start_rate_per_s: round(runs / startSeconds, 1),
        all_parked_after_s: round(parkedSeconds, 1),
        parked: parked.count,
        confirm_send_seconds: round(confirmSeconds, 1),
        all_finished_after_confirm_s: round(finishedSeconds, 1),
        finish_rate_per_s: round(finished.count / finishedSeconds, 1),
        finished: finished.count,
        failed,
        workflow_worker_rss_idle_mib: round(idleMiB, 0),
        workflow_worker_rss_parked_mib: round(parkedMiB, 0),
        workflow_worker_rss_peak_mib: round(peakMiB, 0),
        workflow_worker_rss_end_mib: round(memory.lastMiB, 0),
        activity_worker_rss_idle_mib: round(stepsIdleMiB, 0),
        activity_worker_rss_parked_mib: round(stepsParkedMiB, 0),
        activity_worker_rss_peak_mib: round(stepsPeakMiB, 0),
        activity_worker_rss_end_mib: round(stepMemory.lastMiB, 0),
        rss_samples: memory.samples,
        ...activities,
        spawn_blocks_thread_ms_at_idle_rss: round(spawnIdle, 1),
        spawn_blocks_thread_ms_at_peak_rss: round(spawnPeak, 1),
        ...cpuFigures('parking', cpuStart, cpuParked),
        ...cpuFigures('finishing', cpuParked, cpuFinished),
      },
      goals: [
        goal('workflow worker resident memory under 600 MB at peak', `${round(peakMB, 0)} MB (${round(peakMiB, 0)} MiB)${finished.count < runs ? ', before all had finished' : ''}`, peakMB < 600),
      ],
      notes: [
        'two worker processes, as `npm start` and docker-compose run them: the workflow worker (WORKER_ROLES=workflows, the goal) and one activity worker with the agent, work and quick roles (reported beside it)',
        'spawn_blocks_thread_ms_at_*: how long one spawn() blocks a Node thread in a process as large as the activity worker (where checks spawn) was idle / at its peak (a separate process holding that much memory; median of 31); the workflow worker spawns nothing',
        'activity medians over a sample of about 30 runs\' histories: run = started→closed, queue = scheduled→started (waiting for a free slot in the worker)',
        'cpu_*: CPU seconds used in each phase by the workflow worker, the activity worker (with its check commands), the Temporal dev server, the benchmark process (forge, gateway, counting) and the git processes the forge ran',
        `finished = reached awaiting_review (one repository edited, checked with \`true\`, summary written); each run is confirmed for one repository, in turn ${DEMO_REPOS.join(', ')}; confirmations are raw confirmRepos signals, ${concurrency} in flight`,
        ...notes,
      ],
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    await stepSampler.stop().catch(() => undefined);
    await worker.stop();
    await steps.stop();
    await world.close();
  }
}

type CpuSnapshot = { worker: { own: number; children: number }; steps: { own: number; children: number }; temporal: { own: number; children: number }; bench: { own: number; children: number } };

function cpuFigures(phase: string, from: CpuSnapshot, to: CpuSnapshot): Record<string, number> {
  return {
    [`cpu_${phase}_workflow_worker_s`]: round(to.worker.own + to.worker.children - from.worker.own - from.worker.children, 1),
    [`cpu_${phase}_activity_worker_s`]: round(to.steps.own + to.steps.children - from.steps.own - from.steps.children, 1),
    [`cpu_${phase}_temporal_s`]: round(to.temporal.own - from.temporal.own, 1),
    [`cpu_${phase}_bench_forge_s`]: round(to.bench.own - from.bench.own, 1),
    [`cpu_${phase}_git_s`]: round(to.bench.children - from.bench.children, 1),
  };
}

/** Median run and queue times per activity type, from a sample of the runs' histories. */
async function activityTimings(world: BenchWorld, sample: string[]): Promise<Record<string, number>> {
  const byType = new Map<string, { run: number[]; queue: number[] }>();
  for (const id of sample) {
    const history = await world.env.client.workflow.getHandle(id).fetchHistory().catch(() => null);
    if (!history) continue;
    for (const a of timelineOf(history.events ?? []).activities) {
      const entry = byType.get(a.type) ?? { run: [], queue: [] };
      entry.run.push(a.closed - a.started);
      entry.queue.push(a.started - a.scheduled);
      byType.set(a.type, entry);
    }
  }
  const figures: Record<string, number> = {};
  for (const type of ['editRepository', 'runChecks', 'writeNarrative']) {
    const entry = byType.get(type);
    if (!entry) continue;
    figures[`${type}_run_median_ms`] = round(median(entry.run), 0);
    figures[`${type}_queue_median_ms`] = round(median(entry.queue), 0);
  }
  return figures;
}

/**
 * How long spawning a child process blocks a Node thread in a process holding `mib` of resident memory
 * (median of 31 `spawn('true')` after 5 to warm up), measured in a separate node process: the cost every check command and
 * every `cp` of the clone cache pays inside a worker whose resident set is that large.
 */
export async function spawnBlockMs(mib: number): Promise<number> {
  const script = `
    const { spawn } = require('node:child_process');
    const keep = [];
    for (let i = 0; i < ${mib}; i++) { const b = Buffer.allocUnsafe(1 << 20); b.fill(i & 255); keep.push(b); }
    (async () => {
      const times = [];
      for (let i = 0; i < 36; i++) {
        const t0 = performance.now();
        const child = spawn('true');
        if (i >= 5) times.push(performance.now() - t0); // the first few warm up
        await new Promise((resolve) => child.on('exit', resolve));
      }
      times.sort((a, b) => a - b);
      process.stdout.write(JSON.stringify({ median: times[15], held: keep.length }));
    })();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 120_000, maxBuffer: 1 << 20 });
  return (JSON.parse(stdout) as { median: number }).median;
}

async function countWhere(world: BenchWorld, where: string): Promise<number> {
  const response = await world.env.client.workflowService.countWorkflowExecutions({
    namespace: world.env.namespace ?? 'default',
    query: `WorkflowType = 'changeRequest' AND (${where})`,
  });
  return Number(response.count ?? 0);
}

/**
 * Polls the number of runs in `phase` until it reaches `target`. Gives up when nothing has moved for
 * STALL_MS — the counts of `phase` and of the phases on the way there (`via`) stayed the same and the
 * worker used almost no CPU (runs queued behind others can keep every count still for minutes while the
 * worker is busy) — or after `timeoutMs`.
 */
async function waitForCount(
  world: BenchWorld,
  workers: readonly BenchWorker[],
  phase: string,
  target: number,
  what: string,
  via: string[],
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<{ count: number; at: number; why: string; others: string }> {
  const since = performance.now();
  const workerCpu = async () => {
    let total = 0;
    for (const worker of workers) {
      const cpu = await cpuSeconds(worker.pid);
      total += cpu.own + cpu.children;
    }
    return total;
  };
  let last = '';
  let movedAt = since;
  let cpuAtMove = await workerCpu();
  let lastLog = 0;
  for (;;) {
    const count = await countWhere(world, `CrPhase = '${phase}'`);
    const now = performance.now();
    if (count >= target) return { count, at: now, why: 'all', others: '' };
    const counts = await Promise.all(via.map((p) => countWhere(world, `CrPhase = '${p}'`)));
    const others = via.map((p, i) => `${p} ${counts[i]}`).join(', ');
    const seen = [count, ...counts].join('/');
    const cpu = await workerCpu();
    if (seen !== last || cpu - cpuAtMove > 2) {
      last = seen;
      movedAt = now;
      cpuAtMove = cpu;
    }
    if (now - movedAt > STALL_MS) return { count, at: now, why: `nothing moved for ${STALL_MS / 1000} s`, others };
    if (now - since > timeoutMs) return { count, at: now, why: `stopped waiting after ${Math.round(timeoutMs / 1000)} s (--finish-timeout)`, others };
    if (now - lastLog > 10_000) {
      lastLog = now;
      log(`scale: ${count}/${target} ${what} (${others})`);
    }
    await sleep(250);
  }
}
