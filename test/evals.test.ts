// `npm run eval` end to end on the demo model: a case runs through the real workflow, its acceptance
// checks run outside the repositories against the run's change set, and a check that should fail fails.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadEvalCases } from '../evals/cases';
import { runEvals } from '../evals/main';
import { renderTable, summarize } from '../evals/report';
import type { CaseResult } from '../evals/run-case';
import { loadCatalog } from '../domain/catalog-loader';
import { PROJECT_ROOT } from './helpers/world';

jest.setTimeout(300_000);

const DEMO = path.join(PROJECT_ROOT, 'demo');
const withoutKey = { ...process.env, ANTHROPIC_API_KEY: '' };

async function demoRepoIds(): Promise<string[]> {
  return (await loadCatalog(path.join(DEMO, 'catalog.yaml'), { ...process.env, FORGE_URL: 'http://127.0.0.1:1' })).repositories.map((r) => r.id);
}

test('the demo model runs a case through the workflow; acceptance checks run on its branch with the change set, and a wrong one fails the case', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-evals-'));
  const cases = path.join(dir, 'evals.yaml');
  // The demo's currency case, with one more acceptance check that the change cannot meet (EUR, not USD).
  const wrong = `node --input-type=module -e "const m = await import('./src/render.js'); process.exit(m.renderProductCard({ id: 'p', name: 'n', priceCents: 1250 }).includes('EUR 12.50') ? 0 : 1)"`;
  await fs.cp(path.join(DEMO, 'evals'), path.join(dir, 'evals'), { recursive: true });
  await fs.writeFile(cases, `cases:
  - id: currency
    requirement: Show prices with the currency code, like USD 12.50, on product cards
    requester: fiona
    expect: [ui-kit, web-app]
    acceptance:
      ui-kit:
        - { name: prices carry the currency code, run: 'node --test "$EVAL_DIR/evals/currency/ui-kit.test.mjs"' }
      web-app:
        - { name: cards show USD 12.50, run: 'node --test "$EVAL_DIR/evals/currency/web-app.test.mjs"' }
        - { name: cards show EUR 12.50, run: ${JSON.stringify(wrong)} }
`);
  const progress: string[] = [];
  const report = await runEvals({ models: [], casesFile: cases, catalogPath: path.join(DEMO, 'catalog.yaml'), reposDir: path.join(DEMO, 'repos'), passRate: 1, caseTimeoutMs: 240_000, env: withoutKey, progress: (l) => progress.push(l) });

  expect(report.results).toHaveLength(1);
  const [result] = report.results as [CaseResult];
  expect(result).toMatchObject({ case: 'currency', model: 'scripted demo model', phase: 'awaiting_review', precision: 1, recall: 1, ownChecks: { passed: 2, total: 2 }, passed: false });
  // The web app passed its own checks in round 2, against the run's second ui-kit prerelease.
  expect(result.rounds).toBe(2);
  expect(result.turns).toBeGreaterThan(5);
  expect(result.inputTokens).toBeGreaterThan(0);
  // USD 12.50 on the card needs the run's ui-kit (the released one prints $12.50): the change set was installed.
  expect(result.acceptance).toEqual([
    { repo: 'ui-kit', check: 'prices carry the currency code', passed: true },
    { repo: 'web-app', check: 'cards show USD 12.50', passed: true },
    expect.objectContaining({ repo: 'web-app', check: 'cards show EUR 12.50', passed: false }),
  ]);
  expect(report.verdict).toEqual({ model: null, why: expect.stringContaining('no model passed 100% of the cases') });
  expect(renderTable(report)).toMatch(/currency\s+scripted demo model\s+FAIL\s+awaiting_review\s+100% \/ 100%\s+2\/2\s+2\/3/);
  expect(progress).toEqual(expect.arrayContaining([expect.stringMatching(/currency on scripted demo model: proposed ui-kit, web-app; confirming ui-kit, web-app/), 'currency on scripted demo model: acceptance 2/3']));
  await fs.rm(dir, { recursive: true, force: true });
});

test('the demo cases fit the demo catalog; a case naming an unknown repository or a broken field is refused with its place', async () => {
  const repos = await demoRepoIds();
  const demo = await loadEvalCases(path.join(DEMO, 'evals.yaml'), repos);
  expect(demo.cases.map((c) => c.id)).toEqual(['sale-badge', 'currency']);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-evals-'));
  await fs.writeFile(path.join(dir, 'a.yaml'), 'cases:\n  - { id: x, requirement: r, requester: fiona, expect: [payments] }\n');
  await expect(loadEvalCases(path.join(dir, 'a.yaml'), repos)).rejects.toThrow(/cases\.0: "payments" is not in the catalog/);
  await fs.writeFile(path.join(dir, 'b.yaml'), 'cases:\n  - { id: x, requirement: r, requester: fiona, expect: [] }\n');
  await expect(loadEvalCases(path.join(dir, 'b.yaml'), repos)).rejects.toThrow(/cases\.0\.expect/);
  await expect(loadEvalCases(path.join(dir, 'none.yaml'), repos)).rejects.toThrow(/none\.yaml: no such file/);
  await expect(runEvals({ models: ['claude-opus-5-5'], casesFile: path.join(DEMO, 'evals.yaml'), catalogPath: path.join(DEMO, 'catalog.yaml'), reposDir: path.join(DEMO, 'repos'), passRate: 1, caseTimeoutMs: 1000, env: withoutKey })).rejects.toThrow(/--model needs ANTHROPIC_API_KEY/);
});

test('the verdict is the cheapest model that meets the pass rate', () => {
  const result = (model: string, passed: boolean, costUsd: number): CaseResult => ({
    case: 'c', model, phase: 'awaiting_review', proposed: [], expected: ['a'], precision: 1, recall: 1, ownChecks: { passed: 1, total: 1 }, acceptance: [], passed,
    rounds: 1, turns: 3, inputTokens: 10, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 5, costUsd, wallTimeMs: 1000,
  });
  const results = [result('claude-opus-5-5', true, 0.9), result('claude-opus-5-5', true, 0.8), result('claude-sonnet-5-5', true, 0.3), result('claude-sonnet-5-5', false, 0.2), result('claude-haiku-4-5', false, 0.05), result('claude-haiku-4-5', false, 0.05)];
  expect(summarize(results, 0.5, { cases: 'x', modelService: 'y' }).verdict.model).toBe('claude-sonnet-5-5');
  expect(summarize(results, 1, { cases: 'x', modelService: 'y' }).verdict.model).toBe('claude-opus-5-5');
  expect(summarize(results.filter((r) => r.model === 'claude-haiku-4-5'), 0.5, { cases: 'x', modelService: 'y' }).verdict).toEqual({ model: null, why: expect.stringContaining('claude-haiku-4-5 0/2') });
});
