// Runs a repository's install and check commands from the catalog on the pushed work branch, at the
// round's commit. Reads only; retrying it is always safe.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CheckResult } from '../domain/contracts';
import { runCommand } from './commands';
import { installCacheDir, checkoutFromCache, remoteFor, repositoryCommandEnv, repositoryConfinement, type ActivityDeps } from './deps';
import { withWorkspace } from './git/workspace';
import { whileHeartbeating } from './heartbeat';
import { install } from './install-cache';
import { repositoryRuntime } from './runtimes/use-runtime';
import { installChangeSet, installedVersions } from './packages/change-set-install';
import type { CheckOutcome, CheckRequest } from '../domain/activity-contracts';

const OUTPUT_TAIL_CHARS = 4000;

export async function runChecks(deps: ActivityDeps, request: CheckRequest): Promise<CheckOutcome> {
  const { repo, branch, sha } = request;
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, request.runId, `${repo.id}-checks`, (dir) =>
    whileHeartbeating(async (signal) => {
      const checkout = path.join(dir, 'checkout');
      await checkoutFromCache(deps, remote, checkout, branch, { sha });
      const home = path.join(dir, 'home');
      await fs.mkdir(home, { recursive: true });
      // The Node.js the repository asks for (engines, .nvmrc or the catalog), first on every command's PATH.
      const runtime = await repositoryRuntime(deps, repo, checkout, signal);
      const env = repositoryCommandEnv(deps, home, runtime.env);

      const confinement = { ...repositoryConfinement(deps, repo), ...runtime.confinement };
      const results: CheckResult[] = runtime.report ? [runtime.report] : [];
      results.push(...await install(repo, checkout, { cacheDir: installCacheDir(deps), maxBytes: deps.installCacheMaxBytes, env, signal, confinement, nodeVersion: runtime.version }));
      // The change set: upstream packages of this run installed over the released ones, in this workspace only.
      if (results.every((r) => r.status === 'passed')) {
        const changeSet = await installChangeSet(checkout, request.changeSet, { env, signal, confinement });
        if (changeSet.result) results.push(changeSet.result);
      }
      // Checks after a failed install would only fail for the same reason.
      if (results.every((r) => r.status === 'passed')) {
        for (const command of repo.checks) {
          const ran = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env, signal, confinement });
          signal.throwIfAborted();
          results.push({
            name: command.name,
            command: command.run,
            kind: 'check',
            status: ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed',
            exitCode: ran.exitCode,
            durationMs: ran.durationMs,
            outputTail: (ran.timedOut ? `[killed after ${command.timeoutSeconds}s]\n` : '') + ran.outputTail.slice(-OUTPUT_TAIL_CHARS),
            ...(ran.unconfined ? { unconfined: true as const } : {}),
          });
        }
      }
      return { sha, passed: results.every((r) => r.status === 'passed'), results, installed: await installedVersions(checkout, (request.upstreamPackages ?? []).map((name) => ({ name }))) };
    }),
  );
}
