// Runs a repository's install and check commands from the catalog on the pushed work branch. Reads
// only; retrying it is always safe.
import * as nodeFs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { CatalogCommand } from '../shared/catalog-schema';
import type { CheckResult } from '../shared/contracts';
import { commandEnvironment, runCommand } from './commands';
import { remoteOf, type ActivityDeps } from './deps';
import { ensureCommit, shallowClone } from './git/repository';
import { withWorkspace } from './git/workspace';
import type { CheckOutcome, CheckRequest } from './types';
import git from 'isomorphic-git';

const OUTPUT_TAIL_CHARS = 4000;

export async function runChecks(deps: ActivityDeps, request: CheckRequest): Promise<CheckOutcome> {
  const { repo, branch, sha } = request;
  const remote = remoteOf(deps, repo.url);
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
    const env = commandEnvironment(home);
    const signal = Context.current().cancellationSignal;
    const heartbeat = () => Context.current().heartbeat();

    const results: CheckResult[] = [];
    const steps: { kind: CheckResult['kind']; command: CatalogCommand }[] = [
      ...repo.install.map((command) => ({ kind: 'install' as const, command })),
      ...repo.checks.map((command) => ({ kind: 'check' as const, command })),
    ];
    for (const { kind, command } of steps) {
      heartbeat();
      const ran = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env, signal, onOutput: heartbeat });
      signal.throwIfAborted();
      const status: CheckResult['status'] = ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed';
      results.push({
        name: command.name,
        command: command.run,
        kind,
        status,
        exitCode: ran.exitCode,
        durationMs: ran.durationMs,
        outputTail: (ran.timedOut ? `[killed after ${command.timeoutSeconds}s]\n` : '') + ran.outputTail.slice(-OUTPUT_TAIL_CHARS),
      });
      // Checks after a failed install would only fail for the same reason.
      if (kind === 'install' && status !== 'passed') break;
    }
    return { sha, passed: results.every((r) => r.status === 'passed'), results };
  });
}
