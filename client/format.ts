// A run's state as text a person reads in a terminal.
import { isDegraded, previewAddress, type RunState, type Transcript } from '../domain/contracts';
import { describeDimension, inputTokensOf, type BudgetLimits, type Spend } from '../domain/budget';
import { describeUpstream, renderSummaryMarkdown } from '../domain/summary';
import { WORKER_ROLES } from '../workflows/task-queues';
import type { DeploymentReport } from './deployments';

export function describeSpend(spend: Spend): string {
  const cache = spend.cacheReadTokens || spend.cacheWriteTokens ? ` (cache: ${spend.cacheReadTokens} read, ${spend.cacheWriteTokens} written)` : '';
  return `${spend.turns} turns, ${inputTokensOf(spend)} input + ${spend.outputTokens} output tokens${cache}, $${spend.costUsd.toFixed(4)}, ${Math.round(spend.wallTimeMs / 1000)}s`;
}

function describeLimits(limits: BudgetLimits): string {
  return (['turns', 'costUsd', 'wallTimeMs'] as const).map((d) => describeDimension(d, limits[d])).join(', ');
}

const NEXT_STEP: Partial<Record<RunState['phase'], string>> = {
  awaiting_confirmation: 'confirm the repositories:  npm run cli -- confirm <run> [repo ...]',
  awaiting_budget: 'extend the budget:  npm run cli -- extend-budget <run>   or review the partial work:  npm run cli -- extend-budget <run> --stop',
  awaiting_review: 'give feedback:  npm run cli -- feedback <run> "<text>"   or approve:  npm run cli -- approve <run>',
  tracking: 'the pull requests are open: review and merge them on the forge; the run ends when each is merged or closed',
};

export function formatState(state: RunState, options: { summary?: boolean } = {}): string {
  const out: string[] = [];
  const age = (at: number) => new Date(at).toISOString().replace('T', ' ').slice(0, 19);
  out.push(`Run ${state.runId} — ${state.phase.toUpperCase()} (state v${state.version})`);
  out.push(`  requirement: ${state.request.requirement}`);
  out.push(`  requester:   ${state.request.requester} · autonomy ${state.request.autonomy} · started ${age(state.request.createdAt)}`);
  if (state.proposal) {
    out.push('', 'Proposed repositories:');
    for (const repo of state.proposal.repos) out.push(`  - ${repo.id} (${Math.round(repo.confidence * 100)}%): ${repo.reason}`);
    if (state.proposal.repos.length === 0) out.push(`  (none) — choose from: ${state.scope.join(', ')}`);
    const questions = state.questions ?? state.proposal.questions.map((text, i) => ({ n: i + 1, text, answer: null }));
    for (const question of questions) {
      const answer = question.answer ? (question.answer.how === 'not needed' ? ` — not needed (${question.answer.by})` : ` — answered by ${question.answer.by}: ${question.answer.text.slice(0, 120)}`) : ' — open';
      out.push(`  ? ${question.n}. ${question.text}${answer}`);
    }
    for (const note of state.proposal.notes) out.push(`  note: ${note}`);
  }
  if (state.confirmed.length) out.push('', `Confirmed: ${state.confirmed.join(', ')}`);
  const repos = Object.values(state.repos);
  if (repos.length) {
    out.push('', 'Repositories:');
    for (const repo of repos) {
      const checks = repo.checks.at(-1);
      const checkText = checks ? (checks.passed ? 'checks passed' : `checks FAILED (${checks.results.filter((r) => r.status !== 'passed').map((r) => r.name).join(', ')})`) : 'no checks yet';
      out.push(`  - ${repo.id} [${repo.status}] ${repo.commits.length} commit(s), ${repo.diffStat.files} file(s) +${repo.diffStat.insertions} −${repo.diffStat.deletions}, ${checkText}`);
      for (const publish of repo.publishes ?? []) {
        out.push(`      round ${publish.round}: ${publish.status === 'published' ? `published ${publish.name}@${publish.version}${publish.reused ? ' (reused)' : ''}` : `NOT published: ${publish.output.split('\n')[0]}`}`);
      }
      if (checks?.against?.length) out.push(`      checked against ${checks.against.map(describeUpstream).join(', ')}`);
      if (repo.rangeBump) out.push(`      depends on the planned releases: ${repo.rangeBump.message}`);
      if (repo.progress) out.push(`      agent: turn ${repo.progress.turn}, ${repo.progress.inputTokens + repo.progress.outputTokens} tokens, $${repo.progress.costUsd.toFixed(4)}${repo.progress.lastTool ? `, last tool ${repo.progress.lastTool}` : ''}`);
      if (repo.pr) {
        const seen = [repo.pr.state, repo.pr.ci ? `CI ${repo.pr.ci}` : null, repo.pr.review?.replace('_', ' '), repo.pr.reviewComments ? `${repo.pr.reviewComments} review comment(s)` : null].filter(Boolean).join(', ');
        out.push(`      PR #${repo.pr.number}: ${repo.pr.url}${repo.pr.reused ? ' (updated)' : ''} · ${seen}`);
      }
      const preview = state.previews.find((p) => p.repo === repo.id && p.status !== 'removed');
      if (preview) out.push(`      preview: ${previewAddress(preview) ?? '(none)'} · ${isDegraded(preview) ? `DEGRADED: ${preview.problems!.join('; ')}` : preview.status}`);
      if (repo.error) out.push(`      error: ${repo.error}`);
    }
  }
  if (state.rounds.length) {
    out.push('', 'Rounds:');
    for (const round of state.rounds) out.push(`  ${round.n}. ${round.kind} — ${round.repos.join(', ')}${round.kind === 'feedback' ? `: "${round.reason.slice(0, 80)}"` : ''}`);
  }
  out.push('', `Spent: ${describeSpend(state.budget.used)} of the run's ${describeLimits(state.budget.perRun)} (per step at most ${describeLimits(state.budget.perStep)})`);
  for (const repo of repos) if (repo.spend.turns > 0) out.push(`  ${repo.id}: ${describeSpend(repo.spend)}`);
  if (state.budget.steps.length) out.push('  steps:');
  for (const step of state.budget.steps) out.push(`    ${step.step} · ${step.model} · ${describeSpend(step.spend)}`);
  for (const [key, spend] of Object.entries(state.budget.inFlight ?? {})) out.push(`    ${key} (running) · at most ${describeSpend(spend)} so far`);
  if (state.budget.exhausted) {
    out.push('', 'A budget ran out:');
    for (const [i, id] of state.budget.exhausted.repos.entries()) out.push(`  - ${id}: ${state.budget.exhausted.stops[i]!.message}`);
  }
  if (state.waiting) {
    out.push(`Waiting for ${state.waiting.what} since ${age(state.waiting.since)}; reminder ${state.waiting.remindedAt ? `sent ${age(state.waiting.remindedAt)}` : `at ${age(state.waiting.remindAt)}`}; expires ${age(state.waiting.expiresAt)}`);
  }
  const refused = state.inputs.filter((i) => i.outcome === 'refused').slice(-3);
  for (const input of refused) out.push(`Refused ${input.signal} from ${input.by}: ${input.reason}`);
  if (state.lastError) out.push(`Last error (${state.lastError.phase}${state.lastError.repo ? `, ${state.lastError.repo}` : ''}): ${state.lastError.message}`);
  if (state.outcome) out.push(`Outcome: ${state.outcome.phase} — ${state.outcome.reason}${state.outcome.by ? ` (by ${state.outcome.by})` : ''}`);
  const next = NEXT_STEP[state.phase];
  if (next) out.push('', `Next: ${next.replaceAll('<run>', state.runId)}`);
  if (options.summary && state.summary) out.push('', renderSummaryMarkdown(state.summary));
  return out.join('\n');
}

