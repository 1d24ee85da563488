// Eval cases, kept beside the catalog (evals.yaml) and never inside a repository: the agent can neither
// see nor weaken them. Each names a requirement, the repositories it should touch, and per repository the
// acceptance commands that must pass on the run's branch after the change.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';

const AcceptanceCheckSchema = z
  .object({
    name: z.string().min(1),
    /** Run with `sh -c` in a fresh checkout of the run's branch; $EVAL_DIR is the folder of evals.yaml. */
    run: z.string().min(1),
    timeoutSeconds: z.number().int().min(1).max(3600).default(300),
  })
  .strict();

const EvalCaseSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes'),
    requirement: z.string().min(1),
    /** Who asks (a person of the catalog): their scope decides what may be proposed. */
    requester: z.string().min(1),
    /** The repositories a good proposal names. */
    expect: z.array(z.string().min(1)).min(1),
    acceptance: z.record(z.string(), z.array(AcceptanceCheckSchema).min(1)).default({}),
  })
  .strict();

const EvalFileSchema = z.object({ cases: z.array(EvalCaseSchema).min(1) }).strict();

export type AcceptanceCheck = z.infer<typeof AcceptanceCheckSchema>;
export type EvalCase = z.infer<typeof EvalCaseSchema>;

export interface EvalCases {
  file: string;
  dir: string;
  cases: EvalCase[];
}

/** Reads and validates an evals file; a mistake is reported with its place, e.g. "cases.1.expect". */
export async function loadEvalCases(file: string, knownRepos: readonly string[]): Promise<EvalCases> {
  const text = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  const parsed = EvalFileSchema.safeParse(YAML.parse(text));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  const ids = new Set<string>();
  for (const [index, c] of parsed.data.cases.entries()) {
    if (ids.has(c.id)) throw new Error(`${file}: cases.${index}.id: "${c.id}" is used twice`);
    ids.add(c.id);
    const unknown = [...c.expect, ...Object.keys(c.acceptance)].filter((r) => !knownRepos.includes(r));
    if (unknown.length) throw new Error(`${file}: cases.${index}: ${unknown.map((r) => `"${r}"`).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not in the catalog`);
  }
  return { file, dir: path.dirname(path.resolve(file)), cases: parsed.data.cases };
}
