// IM action to visible state. Ten runs wait at confirmation; the same action — a message in a run's
// thread, which becomes an `addContext` input and changes nothing else — is repeated many times, one at a
// time and in turn over the runs (so no run's state grows far beyond a real thread's), three ways,
// interleaved so drift (growing histories, a warming JIT) hits all three alike:
//   web      POST /api/runs/<id>/messages on the web chat (HTTP → WebChatApi → ConversationRouter →
//            ChangeRequestGateway.send: signal, then state queries until the run's verdict shows); the
//            response comes only once a `state` query has shown the input, so its round trip is the
//            latency to visible state;
//   gateway  ChangeRequestGateway.send alone (no HTTP, no router);
//   bare     the SDK: handle.signal('addContext', …) then handle.query('state') until the text shows;
// and, as the unit the others are made of, one `state` query on its own.
// Each sample is checked (untimed) to really be in `state.context` afterwards.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConversationRouter } from '../im-adapters/core/router';
import { startWebChat } from '../im-adapters/web/server';
import { loadCatalog } from '../domain/catalog-loader';
import type { RunState } from '../domain/contracts';
import { goal, type BenchResult } from './report';
import { mean, percentile, round, summarize } from './stats';
import { BENCH_REQUESTER, BENCH_REQUIREMENT, benchScenario, createBenchWorld, inParallel, log, sleep, startProductionWorkers } from './world';

export interface ImLatencyOptions {
  samples?: number;
  warmup?: number;
  /** Confirm presses measured (each on its own run waiting at confirmation). */
  presses?: number;
  /** Runs parked at confirmation before measuring, as a busy deployment has them (issue 16: 1,000). */
  parked?: number;
  /** Runs kept going through edits and checks in the background while measuring (the activity load). */
  load?: number;
}

type Arm = 'web' | 'gateway' | 'bare' | 'query';

/** Runs the actions are spread over (one after another, never at once). */
const THREADS = 10;

