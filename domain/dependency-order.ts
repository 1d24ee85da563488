// Ordering by `dependsOn`: a shared package before the app that uses it. Pure, so the workflow uses it too.

/** `ids` sorted so every repository comes after the ones (among `ids`) it depends on; ties keep input order. */
export function dependencyOrder(ids: readonly string[], dependsOn: (id: string) => readonly string[]): string[] {
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visit = (id: string, path: Set<string>): void => {
    if (placed.has(id) || path.has(id)) return; // the catalog refuses cycles; this only guards the walk
    path.add(id);
    for (const dep of dependsOn(id)) if (ids.includes(dep)) visit(dep, path);
    path.delete(id);
    placed.add(id);
    ordered.push(id);
  };
  for (const id of ids) visit(id, new Set());
  return ordered;
}

/** Dependencies of `id` that are also among `ids`. */
export function dependenciesWithin(ids: readonly string[], dependsOn: (id: string) => readonly string[], id: string): string[] {
  return dependsOn(id).filter((dep) => ids.includes(dep) && dep !== id);
}
