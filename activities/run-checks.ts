// Runs a repository's install and check commands from the catalog on the pushed work branch. Reads
// only; retrying it is always safe.
import * as nodeFs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { commandEnvironment, runCommand } from './commands';
import { install } from './install-cache';
import { installCacheDir, packageManagerCaches } from './deps';
import { remoteFor, type ActivityDeps } from './deps';
import { ensureCommit, shallowClone } from './git/repository';
import { withWorkspace } from './git/workspace';
import type { CheckOutcome, CheckRequest } from './types';
import git from 'isomorphic-git';

const OUTPUT_TAIL_CHARS = 4000;

export async function runChecks(deps: ActivityDeps, request: CheckRequest): Promise<CheckOutcome> {
  const { repo, branch, sha } = request;
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, request.runId, `${repo.id}-checks`, async (dir) => {
    const checkout = path.join(dir, 'checkout');
    const head = await shallowClone(remote, checkout, branch, 1);
    if (head !== sha) {
      // The branch moved on since the round we are checking; check exactly that round's commit.
      if (!(await ensureCommit(remote, checkout, branch, sha))) throw new Error(`commit ${sha} is not on ${branch}`);
      await git.checkout({ fs: nodeFs, dir: checkout, ref: sha, force: true });
    }
    const home = path.join(dir, 'home');
    await nodeFs.promises.mkdir(home, { recursive: true });
    const env = commandEnvironment(home, packageManagerCaches(deps));
    const signal = Context.current().cancellationSignal;
    const heartbeat = () => Context.current().heartbeat();

    const results = await install(repo, checkout, { cacheDir: installCacheDir(deps), env, signal, onOutput: heartbeat });
    // Checks after a failed install would only fail for the same reason.
    if (results.every((r) => r.status === 'passed')) {
      for (const command of repo.checks) {
        heartbeat();
        const ran = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env, signal, onOutput: heartbeat });
        signal.throwIfAborted();
        results.push({
          name: command.name,
          command: command.run,
          kind: 'check',
          status: ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed',
          exitCode: ran.exitCode,
          durationMs: ran.durationMs,
          outputTail: (ran.timedOut ? `[killed after ${command.timeoutSeconds}s]\n` : '') + ran.outputTail.slice(-OUTPUT_TAIL_CHARS),
        });
      }
    }
    return { sha, passed: results.every((r) => r.status === 'passed'), results };
  });
}
