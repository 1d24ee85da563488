// Writes measured figures into docs/benchmarks.md between markers, leaving the hand-written text (how each
// figure is measured, what the goal is) alone:
//   <!-- bench:machine:start --> … <!-- bench:machine:end -->
//   <!-- bench:<name>:start --> … <!-- bench:<name>:end -->   (one pair per benchmark)
// Only the benchmarks that ran are replaced, so `npm run bench -- scale --write-docs` updates scale alone.
import { promises as fs } from 'node:fs';
import { renderMachine, type MachineDescription } from './machine';
import { renderMarkdown, type BenchResult } from './report';

export async function writeDocs(file: string, machine: MachineDescription, results: readonly BenchResult[], command: string): Promise<string[]> {
  let text = await fs.readFile(file, 'utf8');
  const problems: string[] = [];
  const replace = (name: string, body: string) => {
    const start = `<!-- bench:${name}:start -->`;
    const end = `<!-- bench:${name}:end -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) {
      problems.push(`${file} has no ${start} … ${end} markers; ${name} not written`);
      return;
    }
    text = `${text.slice(0, from + start.length)}\n${body}\n${text.slice(to)}`;
  };
  replace('machine', renderMachine(machine));
  for (const result of results) {
    if (result.figures.status === 'not available') continue;
    replace(result.name, `Measured ${machine.date.slice(0, 10)} with \`${command}\`:\n\n${renderMarkdown(result)}`);
  }
  await fs.writeFile(file, text);
  return problems;
}
