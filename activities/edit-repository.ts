// One edit round of one repository: start from the pushed work branch (or the default branch on the first
// round), let the agent edit inside a bounded loop, commit and push. Safe to retry: a round whose commit is
// already on the branch is reported, not redone.
import { Context } from '@temporalio/activity';
import { oneLine } from '../domain/summary';
import path from 'node:path';
import { EDIT_SYSTEM_PROMPT, editPrompt } from './agent/prompts';
import { recordedSpending } from './agent/progress';
import { repositoryRuntime } from './runtimes/use-runtime';
import { heartbeat } from './heartbeat';
import { runAgentStep, type StepRun } from './agent/run-step';
import { editingTools } from './agent/tools/files';
import { runCommandTool } from './agent/tools/run-command';
import { defineTool, ToolRegistry } from './agent/tools/registry';
import { RepoSandbox } from './agent/tools/sandbox';
import { checkoutFromCache, cloneCacheOf, remoteFor, repositoryCommandEnv, repositoryConfinement, type ActivityDeps } from './deps';
import { keepSecretsOut } from './git/secret-guard';
import { revertRunPins } from './change-set-guard';
import { rootConventions, withNearestConventions } from './agent/conventions';
import { installChangeSet } from './packages/change-set-install';
import { describeChanges } from './git/diff';
import {
  changedPaths,
  checkoutNewBranch,
  commitAll,
  commitFiles,
  ensureCommit,
  firstParentLine,
  pushMergingIfMoved,
  recentCommits,
  resolveHead,
  remoteBranchSha,
  type LoggedCommit,
  type Remote,
} from './git/repository';
import { withWorkspace } from './git/workspace';
import type { EditRequest, EditResult } from '../domain/activity-contracts';
import { z } from 'zod';

const RUN_TRAILER = 'Change-Request-Run';
const ROUND_TRAILER = 'Change-Request-Round';

export async function editRepository(deps: ActivityDeps, request: EditRequest): Promise<EditResult> {
  const { repo, branch, runId, round } = request;
  const remote = await remoteFor(deps, repo.url);
  return withWorkspace(deps.dataDir, runId, `${repo.id}-r${round.n}`, async (workspace) => {
    const dir = path.join(workspace, 'repo');
    const branchSha = await remoteBranchSha(remote, branch);
    // Recent commits come along: a retried round finds its own commit among them.
    const depth = request.knownCommits + 2;
    if (branchSha) {
      await checkoutFromCache(deps, remote, dir, branch, { sha: branchSha, depth });
    } else {
      await checkoutFromCache(deps, remote, dir, repo.defaultBranch, { depth });
      await checkoutNewBranch(dir, branch);
    }
    const baseSha = await findBase(remote, dir, branch, runId);

    const done = (await recentCommits(dir, request.knownCommits + 2)).find((c) => trailer(c.message, ROUND_TRAILER) === `${runId}/${round.n}`);
    if (done) {
      // An earlier attempt pushed this round and then died: report its commit and what it spent.
      const usage = { step: `edit ${repo.id} round ${round.n}`, repo: repo.id, round: round.n, model: '(earlier attempt)', spend: await recordedSpending(deps, runId, request.spendKey), stoppedBy: null };
      return resultOf(request, dir, baseSha, done, { usage, transcript: null }, bodyOf(done.message));
    }

    const sandbox = await RepoSandbox.open(dir);
    // The agent's test runs use the Node.js the checks will use.
    const runtime = await repositoryRuntime(deps, repo, dir);
    const confinement = { ...repositoryConfinement(deps, repo), ...runtime.confinement };
    const finish = defineTool({
      name: 'finish',
      description: 'Call when the change is complete, with a short summary for the reviewer.',
      input: z.object({ summary: z.string().min(1).max(4000) }),
      run: async ({ summary }) => ({ final: summary, text: 'Finished.' }),
    });
    const commands = runCommandTool(dir, {
      allowed: [...repo.install, ...repo.checks],
      env: (home) => repositoryCommandEnv(deps, home, runtime.env),
      confinement,
      onOutput: () => heartbeat(),
      // The agent's installs see the change set too, so its own test runs match what the checks will install.
      afterInstall: request.changeSet.length
        ? async (env, signal) => (await installChangeSet(dir, request.changeSet, { env, signal, onOutput: () => heartbeat(), confinement })).result
        : undefined,
      installNames: repo.install.map((c) => c.name),
    });
    const tools = new ToolRegistry<string>([...withNearestConventions(editingTools(sandbox), sandbox), commands, finish]);
    const conventions = await rootConventions(sandbox, repo.instructions);
    const step = await runAgentStep(deps, runId, {
      task: { kind: 'edit', runId, requirement: request.requirement, repo: repo.id, round: round.n, roundKind: round.kind, priorFixRounds: round.priorFixRounds, feedback: request.feedback },
      label: `edit ${repo.id} round ${round.n}`,
      repo: repo.id,
      round: round.n,
      system: EDIT_SYSTEM_PROMPT,
      prompt: editPrompt(request, conventions),
      tools,
      limits: request.limits,
      model: request.model,
      spendKey: request.spendKey,
    });
    const { outcome } = step;
    const agentNotes = outcome.kind === 'final' ? outcome.value : outcome.kind === 'ended' ? outcome.text : `Stopped early (${outcome.stop.message}); the work so far is kept.`;

    // Whatever the agent did is kept, also when a budget stopped it: the requester decides what next.
    Context.current().cancellationSignal.throwIfAborted();
    const reverted = await revertRunPins(dir, { runId, branch });
    const withPins = reverted.length
      ? `${agentNotes}\n\nThe service reverted dependency specs that pointed at this run's prereleases or branch (checks install the change set by themselves; the release plan sets the ranges when the pull requests open):\n${reverted.map((r) => `- ${r}`).join('\n')}`
      : agentNotes;
    const leaking = await keepSecretsOut(dir, deps.redact);
    const notes = leaking.length
      ? `${withPins}\n\nThe service kept ${leaking.map((f) => `\`${f}\``).join(', ')} out of the commit and put ${leaking.length === 1 ? 'it' : 'them'} back as before: ${leaking.length === 1 ? 'it contains' : 'they contain'} one of the service's secrets (possibly encoded).`
      : withPins;
    const message = commitMessage(request, notes);
    const commit = await commitAll(dir, message);
    // Someone may have pushed to the branch meanwhile: their commits are merged in, the agent's work kept.
    if (commit) {
      await pushMergingIfMoved(remote, dir, branch, mergeMessage(request));
      // The checks and previews that follow find the pushed commit in this worker's cache.
      await adoptIntoCache(deps, remote, dir, branch);
    }
    return resultOf(request, dir, baseSha, commit ? { sha: commit.sha, message, parents: [] } : null, step, notes);
  });
}

