// Context intake in the run: before proposing, and again whenever context was added, the links the
// requirement and the thread carry are read and the requirement brief is extracted (or corrected) from
// them. A link that cannot be read, or a brief that does not stand, is a note on the card: the run goes
// on with what it has, never fails for it.
import * as wf from '@temporalio/workflow';
import { linksIn } from '../domain/brief';
import { addSpend, limitsFrom, minLimits, noSpend, remaining } from '../domain/budget';
import { modelChoiceFor } from '../domain/catalog-schema';
import type { RepoSpecRef } from '../domain/activity-contracts';
import type { RunActivities } from './activity-stubs';
import { budgetedStep } from './budgeted-step';
import type { Run } from './run';

/** The label every gathering pass is recorded under in the run's budget (its spend is summed by it). */
export const GATHER_LABEL = 'read the requirement';

/** Whether context arrived that no pass has gathered yet. */
export function contextToGather(run: Run): boolean {
  return run.readsContext && run.state.context.length > run.state.intake.contextSeen;
}

/** One pass, when there is something to read or correct; otherwise only notes the context as seen. */
export async function gatherContext(run: Run, acts: RunActivities): Promise<void> {
  if (!run.readsContext) return;
  const { intake, request } = run.state;
  const fresh = run.state.context.slice(intake.contextSeen);
  const known = new Set([...intake.sources.flatMap((s) => [s.url, s.finalUrl]), ...intake.unreadable.map((u) => u.url)]);
  const links = [
    ...(intake.passes === 0 ? linksIn(request.requirement).map((url) => ({ url, via: 'requirement' as const })) : []),
    ...fresh.flatMap((c) => linksIn(c.text).map((url) => ({ url, via: 'context' as const }))),
  ].filter((link, index, all) => !known.has(link.url) && all.findIndex((l) => l.url === link.url) === index);
  // Text added after a brief exists corrects it; without a brief and without links there is nothing to extract from.
  const corrections = intake.brief ? fresh.map((c) => c.text) : [];
  const seen = run.state.context.length;
  if (links.length === 0 && corrections.length === 0) {
    intake.contextSeen = seen;
    if (intake.passes === 0) intake.passes = 1;
    run.touch();
    return;
  }
  const pass = intake.passes + 1;
  const catalog = run.catalog!;
  const firstPass = intake.passes === 0;
  if (firstPass) run.setPhase('gathering');
  const result = await budgetedStep(run, { key: `gather ${pass}`, label: GATHER_LABEL, repo: null, round: 0 }, ({ limits, spendKey }) =>
    acts.agent.gatherContext.executeWithOptions({ ...acts.agentOptions, summary: `read the requirement's sources · pass ${pass}` }, [{
      runId: run.state.runId,
      requirement: request.requirement,
      context: run.state.context.map((c) => c.text),
      links,
      known: intake.sources,
      previousBrief: intake.brief?.brief ?? null,
      corrections,
      allowHosts: catalog.context.allowHosts,
      maxOpenedLinks: catalog.context.maxOpenedLinks,
      apiSpecs: apiSpecsToRead(run),
      model: modelChoiceFor(catalog, 'extract', null),
      spendKey,
      // Within the step's and the run's budget, and what is left of the run's budget for reading.
      limits: { step: limits.step, run: minLimits(limits.run, extractBudgetLeft(run)) },
    }]),
  ).catch((error: unknown) => {
    if (wf.isCancellation(error)) throw error;
    intake.note = `the requirement's pages could not be read: ${innermostMessage(error)}`;
    return null;
  });
  intake.contextSeen = seen;
  intake.passes = pass;
  if (result) {
    intake.sources.push(...result.sources);
    intake.unreadable.push(...result.unreadable.filter((u) => !intake.unreadable.some((known) => known.url === u.url)));
    if (result.brief) intake.brief = { brief: result.brief, operations: result.operations ?? [], version: (intake.brief?.version ?? 0) + 1, at: Date.now(), contextSeen: seen };
    intake.note = result.note;
    run.recordTranscript(result.transcript);
  }
  run.decisionChanged(); // the card shows the brief and what could not be read
}

/** The api repositories' own definitions (catalog `openapi`) this run has not read yet. */
function apiSpecsToRead(run: Run): RepoSpecRef[] {
  const read = new Set(run.state.intake.sources.flatMap((s) => (s.repo ? [s.repo.id] : [])));
  return run.catalog!.repositories.filter((r) => r.openapi && !read.has(r.id)).map((r) => ({ repo: r.id, url: r.url, defaultBranch: r.defaultBranch, path: r.openapi! }));
}

/**
 * After this run's edit of an api repository changed its definition: the brief's operations from that
 * definition are shaped again from the run's branch, so the repositories edited after it (its dependents,
 * in dependency order) are given the API as changed, not as released. Never fails the round.
 */
export async function refreshApiShapes(run: Run, acts: RunActivities, id: string, changedFiles: readonly string[]): Promise<void> {
  const catalogRepo = run.catalogRepo(id);
  const record = run.state.intake.brief;
  const source = run.state.intake.sources.find((s) => s.repo?.id === id);
  if (!catalogRepo.openapi || !record || !source || !changedFiles.includes(catalogRepo.openapi)) return;
  const operations = record.operations.filter((op) => op.source === source.id);
  if (operations.length === 0 || !wf.patched('api-shapes-after-edit')) return;
  const repo = run.repo(id);
  const result = await acts.quick.readApiShapes
    .executeWithOptions({ ...acts.publishOptions, summary: `read ${id}'s ${catalogRepo.openapi} as edited` }, [{
      runId: run.state.runId,
      spec: { repo: id, url: catalogRepo.url, defaultBranch: catalogRepo.defaultBranch, path: catalogRepo.openapi },
      branch: repo.branch,
      sha: repo.headSha!,
      operations,
    }])
    .catch((error: unknown) => {
      if (wf.isCancellation(error)) throw error;
      return { operations, problems: [`${id}'s edited API definition could not be read: ${innermostMessage(error)}`] };
    });
  // The answer keeps the order of the operations asked about.
  let asked = 0;
  record.operations = record.operations.map((op) => (op.source === source.id ? (result.operations[asked++] ?? op) : op));
  if (result.problems.length) run.state.intake.note = result.problems.join('; ');
  run.touch();
}

/** What is left of the catalog's per-run budget for reading, after every earlier pass. */
function extractBudgetLeft(run: Run): ReturnType<typeof remaining> {
  const spent = run.state.budget.steps.filter((s) => s.step.startsWith(GATHER_LABEL)).reduce((sum, s) => addSpend(sum, s.spend), noSpend());
  return remaining(limitsFrom(run.catalog!.context.budget), spent);
}

function innermostMessage(error: unknown): string {
  let current: unknown = error;
  let message = 'unknown error';
  while (current instanceof Error) {
    if (current.message) message = current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return message;
}
