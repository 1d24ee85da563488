// Scripts for the scripted model: for a known requirement, the exact tool calls a model would make
// when proposing repositories and when editing each one, round by round.
import { promises as fs } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';

const ToolCallSchema = z.object({ name: z.string().min(1), input: z.record(z.string(), z.unknown()) });

export const ScriptTurnSchema = z.object({
  /** Text the model "says" alongside its tool calls. */
  say: z.string().optional(),
  calls: z.array(ToolCallSchema).default([]),
  /** Substrings the conversation so far must contain; a missing one makes the scripted model fail loudly. */
  expect: z.array(z.string()).default([]),
  /** Pause before answering, so tests can catch the loop mid-flight. */
  delayMs: z.number().int().min(0).max(60_000).default(0),
});
export type ScriptTurn = z.infer<typeof ScriptTurnSchema>;

const TurnsSchema = z.array(ScriptTurnSchema);

const FeedbackScriptSchema = z.object({
  /** Keywords (case-insensitive) that must all appear in the feedback text. */
  when: z.array(z.string().min(1)).min(1),
  turns: TurnsSchema,
});

export const RepoScriptSchema = z.object({
  initial: TurnsSchema.default([]),
  /** Played in the n-th fix round (first entry for round kind "fix" the first time, and so on). */
  fix: z.array(TurnsSchema).default([]),
  feedback: z.array(FeedbackScriptSchema).default([]),
  /** Played when a round that stopped at its budget continues after the budget was extended. */
  continue: TurnsSchema.default([]),
});
export type RepoScript = z.infer<typeof RepoScriptSchema>;

export const ScenarioSchema = z.object({
  id: z.string().min(1),
  /** The requirement as a person would write it; offered by the CLI and the web chat. */
  requirement: z.string().min(1),
  /** Keywords (case-insensitive) that must all appear in a requirement for this scenario to play. */
  match: z.array(z.string().min(1)).min(1),
  /** Turns for reading the requirement's linked pages and extracting the brief (ends with `submit_brief`). */
  gather: TurnsSchema.optional(),
  /** Turns for a later pass that corrects the brief: the first entry whose keywords all occur in the corrections. */
  correct: z.array(FeedbackScriptSchema).optional(),
  propose: TurnsSchema.default([]),
  edit: z.record(z.string(), RepoScriptSchema).default({}),
  /** What the scripted model says when asked for the combined summary's narrative. */
  narrative: z.string().optional(),
  /** The narrative after review feedback: the entry whose keywords all occur in the feedback so far (most keywords wins). */
  narrativeAfter: z.array(z.object({ when: z.array(z.string().min(1)).min(1), text: z.string().min(1) })).optional(),
});
export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export const ScenarioBookSchema = z.object({ scenarios: z.array(ScenarioSchema) });

export async function loadScenarioBook(file: string): Promise<Scenario[]> {
  const raw = YAML.parse(await fs.readFile(file, 'utf8'));
  const parsed = ScenarioBookSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
  return parsed.data.scenarios;
}

export function matchesAll(text: string, keywords: readonly string[]): boolean {
  const lower = text.toLowerCase();
  return keywords.every((k) => lower.includes(k.toLowerCase()));
}

/** The scenario a requirement plays: of those whose keywords all occur, the most specific (most keywords). */
export function findScenario(scenarios: readonly Scenario[], requirement: string): Scenario | undefined {
  return scenarios.filter((s) => matchesAll(requirement, s.match)).reduce<Scenario | undefined>((best, s) => (!best || s.match.length > best.match.length ? s : best), undefined);
}

/** A demo requirement as offered to people: its ${DEMO_PAGES_URL} made the demo pages' address. */
export function demoRequirementText(requirement: string, demoPagesUrl: string): string {
  return requirement.replaceAll('${DEMO_PAGES_URL}', demoPagesUrl);
}