async function adoptIntoCache(deps: ActivityDeps, remote: Remote, dir: string, branch: string): Promise<void> {
  try {
    await cloneCacheOf(deps).adoptPushed(remote, dir, branch, await resolveHead(dir));
  } catch {
    // Only a speed-up: the next activity fetches the commit instead.
  }
}

function commitMessage(request: EditRequest, notes: string): string {
  const title = `${request.repo.id}: ${oneLine(request.requirement, 60)} (round ${request.round.n})`;
  return [
    title,
    '',
    notes.trim() || 'No summary given.',
    '',
    `Requested-by: ${request.requester}`,
    `${RUN_TRAILER}: ${request.runId}`,
    `${ROUND_TRAILER}: ${request.runId}/${request.round.n}`,
    '',
  ].join('\n');
}

function mergeMessage(request: EditRequest): string {
  return [
    `Merge what was pushed to ${request.branch} meanwhile (round ${request.round.n})`,
    '',
    `${RUN_TRAILER}: ${request.runId}`,
    `${ROUND_TRAILER}: ${request.runId}/${request.round.n}`,
    '',
  ].join('\n');
}

function trailer(message: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.+)$`, 'm').exec(message)?.[1]?.trim();
}

function bodyOf(message: string): string {
  const lines = message.split('\n');
  return lines.slice(2).filter((l) => !/^[A-Za-z-]+: /.test(l)).join('\n').trim();
}

/** The commit the work branch started from: the newest commit not made by this run. */
async function findBase(remote: Remote, dir: string, branch: string, runId: string): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt++) {
    // The branch's own line: commits merged in from elsewhere are not where it started.
    const commits = await firstParentLine(dir, 10_000, (c) => trailer(c.message, RUN_TRAILER) !== runId);
    const base = commits.find((c) => trailer(c.message, RUN_TRAILER) !== runId);
    if (base) return base.sha;
    const oldest = commits[commits.length - 1];
    const parent = oldest?.parents[0];
    if (parent && (await ensureCommit(remote, dir, branch, parent))) continue;
    break;
  }
  throw new Error(`Cannot find where ${branch} started: its history has no commit from before this run.`);
}

async function resultOf(
  request: EditRequest,
  dir: string,
  baseSha: string,
  commit: LoggedCommit | null,
  step: Pick<StepRun<string>, 'usage'> & { transcript: StepRun<string>['transcript'] | null },
  notes: string,
): Promise<EditResult> {
  const headSha = (await firstParentLine(dir, 1))[0]!.sha; // a merge commit when the branch had moved
  const report = describeChanges(await changedPaths(dir, baseSha, headSha));
  return {
    repo: request.repo.id,
    round: request.round.n,
    commit: commit ? { round: request.round.n, sha: commit.sha, message: commit.message.split('\n')[0]!, files: await commitFiles(dir, commit.sha) } : null,
    baseSha,
    headSha,
    ...report,
    agentNotes: notes,
    usage: step.usage,
    transcript: step.transcript,
  };
}