export function formatTranscript(transcript: Transcript): string {
  const out = [`${transcript.step} — model ${transcript.model} — ${transcript.outcome}`];
  for (const entry of transcript.entries) {
    const cache = entry.usage.cacheReadTokens || entry.usage.cacheWriteTokens ? `, cache ${entry.usage.cacheReadTokens} read / ${entry.usage.cacheWriteTokens} written` : '';
    out.push('', `Turn ${entry.turn} (${entry.request.messages} messages; ${entry.usage.inputTokens} in + ${entry.usage.outputTokens} out tokens${cache}; $${entry.costUsd.toFixed(4)})`);
    if (entry.text) out.push(`  says: ${entry.text.replace(/\n/g, '\n        ')}`);
    for (const call of entry.toolCalls) {
      out.push(`  ${call.isError ? '✗' : '→'} ${call.name} ${call.input.slice(0, 300)}`);
      out.push(`    ${call.result.slice(0, 600).replace(/\n/g, '\n    ')}`);
    }
  }
  return out.join('\n');
}

/** `npm run cli -- versions`: one line per build, newest first. */
export function formatDeployment(report: DeploymentReport): string {
  if (report.versions.length === 0) return `No build of deployment ${report.deploymentName} has polled yet (WORKER_VERSIONING=on workers register theirs when they start).`;
  const out = [`Deployment ${report.deploymentName}: current build ${report.current ?? 'none'}`, ''];
  out.push(`${'BUILD'.padEnd(20)} ${'STATUS'.padEnd(9)} ${'CREATED'.padEnd(17)} ${'RUNS'.padStart(5)}  WORKERS POLLING`);
  for (const v of report.versions) {
    const pollers = WORKER_ROLES.map((role) => `${role} ${v.pollers[role] ?? 0}`).join(', ');
    const created = v.createdAt ? v.createdAt.toISOString().replace('T', ' ').slice(0, 16) : '?';
    const warning = v.runningRuns > 0 && !v.pollers.workflows ? '   ← no workflows worker: its runs wait (npm run cli -- versions move --from <build>)' : '';
    out.push(`${v.buildId.padEnd(20)} ${v.status.padEnd(9)} ${created.padEnd(17)} ${String(v.runningRuns).padStart(5)}  ${pollers}${warning}`);
  }
  if (report.unversionedRuns) out.push('', `${report.unversionedRuns} running run${report.unversionedRuns === 1 ? '' : 's'} started before versioning; they follow the current build.`);
  return out.join('\n');
}
