// The change set as one thing: which in-flight packages of a run each repository is installed against, and
// the releases approving it plans. Pure (the workflow computes it deterministically from its state).
import semver from 'semver';
import type { Catalog, CatalogRepo, ReleaseBump } from './catalog-schema';
import type { ChangeSetPackage, PublishRecord, ReleasePlanStep, RunState, UpstreamVersion } from './contracts';

/**
 * A short, stable name for a run inside versions and dist-tags: the last 8 of its [a-z0-9] characters
 * (run ids end in random hex). A semver prerelease identifier that is all digits may not start with 0,
 * so an all-digit one gets a letter in front.
 */
export function shortRunId(runId: string): string {
  const tail = runId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-8) || 'run';
  return /^\d+$/.test(tail) ? `r${tail}` : tail;
}

/** `1.4.0` → `1.4.0-cr.ab12cd34.2`: below the release it leads to, unique per run and round. */
export function prereleaseVersion(baseVersion: string, runId: string, round: number): string {
  const parsed = semver.parse(baseVersion);
  const core = parsed ? `${parsed.major}.${parsed.minor}.${parsed.patch}` : '0.0.0';
  return `${core}-cr.${shortRunId(runId)}.${round}`;
}

/** The dist-tag that follows a run's newest prerelease, e.g. `npm install @acme/ui-kit@cr-ab12cd34`. */
export function distTagFor(runId: string): string {
  return `cr-${shortRunId(runId)}`;
}

/** True for a version string this service made (what a repository must never be left depending on). */
export function isRunPrerelease(version: string): boolean {
  return /-cr\.[a-z0-9]+\.\d+$/.test(version.trim().replace(/^[~^=v]+/, ''));
}

/** Every repository `id` depends on, directly or through others, nearest first. */
export function upstreamsOf(catalog: Pick<Catalog, 'repositories'>, id: string): string[] {
  const seen: string[] = [];
  const visit = (repoId: string) => {
    for (const dep of catalog.repositories.find((r) => r.id === repoId)?.dependsOn ?? []) {
      if (seen.includes(dep)) continue;
      seen.push(dep);
      visit(dep);
    }
  };
  visit(id);
  return seen;
}

/** The newest successful publish of a package repository in this run, and a note when a later one failed. */
export function latestPublish(publishes: readonly PublishRecord[]): { record: PublishRecord | null; note: string | undefined } {
  const record = [...publishes].reverse().find((p) => p.status === 'published' && p.version && p.name) ?? null;
  const failedAfter = publishes.filter((p) => p.status === 'failed' && (!record || p.round > record.round));
  const note = failedAfter.length
    ? `round ${failedAfter.map((p) => p.round).join(', ')} could not be published, so ${record ? `round ${record.round}'s prerelease` : 'the released version'} is used`
    : undefined;
  return { record, note };
}

/**
 * What `id` is installed against: for every package repository upstream of it in the catalog, this run's
 * newest prerelease when the package changed in this run and was published, else the released version.
 */
export function upstreamVersionsOf(state: Pick<RunState, 'repos'>, catalog: Pick<Catalog, 'repositories' | 'policy'>, id: string): UpstreamVersion[] {
  const versions: UpstreamVersion[] = [];
  for (const dep of upstreamsOf(catalog, id)) {
    const repo = catalog.repositories.find((r) => r.id === dep);
    if (!repo?.publish) continue;
    const progress = state.repos[dep];
    const { record, note } = latestPublish(progress?.publishes ?? []);
    // The name from the package itself once a publish read it, else the catalog's; the id as a last resort.
    const name = packageNameOf(repo, progress?.publishes ?? []) ?? dep;
    if (catalog.policy.integrateChangeSets && record) {
      versions.push({ repo: dep, name, source: 'run', version: record.version, ...(note ? { note } : {}) });
    } else {
      const why = !catalog.policy.integrateChangeSets ? 'change sets are switched off (policy.integrateChangeSets)' : note;
      versions.push({ repo: dep, name, source: 'released', version: null, ...(why ? { note: why } : {}) });
    }
  }
  return versions;
}

