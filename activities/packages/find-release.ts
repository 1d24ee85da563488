// Whether a package's planned release has reached the registry: the first released version (no
// prerelease) at or after the planned one. Read-only, so safe to retry; an unreachable registry is thrown
// for Temporal to retry later.
import semver from 'semver';
import type { ReleaseFound, ReleaseRequest } from '../../domain/activity-contracts';
import type { ActivityDeps } from '../deps';
import { readPackument } from './npm';

export async function findRelease(deps: ActivityDeps, request: ReleaseRequest): Promise<ReleaseFound> {
  if (!deps.registry) return { name: request.name, version: null, note: 'no npm registry is configured for this worker' };
  const packument = await readPackument(deps.registry, request.name);
  const released = Object.keys(packument?.versions ?? {})
    .filter((version) => semver.valid(version) && !semver.prerelease(version) && semver.gte(version, request.atLeast))
    .sort(semver.compare);
  return { name: request.name, version: released[0] ?? null, note: null };
}
