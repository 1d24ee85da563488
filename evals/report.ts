// The eval's answer: per case and model the figures a team compares, per model the totals, and the
// verdict, the cheapest model whose pass rate meets the bar. As a table for people and JSON for tools.
import type { CaseResult } from './run-case';

export interface ModelSummary {
  model: string;
  cases: number;
  passed: number;
  passRate: number;
  precision: number;
  recall: number;
  costUsd: number;
  turns: number;
  wallTimeMs: number;
}

export interface EvalReport {
  at: string;
  cases: string;
  modelService: string;
  passRateRequired: number;
  results: CaseResult[];
  models: ModelSummary[];
  /** The cheapest model that meets the pass rate; null when none does. */
  verdict: { model: string; why: string } | { model: null; why: string };
}

export function summarize(results: CaseResult[], passRateRequired: number, context: { cases: string; modelService: string; at?: string }): EvalReport {
  const models = [...new Set(results.map((r) => r.model))].map((model): ModelSummary => {
    const mine = results.filter((r) => r.model === model);
    const mean = (f: (r: CaseResult) => number) => mine.reduce((t, r) => t + f(r), 0) / mine.length;
    const passed = mine.filter((r) => r.passed).length;
    return {
      model,
      cases: mine.length,
      passed,
      passRate: passed / mine.length,
      precision: mean((r) => r.precision),
      recall: mean((r) => r.recall),
      costUsd: round(mine.reduce((t, r) => t + r.costUsd, 0)),
      turns: mine.reduce((t, r) => t + r.turns, 0),
      wallTimeMs: mine.reduce((t, r) => t + r.wallTimeMs, 0),
    };
  });
  const meeting = models.filter((m) => m.passRate >= passRateRequired).sort((a, b) => a.costUsd - b.costUsd || b.passRate - a.passRate);
  const best = meeting[0];
  const verdict = best
    ? { model: best.model, why: `the cheapest model passing at least ${percent(passRateRequired)} of the cases (${best.passed}/${best.cases}, $${best.costUsd.toFixed(4)})` }
    : { model: null, why: `no model passed ${percent(passRateRequired)} of the cases (best: ${models.map((m) => `${m.model} ${m.passed}/${m.cases}`).join(', ')})` };
  return { at: context.at ?? new Date().toISOString(), cases: context.cases, modelService: context.modelService, passRateRequired, results, models, verdict };
}

export function renderTable(report: EvalReport): string {
  const caseRows = report.results.map((r) => [
    r.case,
    r.model,
    r.passed ? 'pass' : 'FAIL',
    r.phase,
    `${percent(r.precision)} / ${percent(r.recall)}`,
    `${r.ownChecks.passed}/${r.ownChecks.total}`,
    `${r.acceptance.filter((a) => a.passed).length}/${r.acceptance.length}`,
    String(r.rounds),
    String(r.turns),
    `${r.inputTokens} + ${r.cacheReadTokens} cached`,
    String(r.outputTokens),
    `$${r.costUsd.toFixed(4)}`,
    `${(r.wallTimeMs / 1000).toFixed(1)} s`,
  ]);
  const modelRows = report.models.map((m) => [m.model, `${m.passed}/${m.cases}`, percent(m.passRate), `${percent(m.precision)} / ${percent(m.recall)}`, String(m.turns), `$${m.costUsd.toFixed(4)}`, `${(m.wallTimeMs / 1000).toFixed(1)} s`]);
  const failures = report.results.flatMap((r) => [
    ...(r.reason ? [`${r.case} on ${r.model}: ${r.reason}`] : []),
    ...r.acceptance.filter((a) => !a.passed).map((a) => `${r.case} on ${r.model}: acceptance "${a.check}" in ${a.repo} failed: ${gist(a.detail ?? '')}`),
  ]);
  return [
    table(['case', 'model', 'result', 'phase', 'precision / recall', 'own checks', 'acceptance', 'rounds', 'turns', 'input tokens', 'output', 'cost', 'wall time'], caseRows),
    '',
    table(['model', 'passed', 'pass rate', 'precision / recall', 'turns', 'cost', 'wall time'], modelRows),
    '',
    ...(failures.length ? ['Failures:', ...failures.map((f) => `  ${f}`), ''] : []),
    `Verdict: ${report.verdict.model ?? 'none'}: ${report.verdict.why}.`,
  ].join('\n');
}

/** The lines of a check's output that say why (test runners' "not ok" and error lines), else its end. */
function gist(output: string): string {
  const lines = output.trim().split('\n').map((l) => l.trim());
  const telling = lines.filter((l) => /^not ok|error:|Error\b|expected|actual:/i.test(l));
  return (telling.length ? telling.slice(0, 4) : lines.slice(-3)).join(' | ');
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
