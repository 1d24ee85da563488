// Open web chat pages: each one long-polls its run. 1, then 100 pages (each from its own loopback address,
// as 100 browsers would be) wait on one run that does not move, for a measured window; then the run moves
// and every page must hear of it. Figures: `state` queries per second and the web chat process's CPU per
// second of waiting, for 1 and for 100 pages, and how long the last of the 100 took to hear the change.
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConversationRouter } from '../im-adapters/core/router';
import { startWebChat } from '../im-adapters/web/server';
import { loadCatalog } from '../domain/catalog-loader';
import { goal, type BenchResult } from './report';
import { round } from './stats';
import { BENCH_REQUESTER, BENCH_REQUIREMENT, benchScenario, createBenchWorld, log, sleep, startBenchWorker } from './world';
import { waitUntil } from './im-latency';
import { countingStateQueries } from '../test/helpers/counting-gateway';

export interface PollsOptions {
  pages?: number;
  windowMs?: number;
}

export async function pollsBenchmark(options: PollsOptions = {}): Promise<BenchResult> {
  const pages = options.pages ?? 100;
  const windowMs = options.windowMs ?? 5000;
  const world = await createBenchWorld();
  const worker = await startBenchWorker(world, [benchScenario(['ui-kit'])], 'polls-worker');
  const counted = countingStateQueries(world.gateway);
  const { gateway } = counted;
  const chat = await startWebChat({ gateway, router: new ConversationRouter(gateway), loadCatalog: () => loadCatalog(world.catalogPath), outboxDir: path.join(world.dataDir, 'worker'), demoRequirements: [] });
  const stop = new AbortController();
  setMaxListeners(pages + 10, stop.signal); // one per page
  try {
    const started = (await post(`${chat.url}/api/threads`, { as: BENCH_REQUESTER, text: BENCH_REQUIREMENT, eventId: `polls-${randomBytes(6).toString('hex')}` })) as { runId: string };
    await waitUntil(() => world.gateway.state(started.runId), (s) => s.phase === 'awaiting_confirmation', 60_000);
    const seen = (await (await fetch(`${chat.url}/api/runs/${started.runId}`)).json()) as { state: { version: number }; messages: unknown[] };
    const url = `${chat.url}/api/runs/${started.runId}?after=${seen.state.version}&messages=${seen.messages.length}`;

    const measure = async (count: number, firstAddress: number) => {
      const polls = Array.from({ length: count }, (_, i) => longPoll(url, loopback(firstAddress + i), stop.signal));
      await sleep(500); // every poll is open
      const queries0 = counted.count();
      const cpu0 = process.cpuUsage();
      await sleep(windowMs);
      const cpu = process.cpuUsage(cpu0);
      return { polls, queriesPerSecond: ((counted.count() - queries0) * 1000) / windowMs, cpuMsPerSecond: ((cpu.user + cpu.system) / 1000) * (1000 / windowMs) };
    };
    log(`polls: 1 page, then ${pages} more, each waiting ${windowMs} ms on one run`);
    const one = await measure(1, 0);
    const many = await measure(pages, 1);
    const posted = performance.now();
    await post(`${chat.url}/api/runs/${started.runId}/messages`, { as: BENCH_REQUESTER, text: 'bench: the run moves', eventId: `polls-${randomBytes(6).toString('hex')}` });
    // The reply's answer comes once the run shows it; from then on, each page should hear of it within a tick or two.
    const t0 = performance.now();
    const replyMs = t0 - posted;
    const answers = await Promise.all([...one.polls, ...many.polls].map((poll) => poll.then((status) => ({ status, ms: performance.now() - t0 }))));
    const heard = answers.filter((a) => a.status === 200).length;
    const lastMs = Math.max(...answers.map((a) => a.ms));
    const queryRatio = many.queriesPerSecond / Math.max(one.queriesPerSecond, 0.001);
    const cpuRatio = many.cpuMsPerSecond / Math.max(one.cpuMsPerSecond, 0.001);
    return {
      name: 'polls',
      figures: {
        pages,
        window_ms: windowMs,
        state_queries_per_s_1_page: round(one.queriesPerSecond, 1),
        [`state_queries_per_s_${pages + 1}_pages`]: round(many.queriesPerSecond, 1),
        cpu_ms_per_s_1_page: round(one.cpuMsPerSecond, 1),
        [`cpu_ms_per_s_${pages + 1}_pages`]: round(many.cpuMsPerSecond, 1),
        reply_round_trip_ms: round(replyMs, 0),
        pages_that_heard_the_change: heard,
        last_page_heard_after_ms: round(lastMs, 0),
      },
      goals: [
        goal(`${pages + 1} waiting pages cost about what one does in state queries (≤ 1.5×)`, `${round(many.queriesPerSecond, 1)}/s vs ${round(one.queriesPerSecond, 1)}/s (${round(queryRatio, 2)}×)`, queryRatio <= 1.5),
        goal(`… and in CPU (≤ 2×, the client side of ${pages} sockets included)`, `${round(many.cpuMsPerSecond, 1)} vs ${round(one.cpuMsPerSecond, 1)} ms/s (${round(cpuRatio, 2)}×)`, cpuRatio <= 2),
        goal('every page hears the change within 500 ms of the run showing it', `${heard}/${answers.length}, the last after ${round(lastMs, 0)} ms`, heard === answers.length && lastMs < 500),
      ],
      notes: ['one web chat in the benchmark process (its CPU includes the pages\' sockets); the run waits at confirmation and moves once, by a reply in its thread (addContext)'],
    };
  } finally {
    stop.abort();
    await chat.close();
    await worker.stop();
    await world.close();
  }
}

function loopback(n: number): string {
  return `127.0.${Math.floor(n / 250) + 1}.${(n % 250) + 2}`;
}

function longPoll(url: string, localAddress: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get(url, { localAddress, signal }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', () => resolve(0));
  });
}

async function post(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (response.status !== 200) throw new Error(`POST ${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}
