// Long polls share one watch per run: however many pages wait on a run, one loop reads it (a `state` query
// and the thread's outbox) every POLL_EVERY_MS and wakes each waiter whose condition the new reading meets,
// or at its own deadline. The loop stops when nobody waits, so an idle run costs nothing, and 100 open
// pages on one run cost what one does.
export interface Reading<T> {
  value: T;
  /** When the reading was taken (Date.now()). */
  at: number;
}

interface Waiter<T> {
  ready: (value: T) => boolean;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

interface Watch<T> {
  waiters: Set<Waiter<T>>;
  latest: Reading<T> | null;
  running: boolean;
}

export class RunWatches<T> {
  private readonly watches = new Map<string, Watch<T>>();
  /** Readings taken since the start (for tests and the benchmark: one per tick per watched run). */
  readings = 0;

  constructor(
    private readonly read: (runId: string) => Promise<T>,
    private readonly everyMs: number,
  ) {}

  /**
   * The first reading that `ready` accepts, or the latest one at `deadline` or on abort. A reading taken
   * for another waiter in the last tick is used at once; otherwise the watch reads now.
   */
  wait(runId: string, ready: (value: T) => boolean, deadline: number, aborted: AbortSignal): Promise<T> {
    const watch = this.watchOf(runId);
    const fresh = watch.latest !== null && Date.now() - watch.latest.at < this.everyMs ? watch.latest.value : null;
    if (fresh !== null && ready(fresh)) return Promise.resolve(fresh);
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        aborted.removeEventListener('abort', giveUp);
        watch.waiters.delete(waiter);
      };
      const waiter: Waiter<T> = {
        ready,
        resolve: (value) => (finish(), resolve(value)),
        reject: (error) => (finish(), reject(error)),
      };
      // At the deadline (or when the page goes) the page gets what is known: it asks again with it.
      const giveUp = () => (watch.latest ? waiter.resolve(watch.latest.value) : waiter.reject(new Error('no reading of the run yet')));
      const timer = setTimeout(giveUp, Math.max(0, deadline - Date.now()));
      aborted.addEventListener('abort', giveUp, { once: true });
      watch.waiters.add(waiter);
      if (!watch.running) void this.loop(runId, watch);
    });
  }

  /** Runs watched now (for tests). */
  get watched(): number {
    return this.watches.size;
  }

  private watchOf(runId: string): Watch<T> {
    let watch = this.watches.get(runId);
    if (!watch) {
      watch = { waiters: new Set(), latest: null, running: false };
      this.watches.set(runId, watch);
    }
    return watch;
  }

  private async loop(runId: string, watch: Watch<T>): Promise<void> {
    watch.running = true;
    try {
      while (watch.waiters.size > 0) {
        try {
          this.readings += 1;
          const value = await this.read(runId);
          watch.latest = { value, at: Date.now() };
          for (const waiter of [...watch.waiters]) if (waiter.ready(value)) waiter.resolve(value);
        } catch (error) {
          // A run that is gone (or refused) ends every wait on it with the reason.
          for (const waiter of [...watch.waiters]) waiter.reject(error);
        }
        if (watch.waiters.size > 0) await new Promise((resolve) => setTimeout(resolve, this.everyMs));
      }
    } finally {
      // Nothing can join between the loop's last check and here (no await): the watch is idle.
      watch.running = false;
      this.watches.delete(runId);
    }
  }
}

/** At most `limit` open long polls per client at once; the one over it is refused, not queued. */
export class PollsPerClient {
  private readonly open = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** A release function, or null when the client already has `limit` open. */
  take(client: string): (() => void) | null {
    const count = this.open.get(client) ?? 0;
    if (count >= this.limit) return null;
    this.open.set(client, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(client) ?? 1) - 1;
      if (left <= 0) this.open.delete(client);
      else this.open.set(client, left);
    };
  }
}
