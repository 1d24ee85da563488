// One combined change summary across every repository of a run: built from the run's state (pure, so
// the workflow computes it deterministically) and rendered as Markdown for PR bodies and the CLI.
import type { CheckRun, CombinedSummary, FileChange, RunState, SummaryRepo } from './contracts';
import { dependencyOrder } from './dependency-order';

const TEST_FILE = /(^|\/)(test|tests|__tests__|spec)\/|\.(test|spec)\.[cm]?[jt]sx?$/;

export function isTestFile(path: string): boolean {
  return TEST_FILE.test(path);
}

export function mergeOrderOf(state: Pick<RunState, 'confirmed' | 'catalogRepos'>): string[] {
  const deps = (id: string) => state.catalogRepos.find((r) => r.id === id)?.dependsOn ?? [];
  return dependencyOrder(state.confirmed, deps);
}

function latestChecks(checks: readonly CheckRun[]): CheckRun | undefined {
  return checks[checks.length - 1];
}

/** Changes to tests that a reviewer must look at: deleted test files and tests that lost more than they gained. */
export function testRisks(repo: string, files: readonly FileChange[]): string[] {
  return files
    .filter((f) => isTestFile(f.path))
    .flatMap((f) => {
      if (f.change === 'deleted') return [`${repo}: test file ${f.path} was deleted`];
      if (f.change === 'modified' && f.deletions > f.insertions) {
        return [`${repo}: ${f.path} lost more test lines than it gained (-${f.deletions} +${f.insertions})`];
      }
      return [];
    });
}

export function buildSummary(state: RunState): CombinedSummary {
  const mergeOrder = mergeOrderOf(state);
  const repos: SummaryRepo[] = mergeOrder.map((id) => {
    const repo = state.repos[id]!;
    const checks = latestChecks(repo.checks);
    return {
      id,
      role: repo.role,
      branch: repo.branch,
      files: repo.files,
      diffStat: repo.diffStat,
      diffPreview: repo.diffPreview,
      checksPassed: checks ? checks.passed : null,
      checks: checks?.results ?? [],
      agentNotes: repo.agentNotes,
      pr: repo.pr,
    };
  });
  const risks: string[] = [];
  for (const repo of repos) {
    if (repo.checksPassed === false) {
      const failing = repo.checks.filter((c) => c.status !== 'passed').map((c) => c.name);
      risks.push(`${repo.id}: checks failing after the last round (${failing.join(', ')})`);
    }
    if (repo.checksPassed === null) risks.push(`${repo.id}: no checks ran`);
    if (repo.files.length === 0) risks.push(`${repo.id}: the agent changed nothing here`);
    const lastStep = state.budget.steps.filter((step) => step.repo === repo.id).at(-1);
    if (lastStep?.stoppedBy) risks.push(`${repo.id}: the agent stopped at its budget (${lastStep.stoppedBy.message}); the change may be incomplete`);
    risks.push(...testRisks(repo.id, repo.files));
  }
  const round = state.rounds[state.rounds.length - 1]?.n ?? 0;
  return { round, requirement: state.request.requirement, repos, mergeOrder, risks, sincePrevious: changesSince(state, state.summary) };
}

function changesSince(state: RunState, previous: CombinedSummary | null): string[] {
  if (!previous) return [];
  const lines: string[] = [];
  for (const round of state.rounds.filter((r) => r.n > previous.round)) {
    const label = round.kind === 'feedback' ? `feedback from ${round.by ?? 'someone'}: "${oneLine(round.reason, 100)}"` : 'fixing failing checks';
    lines.push(`Round ${round.n} (${label}) edited ${round.repos.join(', ')}.`);
    for (const id of round.repos) {
      const commit = state.repos[id]?.commits.find((c) => c.round === round.n);
      lines.push(commit ? `  ${id}: ${commit.files.length} file(s) changed (${commit.files.join(', ')})` : `  ${id}: no changes`);
    }
  }
  for (const repo of previous.repos) {
    const now = state.repos[repo.id];
    const before = repo.checksPassed;
    const after = now ? (latestChecks(now.checks)?.passed ?? null) : null;
    if (before !== after) lines.push(`${repo.id}: checks ${describeCheckState(before)} → ${describeCheckState(after)}`);
  }
  return lines;
}

function describeCheckState(passed: boolean | null): string {
  return passed === null ? 'not run' : passed ? 'passing' : 'failing';
}

export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export interface SiblingLink {
  repo: string;
  url: string;
  number: number;
}

export function renderSummaryMarkdown(summary: CombinedSummary, options: { siblings?: SiblingLink[]; forRepo?: string } = {}): string {
  const out: string[] = [];
  out.push(`## Change request: ${oneLine(summary.requirement, 200)}`, '');
  if (options.siblings && options.siblings.length > 0) {
    out.push('### Pull requests in this change', '');
    for (const s of options.siblings) {
      out.push(`- ${s.repo === options.forRepo ? '**this PR**' : `[${s.repo} #${s.number}](${s.url})`} (${s.repo})`);
    }
    out.push('');
  }
  out.push('### Merge order', '', summary.mergeOrder.map((id, i) => `${i + 1}. ${id}`).join('\n'), '');
  if (summary.sincePrevious.length > 0) out.push('### Since the previous summary', '', ...summary.sincePrevious.map((l) => `- ${l}`), '');
  out.push(summary.risks.length > 0 ? '### Risks' : '### Risks: none found', '');
  out.push(...summary.risks.map((r) => `- ${r}`));
  if (summary.risks.length > 0) out.push('');
  for (const repo of summary.repos) {
    const checks = repo.checksPassed === null ? 'not run' : repo.checksPassed ? 'passing' : 'FAILING';
    out.push(`### ${repo.id} (${repo.role}) — checks ${checks}`, '');
    out.push(`Branch \`${repo.branch}\`: ${repo.diffStat.files} file(s), +${repo.diffStat.insertions} −${repo.diffStat.deletions}`, '');
    if (repo.agentNotes) out.push(repo.agentNotes, '');
    for (const f of repo.files) out.push(`- \`${f.path}\` ${f.change} (+${f.insertions} −${f.deletions})`);
    if (repo.files.length > 0) out.push('');
    for (const c of repo.checks) out.push(`- check \`${c.name}\`: ${c.status} in ${(c.durationMs / 1000).toFixed(1)}s`);
    if (repo.checks.length > 0) out.push('');
    if (repo.diffPreview) out.push('<details><summary>Diff</summary>', '', '```diff', repo.diffPreview, '```', '</details>', '');
  }
  return out.join('\n');
}
