// The proposer: a read-only agent loop over the catalog and the repositories in the requester's scope,
// answering which repositories a requirement touches. Code, not the model, has the last word on ids.
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import type { Proposal } from '../shared/contracts';
import { runAgentLoop } from './agent/loop';
import { PROPOSE_SYSTEM_PROMPT, proposePrompt } from './agent/prompts';
import { carriedSpending, stepReporter } from './agent/progress';
import { exploringTools } from './agent/tools/files';
import { defineTool, ToolRegistry } from './agent/tools/registry';
import { RepoSandbox } from './agent/tools/sandbox';
import { remoteOf, type ActivityDeps } from './deps';
import { shallowClone } from './git/repository';
import { withWorkspace } from './git/workspace';
import type { ProposeRequest, ProposeResult } from './types';

export const ProposalAnswerSchema = z.object({
  repositories: z
    .array(
      z.object({
        id: z.string().min(1),
        reason: z.string().trim().min(1, 'give a reason a backend engineer understands').max(1000),
        confidence: z.number().min(0).max(1),
      }),
    )
    .max(50),
  questions: z.array(z.string().trim().min(1).max(1000)).max(20).default([]),
});
export type ProposalAnswer = z.infer<typeof ProposalAnswerSchema>;

export async function proposeRepositories(deps: ActivityDeps, request: ProposeRequest): Promise<ProposeResult> {
  const model = deps.models.forTask({ kind: 'propose', runId: request.runId, requirement: request.requirement });
  return withWorkspace(deps.dataDir, request.runId, 'propose', async (dir) => {
    const opened = new Map<string, Promise<RepoSandbox>>();
    const openRepo = (id: string): Promise<RepoSandbox> => {
      let sandbox = opened.get(id);
      if (!sandbox) {
        const repo = request.repos.find((r) => r.id === id)!;
        const checkout = path.join(dir, id);
        sandbox = shallowClone(remoteOf(deps, repo.url), checkout, repo.defaultBranch, 1).then(() => RepoSandbox.open(checkout));
        opened.set(id, sandbox);
      }
      return sandbox;
    };
    const answer = defineTool({
      name: 'propose_repositories',
      description: 'Give your final answer: the repositories that must change, each with a reason and a confidence, and open questions.',
      input: ProposalAnswerSchema,
      run: async (value) => ({ final: value, text: 'Proposal received.' }),
    });
    const tools = new ToolRegistry<ProposalAnswer>([...exploringTools(openRepo, request.repos.map((r) => r.id)), answer]);
    const report = stepReporter(deps, request.runId, { step: 'propose repositories', round: 0 });
    const outcome = await runAgentLoop({
      model,
      system: PROPOSE_SYSTEM_PROMPT,
      prompt: proposePrompt(request),
      tools,
      limits: { maxTurns: request.maxTurns },
      spent: carriedSpending(),
      maxTokensPerCall: 4096,
      signal: Context.current().cancellationSignal,
      onStep: (step, spent) => report(step, spent),
    });
    const usage = { step: 'propose repositories', turns: outcome.spent.turns, inputTokens: outcome.spent.inputTokens, outputTokens: outcome.spent.outputTokens };
    const proposal: Proposal =
      outcome.kind === 'final'
        ? checkProposal(outcome.value, request.repos.map((r) => r.id), request.outOfScope)
        : {
            repos: [],
            questions: [],
            notes: [outcome.kind === 'limit' ? `The proposer stopped early (${outcome.reason}); please choose the repositories.` : 'The proposer gave no answer; please choose the repositories.'],
          };
    return { proposal, usage, model: model.name };
  });
}

/** Keeps what is in scope, drops the rest with a note saying why. */
export function checkProposal(answer: ProposalAnswer, inScope: readonly string[], outOfScope: readonly string[]): Proposal {
  const notes: string[] = [];
  const seen = new Set<string>();
  const repos = answer.repositories.filter((r) => {
    if (outOfScope.includes(r.id)) {
      notes.push(`Dropped "${r.id}": the requester may not target it (ask one of its owners to start the change).`);
      return false;
    }
    if (!inScope.includes(r.id)) {
      notes.push(`Dropped "${r.id}": there is no such repository in the catalog.`);
      return false;
    }
    if (seen.has(r.id)) return false;
    seen.add(r.id);
    return true;
  });
  return { repos, questions: answer.questions, notes };
}
