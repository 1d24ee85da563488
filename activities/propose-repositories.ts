// The proposer: a read-only agent loop over the catalog and the repositories in the requester's scope,
// answering which repositories a requirement touches. Code, not the model, has the last word on ids.
import path from 'node:path';
import { z } from 'zod';
import type { Proposal } from '../domain/contracts';
import { PROPOSE_SYSTEM_PROMPT, proposePrompt } from './agent/prompts';
import { runAgentStep } from './agent/run-step';
import { exploringTools } from './agent/tools/files';
import { defineTool, ToolRegistry } from './agent/tools/registry';
import { RepoSandbox } from './agent/tools/sandbox';
import { checkoutFromCache, remoteFor, type ActivityDeps } from './deps';
import { withWorkspace } from './git/workspace';
import type { ProposeRequest, ProposeResult } from '../domain/activity-contracts';

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

type Answer = { valid: true; answer: ProposalAnswer } | { valid: false; error: string };

const NUDGE = 'Please answer by calling propose_repositories; a prose answer cannot be used.';

export async function proposeRepositories(deps: ActivityDeps, request: ProposeRequest): Promise<ProposeResult> {
  return withWorkspace(deps.dataDir, request.runId, 'propose', async (dir) => {
    const opened = new Map<string, Promise<RepoSandbox>>();
    const openRepo = (id: string): Promise<RepoSandbox> => {
      let sandbox = opened.get(id);
      if (!sandbox) {
        const repo = request.repos.find((r) => r.id === id)!;
        const checkout = path.join(dir, id);
        sandbox = remoteFor(deps, repo.url)
          .then((remote) => checkoutFromCache(deps, remote, checkout, repo.defaultBranch))
          .then(() => RepoSandbox.open(checkout));
        opened.set(id, sandbox);
      }
      return sandbox;
    };
    // The answer is validated here rather than by the registry, so that a second invalid answer ends the
    // loop (the person chooses) instead of letting the model try until the budget runs out.
    let invalidAnswers = 0;
    const answer = defineTool({
      name: 'propose_repositories',
      description: 'Give your final answer: the repositories that must change, each with a reason and a confidence, and open questions.',
      input: z.unknown(),
      inputShownToModel: ProposalAnswerSchema,
      run: async (value) => {
        const parsed = ProposalAnswerSchema.safeParse(value);
        if (parsed.success) return { final: { valid: true, answer: parsed.data } satisfies Answer, text: 'Proposal received.' };
        const error = z.prettifyError(parsed.error);
        invalidAnswers += 1;
        if (invalidAnswers >= 2) return { final: { valid: false, error } satisfies Answer, text: 'The answer is still invalid.' };
        return { isError: true, text: `Invalid answer for propose_repositories: ${error}\nCall it again with a valid answer.` };
      },
    });
    const tools = new ToolRegistry<Answer>([...exploringTools(openRepo, request.repos.map((r) => r.id)), answer]);
    const step = await runAgentStep(deps, request.runId, {
      task: { kind: 'propose', runId: request.runId, requirement: request.requirement },
      label: 'propose repositories',
      repo: null,
      round: 0,
      system: PROPOSE_SYSTEM_PROMPT,
      prompt: proposePrompt(request),
      tools,
      limits: request.limits,
      model: request.model,
      spendKey: request.spendKey,
      nudgeIfNoFinal: NUDGE,
    });
    const { outcome } = step;
    const askPerson = (why: string): Proposal => ({ repos: [], questions: [], notes: [`${why} Please choose the repositories.`] });
    const proposal: Proposal =
      outcome.kind === 'limit'
        ? askPerson(`The proposer stopped early (${outcome.stop.message}).`)
        : outcome.kind === 'ended'
          ? askPerson('The proposer did not give a usable answer, even when asked again.')
          : outcome.value.valid
            ? checkProposal(outcome.value.answer, request.repos.map((r) => r.id), request.outOfScope)
            : askPerson(`The proposer's answer was invalid twice (${outcome.value.error.replace(/\n/g, ' ')}).`);
    return { proposal, usage: step.usage, transcript: step.transcript };
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
