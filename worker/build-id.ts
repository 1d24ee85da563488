// A build id taken from the commit the code is checked out at. Local edits make it "<commit>-dirty", so
// an operator can tell a running version apart from the commit it claims; an image without .git must
// set WORKER_BUILD_ID (docker-compose.temporal.yml passes the commit in).
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT, type ServiceConfig } from './config';
import type { WorkerVersion } from './create-worker';

/** This build's Worker Deployment version, or null when versioning is off. */
export function workerVersion(config: ServiceConfig): WorkerVersion | null {
  const { enabled, deploymentName, buildId } = config.versioning;
  return enabled ? { deploymentName, buildId: buildId ?? buildIdOfCheckout(PROJECT_ROOT) } : null;
}

export function buildIdOfCheckout(root: string): string {
  const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  let commit: string;
  try {
    commit = git('rev-parse', '--short=12', 'HEAD');
  } catch {
    throw new Error(`WORKER_BUILD_ID is not set and ${root} is not a git checkout: set it to the commit this code was built from (or WORKER_VERSIONING=off)`);
  }
  const edited = git('status', '--porcelain', '--untracked-files=no') !== '';
  return edited ? `${commit}-dirty` : commit;
}
