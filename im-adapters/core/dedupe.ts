// Chat platforms deliver at least once (Slack retries after 3 s, Lark after a few); the same delivery
// must have one effect. This catches repeats while the process lives; across restarts, the idempotency
// key each signal carries (derived from the same delivery id) makes the run ignore them.
const DEFAULT_TTL_MS = 60 * 60_000;
const MAX_ENTRIES = 50_000;

export class EventDeduper {
  private readonly seen = new Map<string, number>();

  constructor(private readonly ttlMs = DEFAULT_TTL_MS) {}

  /** True the first time an id is seen within the TTL. */
  firstTime(id: string, now = Date.now()): boolean {
    this.evict(now);
    if (this.seen.has(id)) return false;
    this.seen.set(id, now);
    return true;
  }

  private evict(now: number): void {
    // Insertion order is age order, so the oldest entries are first.
    for (const [id, at] of this.seen) {
      if (now - at < this.ttlMs && this.seen.size <= MAX_ENTRIES) break;
      this.seen.delete(id);
    }
  }
}
