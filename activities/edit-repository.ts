// One edit round of one repository: start from the pushed work branch (or the default branch on the first
// round), let the agent edit inside a bounded loop, commit and push. Safe to retry: a round whose commit is
// already on the branch is reported, not redone.
import { Context } from '@temporalio/activity';
import type { StepUsage } from '../shared/contracts';
import { oneLine } from '../shared/summary';
import { runAgentLoop } from './agent/loop';
import { EDIT_SYSTEM_PROMPT, editPrompt } from './agent/prompts';
import { carriedSpending, stepReporter } from './agent/progress';
import { editingTools } from './agent/tools/files';
import { defineTool, ToolRegistry } from './agent/tools/registry';
import { RepoSandbox } from './agent/tools/sandbox';
import { remoteOf, type ActivityDeps } from './deps';
import { describeChanges } from './git/diff';
import {
  changedPaths,
  checkoutNewBranch,
  commitAll,
  commitFiles,
  ensureCommit,
  push,
  recentCommits,
  remoteBranchSha,
  shallowClone,
  type LoggedCommit,
} from './git/repository';
import { withWorkspace } from './git/workspace';
import type { EditRequest, EditResult } from './types';
import { z } from 'zod';

const RUN_TRAILER = 'Change-Request-Run';
const ROUND_TRAILER = 'Change-Request-Round';

export async function editRepository(deps: ActivityDeps, request: EditRequest): Promise<EditResult> {
  const { repo, branch, runId, round } = request;
  const remote = remoteOf(deps, repo.url);
  return withWorkspace(deps.dataDir, runId, `${repo.id}-r${round.n}`, async (dir) => {
    const branchSha = await remoteBranchSha(remote, branch);
    await shallowClone(remote, dir, branchSha ? branch : repo.defaultBranch, request.knownCommits + 2);
    if (!branchSha) await checkoutNewBranch(dir, branch);
    const baseSha = await findBase(remote, dir, branch, runId);

    const done = (await recentCommits(dir, request.knownCommits + 2)).find((c) => trailer(c.message, ROUND_TRAILER) === `${runId}/${round.n}`);
    if (done) return resultOf(request, dir, baseSha, done, zeroUsage(request), null, bodyOf(done.message));

    const sandbox = await RepoSandbox.open(dir);
    const finish = defineTool({
      name: 'finish',
      description: 'Call when the change is complete, with a short summary for the reviewer.',
      input: z.object({ summary: z.string().min(1).max(4000) }),
      run: async ({ summary }) => ({ final: summary, text: 'Finished.' }),
    });
    const tools = new ToolRegistry<string>([...editingTools(sandbox), finish]);
    const model = deps.models.forTask({
      kind: 'edit',
      runId,
      requirement: request.requirement,
      repo: repo.id,
      round: round.n,
      roundKind: round.kind,
      priorFixRounds: round.priorFixRounds,
      feedback: request.feedback,
    });
    const report = stepReporter(deps, runId, { step: `edit ${repo.id}`, repo: repo.id, round: round.n });
    const outcome = await runAgentLoop({
      model,
      system: EDIT_SYSTEM_PROMPT,
      prompt: editPrompt(request),
      tools,
      limits: { maxTurns: request.maxTurns },
      spent: carriedSpending(),
      maxTokensPerCall: 8192,
      signal: Context.current().cancellationSignal,
      onStep: (step, spent) => report(step, spent),
    });
    const notes = outcome.kind === 'final' ? outcome.value : outcome.kind === 'ended' ? outcome.text : `Stopped early: ${outcome.reason}.`;
    const stoppedBy = outcome.kind === 'limit' ? outcome.reason : null;
    const usage: StepUsage = { step: `edit ${repo.id} round ${round.n}`, turns: outcome.spent.turns, inputTokens: outcome.spent.inputTokens, outputTokens: outcome.spent.outputTokens };

    Context.current().heartbeat({ spent: outcome.spent });
    const commit = await commitAll(dir, commitMessage(request, notes));
    if (commit) await push(remote, dir, branch);
    const head: LoggedCommit | null = commit ? { sha: commit.sha, message: commitMessage(request, notes), parents: [] } : null;
    return resultOf(request, dir, baseSha, head, usage, stoppedBy, notes);
  });
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

function trailer(message: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.+)$`, 'm').exec(message)?.[1]?.trim();
}

function bodyOf(message: string): string {
  const lines = message.split('\n');
  return lines.slice(2).filter((l) => !/^[A-Za-z-]+: /.test(l)).join('\n').trim();
}

/** The commit the work branch started from: the newest commit not made by this run. */
async function findBase(remote: ReturnType<typeof remoteOf>, dir: string, branch: string, runId: string): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const commits = await recentCommits(dir, 10_000);
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
  usage: StepUsage,
  stoppedBy: string | null,
  notes: string,
): Promise<EditResult> {
  const headSha = commit?.sha ?? (await recentCommits(dir, 1))[0]!.sha;
  const report = describeChanges(await changedPaths(dir, baseSha, headSha));
  return {
    repo: request.repo.id,
    round: request.round.n,
    commit: commit ? { round: request.round.n, sha: commit.sha, message: commit.message.split('\n')[0]!, files: await commitFiles(dir, commit.sha) } : null,
    baseSha,
    headSha,
    ...report,
    agentNotes: notes,
    usage,
    stoppedBy,
  };
}

function zeroUsage(request: EditRequest): StepUsage {
  return { step: `edit ${request.repo.id} round ${request.round.n}`, turns: 0, inputTokens: 0, outputTokens: 0 };
}