export async function imLatencyBenchmark(options: ImLatencyOptions = {}): Promise<BenchResult> {
  const samples = options.samples ?? 200;
  const warmup = options.warmup ?? 30;
  const world = await createBenchWorld();
  const { workflows: worker, steps } = await startProductionWorkers(world, [benchScenario(['ui-kit'])], 'im-latency');
  const parked = options.parked ?? 0;
  const background = { stop: false, finished: 0, loops: [] as Promise<void>[] };
  const chat = await startWebChat({
    gateway: world.gateway,
    router: new ConversationRouter(world.gateway),
    loadCatalog: () => loadCatalog(world.catalogPath),
    outboxDir: path.join(world.dataDir, 'worker'),
    demoRequirements: [],
  });
  try {
    // Several runs, used in turn, so no run's state and history grow far beyond a real thread's
    // (every action adds one context entry to the state each query returns).
    const runIds: string[] = [];
    for (let t = 0; t < THREADS; t++) {
      const started = await post(`${chat.url}/api/threads`, { as: BENCH_REQUESTER, text: BENCH_REQUIREMENT, eventId: eventId('start') });
      if (started.kind !== 'started') throw new Error(`the web chat did not start a run: ${JSON.stringify(started)}`);
      runIds.push(started.runId as string);
    }
    for (const runId of runIds) await waitUntil(() => world.gateway.state(runId), (s) => s.phase === 'awaiting_confirmation', 60_000);
    if (parked > 0) await parkRuns(world, parked);
    // The background load: each loop starts a run that goes straight to editing and checks, and another
    // once it waits for review (ended then, so the parked count stays what it was).
    for (let l = 0; l < (options.load ?? 0); l++) {
      background.loops.push(
        (async () => {
          while (!background.stop) {
            const { runId } = await world.gateway.start({ requirement: BENCH_REQUIREMENT, requester: BENCH_REQUESTER, conversation: { platform: 'cli', channel: 'bench-load' }, autonomy: 'fixed', repos: ['ui-kit'] });
            await waitUntil(() => world.gateway.state(runId), (s) => s.phase === 'awaiting_review' || background.stop, 300_000).catch(() => undefined);
            await world.env.client.workflow.getHandle(runId).terminate('benchmark load done').catch(() => undefined);
            background.finished += 1;
          }
        })(),
      );
    }
    log(`im-latency: ${THREADS} runs await confirmation${parked ? ` beside ${parked} parked` : ''}${options.load ? `, ${options.load} runs kept editing and checking` : ''}; ${warmup} warm-up and ${samples} measured actions per path`);

    const bareParts: { signal: number; query: number; queries: number }[] = [];
    const act: Record<Arm, (runId: string, text: string) => Promise<void>> = {
      async web(runId, text) {
        const outcome = await post(`${chat.url}/api/runs/${runId}/messages`, { as: BENCH_REQUESTER, text, eventId: eventId('web') });
        if (outcome.kind !== 'fed' || outcome.as !== 'addContext') throw new Error(`web chat answered ${JSON.stringify(outcome)}`);
      },
      async gateway(runId, text) {
        await world.gateway.send(runId, 'addContext', { by: BENCH_REQUESTER, key: eventId('gw'), text });
      },
      async bare(runId, text) {
        const handle = world.env.client.workflow.getHandle(runId);
        const t0 = performance.now();
        await handle.signal('addContext', { by: BENCH_REQUESTER, key: eventId('bare'), text });
        const t1 = performance.now();
        for (let queries = 1; ; queries++) {
          const state = await handle.query<RunState>('state');
          if (state.context.some((c) => c.text === text)) {
            bareParts.push({ signal: t1 - t0, query: performance.now() - t1, queries });
            return;
          }
          if (queries > 1000) throw new Error('the signal never showed in state');
        }
      },
      // Not an action: one `state` query on its own, the unit the other paths are made of.
      async query(runId) {
        await world.env.client.workflow.getHandle(runId).query<RunState>('state');
      },
    };
    const times: Record<Arm, number[]> = { web: [], gateway: [], bare: [], query: [] };
    const arms: Arm[] = ['web', 'gateway', 'bare', 'query'];
    let missing = 0;
    for (let i = 0; i < warmup + samples; i++) {
      // Rotate the order so no path always follows another.
      const order = arms.map((_, k) => arms[(i + k) % arms.length]!);
      const runId = runIds[i % THREADS]!;
      for (const arm of order) {
        const text = `bench context ${arm} ${i} ${randomBytes(3).toString('hex')}`;
        const t0 = performance.now();
        await act[arm](runId, text);
        const elapsed = performance.now() - t0;
        if (i >= warmup) times[arm].push(elapsed);
        if (arm === 'query') continue;
        // Untimed check that the action is really visible.
        const state = await world.gateway.state(runId);
        if (!state.context.some((c) => c.text === text)) missing += 1;
      }
      if (i === warmup - 1) log('im-latency: warm-up done');
      // A short pause between rounds, like people clicking, so one action's tail (the workflow task that
      // records it) is not still running when the next one starts.
      await sleep(5);
    }
    const finalStates = await Promise.all(runIds.map((runId) => world.gateway.state(runId)));
    background.stop = true;
    await Promise.all(background.loops);

    // A button press: "Confirm" on a proposal card, POST /api/runs/<id>/buttons, answered once the run
    // has taken it and the card is redrawn. A confirm moves its run on, so each press gets a run of its own,
    // all started first and pressed one at a time, with a pause for the confirmed run's (instant) round.
    const presses = options.presses ?? 60;
    const pressRuns: string[] = [];
    for (let p = 0; p < presses + 5; p++) {
      const started = await post(`${chat.url}/api/threads`, { as: BENCH_REQUESTER, text: BENCH_REQUIREMENT, eventId: eventId('press-start') });
      pressRuns.push(started.runId as string);
    }
    for (const runId of pressRuns) await waitUntil(() => world.gateway.state(runId), (s) => s.phase === 'awaiting_confirmation', 60_000);
    log(`im-latency: ${pressRuns.length} runs await confirmation; 5 warm-up and ${presses} measured confirm presses`);
    const pressTimes: number[] = [];
    let pressesRefused = 0;
    for (const [p, runId] of pressRuns.entries()) {
      const view = (await (await fetch(`${chat.url}/api/runs/${runId}`)).json()) as { card: { buttons: { value: { action: string } }[] } };
      const confirm = view.card.buttons.find((b) => b.value.action === 'confirm');
      if (!confirm) throw new Error(`the proposal card of ${runId} has no Confirm button`);
      const t0 = performance.now();
      const outcome = await post(`${chat.url}/api/runs/${runId}/buttons`, { as: BENCH_REQUESTER, value: confirm.value, eventId: eventId('press') });
      const elapsed = performance.now() - t0;
      if (outcome.kind !== 'accepted') pressesRefused += 1;
      if (p >= 5) pressTimes.push(elapsed);
      await sleep(300);
    }
    const press = summarize(pressTimes);
    const measured = bareParts.slice(-samples);
    const web = summarize(times.web);
    const gw = summarize(times.gateway);
    const bare = summarize(times.bare);
    const ratio50 = web.p50 / bare.p50;
    const ms = (v: number) => round(v, 1);
    return {
      name: 'im-latency',
      figures: {
        samples_per_path: samples,
        warmup_per_path: warmup,
        web_p50_ms: ms(web.p50),
        web_p90_ms: ms(web.p90),
        web_p99_ms: ms(web.p99),
        web_max_ms: ms(web.max),
        gateway_p50_ms: ms(gw.p50),
        gateway_p99_ms: ms(gw.p99),
        bare_p50_ms: ms(bare.p50),
        bare_p90_ms: ms(bare.p90),
        bare_p99_ms: ms(bare.p99),
        bare_max_ms: ms(bare.max),
        bare_signal_p50_ms: ms(percentile(measured.map((p) => p.signal), 50)),
        bare_query_until_visible_p50_ms: ms(percentile(measured.map((p) => p.query), 50)),
        bare_queries_per_action_mean: round(mean(measured.map((p) => p.queries)), 2),
        state_query_alone_p50_ms: ms(percentile(times.query, 50)),
        state_query_alone_p99_ms: ms(percentile(times.query, 99)),
        web_vs_bare_p50: round(ratio50, 2),
        web_vs_bare_p99: round(web.p99 / bare.p99, 2),
        not_visible_after_action: missing,
        button_confirm_samples: pressTimes.length,
        button_confirm_p50_ms: ms(press.p50),
        button_confirm_p90_ms: ms(press.p90),
        button_confirm_p99_ms: ms(press.p99),
        button_confirm_refused: pressesRefused,
        runs_used: THREADS,
        context_entries_per_run_at_end: Math.max(...finalStates.map((st) => st.context.length)),
        runs_still_awaiting_confirmation: finalStates.filter((st) => st.phase === 'awaiting_confirmation').length,
        parked_runs_beside: parked,
        background_runs: options.load ?? 0,
        background_runs_finished_while_measuring: background.finished,
      },
      goals: [
        goal('web p50 within 1.5× of bare signal+query p50', `${ms(web.p50)} ms vs ${ms(bare.p50)} ms (${round(ratio50, 2)}×)`, ratio50 <= 1.5),
        goal('web p99 under 100 ms', `${ms(web.p99)} ms`, web.p99 < 100),
        ...(parked >= 1000 && (options.load ?? 0) > 0 ? [goal('web p99 under 50 ms with 1,000 runs parked and activity load running', `${ms(web.p99)} ms`, web.p99 < 50)] : []),
      ],
      notes: [
        `action: a reply in a run's thread while it awaits confirmation (router → addContext), sent one at a time, in turn to ${THREADS} waiting runs; it never advances a run`,
        'a workflow worker (WORKER_ROLES=workflows) and an activity worker (agent, work, quick) in processes of their own',
        ...(parked || options.load ? [`measured beside ${parked} runs parked at confirmation, with ${options.load ?? 0} runs kept going through edits and checks (${background.finished} finished meanwhile)`] : []),
        'gateway = ChangeRequestGateway.send without HTTP and router; bare = SDK signal then state queries until visible; state_query_alone = one state query with nothing pending',
      ],
    };
  } finally {
    background.stop = true;
    await chat.close();
    await worker.stop();
    await steps.stop();
    await world.close();
  }
}

/** Starts `count` guided runs, 32 at a time, and waits until all of them wait for confirmation. */
async function parkRuns(world: Awaited<ReturnType<typeof createBenchWorld>>, count: number): Promise<void> {
  const input = { requirement: BENCH_REQUIREMENT, requester: BENCH_REQUESTER, conversation: { platform: 'cli' as const, channel: 'bench-parked' }, autonomy: 'guided' as const };
  await inParallel(Array.from({ length: count }), 32, async () => void (await world.gateway.start(input)));
  const query = `WorkflowType = 'changeRequest' AND CrPhase = 'awaiting_confirmation'`;
  for (let last = -1; ; ) {
    const { count: waiting } = await world.env.client.workflow.count(query);
    if (waiting >= count + THREADS) return;
    if (waiting !== last) log(`im-latency: ${waiting - THREADS}/${count} runs parked`);
    last = waiting;
    await sleep(2000);
  }
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200) throw new Error(`POST ${url}: HTTP ${response.status} ${JSON.stringify(json)}`);
  return json;
}

function eventId(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

export async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (done(last)) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out; last seen: ${JSON.stringify(last)?.slice(0, 300)}`);
}