/** The in-flight packages to install for `id` (the run's prereleases among its upstream versions). */
export function changeSetOf(state: Pick<RunState, 'repos'>, catalog: Pick<Catalog, 'repositories' | 'policy'>, id: string): ChangeSetPackage[] {
  return upstreamVersionsOf(state, catalog, id).flatMap((v) => {
    if (v.source !== 'run' || !v.version) return [];
    const record = latestPublish(state.repos[v.repo]?.publishes ?? []).record!;
    return [{ repo: v.repo, name: v.name, version: v.version, round: record.round, sha: record.sha }];
  });
}

/** Whether two lists of upstream versions install the same thing (a dependent is re-checked when not). */
export function sameUpstreams(a: readonly UpstreamVersion[], b: readonly UpstreamVersion[]): boolean {
  const key = (list: readonly UpstreamVersion[]) => list.map((v) => `${v.repo}=${v.source}:${v.version ?? ''}`).sort().join(',');
  return key(a) === key(b);
}

/** The release a package's merged PR needs: what the branch already declares if it went up, else the next bump. */
export function plannedRelease(record: Pick<PublishRecord, 'releasedVersion' | 'headVersion'>, bump: ReleaseBump): { version: string; bump: ReleaseBump | 'as-committed' } | null {
  const released = record.releasedVersion ? semver.valid(semver.coerce(record.releasedVersion)) : null;
  const head = record.headVersion ? semver.valid(record.headVersion) : null;
  if (head && released && semver.gt(head, released) && !semver.prerelease(head)) return { version: head, bump: 'as-committed' };
  const from = released ?? head;
  if (!from) return null;
  const next = semver.inc(from, bump);
  return next ? { version: next, bump } : null;
}

/**
 * The merge and release plan: each changed package's release (the catalog's bump, or an owner's choice),
 * and for each changed dependent the ranges its branch must depend on — `^<planned release>`, never the
 * run's prerelease. In merge order.
 */
export function planReleases(
  state: Pick<RunState, 'repos' | 'releaseChoices'>,
  catalog: Pick<Catalog, 'repositories' | 'policy'>,
  mergeOrder: readonly string[],
): ReleasePlanStep[] {
  const releases = new Map<string, NonNullable<ReleasePlanStep['release']>>();
  for (const id of mergeOrder) {
    const repo = catalog.repositories.find((r) => r.id === id);
    const { record } = latestPublish(state.repos[id]?.publishes ?? []);
    if (!repo?.publish || !record?.name || (state.repos[id]?.commits.length ?? 0) === 0) continue;
    const choice = state.releaseChoices[id];
    const planned = plannedRelease(record, choice?.bump ?? repo.publish.release);
    if (!planned) continue;
    releases.set(id, { name: record.name, version: planned.version, bump: planned.bump, from: record.releasedVersion, by: choice?.by ?? null });
  }
  return mergeOrder.flatMap((id): ReleasePlanStep[] => {
    const needs = upstreamsOf(catalog, id).flatMap((dep) => {
      const release = releases.get(dep);
      return release ? [{ repo: dep, name: release.name, range: `^${release.version}` }] : [];
    });
    const release = releases.get(id) ?? null;
    const changed = (state.repos[id]?.commits.length ?? 0) > 0;
    return release || (changed && needs.length) ? [{ repo: id, release, needs: changed ? needs : [] }] : [];
  });
}

/** The npm name of a package repository: as its last publish read it from package.json, else the catalog's. */
export function packageNameOf(repo: CatalogRepo, publishes: readonly PublishRecord[]): string | null {
  return [...publishes].reverse().find((p) => p.name)?.name ?? repo.publish?.name ?? null;
}
