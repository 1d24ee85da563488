// What every benchmark returns, and how results are shown: a readable table per benchmark (figures, then
// goals as met / not met) and one JSON document. Goals are compared, never asserted.

export interface BenchResult {
  name: string;
  figures: Record<string, number | string>;
  goals: { goal: string; value: string; met: boolean }[];
  notes?: string[];
}

/** A goal line: `value` is what was measured, as a person would read it. */
export function goal(text: string, value: string, met: boolean): BenchResult['goals'][number] {
  return { goal: text, value, met };
}

/** A benchmark that could not run (module missing, set-up failed): reported, never thrown. */
export function unavailable(name: string, why: string): BenchResult {
  return { name, figures: { status: 'not available' }, goals: [], notes: [why] };
}

export function renderTable(result: BenchResult): string {
  const lines: string[] = [];
  lines.push(`== ${result.name} ==`);
  const figures = Object.entries(result.figures);
  const width = Math.max(10, ...figures.map(([k]) => k.length));
  for (const [key, value] of figures) lines.push(`  ${key.padEnd(width)}  ${formatValue(value)}`);
  if (result.goals.length) {
    lines.push('  goals:');
    const goalWidth = Math.max(...result.goals.map((g) => g.goal.length));
    for (const g of result.goals) lines.push(`    [${g.met ? 'met    ' : 'NOT met'}] ${g.goal.padEnd(goalWidth)}  ${g.value}`);
  }
  for (const note of result.notes ?? []) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

/** The same result as a Markdown block for docs/benchmarks.md. */
export function renderMarkdown(result: BenchResult): string {
  const lines: string[] = ['| figure | value |', '|---|---|'];
  for (const [key, value] of Object.entries(result.figures)) lines.push(`| ${key} | ${escapeCell(formatValue(value))} |`);
  if (result.goals.length) {
    lines.push('', '| goal | measured | |', '|---|---|---|');
    for (const g of result.goals) lines.push(`| ${escapeCell(g.goal)} | ${escapeCell(g.value)} | ${g.met ? 'met' : '**not met**'} |`);
  }
  if (result.notes?.length) lines.push('', ...result.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
