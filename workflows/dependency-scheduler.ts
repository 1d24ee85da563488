// Runs work for several repositories at once, at most `limit` at a time, starting a repository only when
// the ones it depends on (within this set) are done. Deterministic: plain promises, no timers or I/O.

export async function inDependencyOrder(
  ids: readonly string[],
  dependsOn: (id: string) => readonly string[],
  limit: number,
  work: (id: string) => Promise<void>,
): Promise<void> {
  const waiting = [...ids];
  const done = new Set<string>();
  const running = new Map<string, Promise<{ id: string; error?: unknown }>>();
  while (waiting.length > 0 || running.size > 0) {
    for (const id of [...waiting]) {
      if (running.size >= limit) break;
      const ready = dependsOn(id).every((dep) => !ids.includes(dep) || done.has(dep));
      if (!ready) continue;
      waiting.splice(waiting.indexOf(id), 1);
      // Settle into a value so a failure never becomes an unhandled rejection while others still run.
      running.set(id, work(id).then(() => ({ id }), (error: unknown) => ({ id, error })));
    }
    if (running.size === 0) throw new Error(`cannot order ${waiting.join(', ')}: their dependencies never finish`);
    const finished = await Promise.race(running.values());
    running.delete(finished.id);
    if (finished.error !== undefined) throw finished.error; // the others settle into values, unobserved
    done.add(finished.id);
  }
}
