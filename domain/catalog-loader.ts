// Reads the catalog YAML, substitutes ${ENV_VARS}, validates it, and explains a broken catalog with the
// file, the field and the reason. Used by the worker at start-up, by the gateway and by an activity.
import { promises as fs } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { CatalogSchema, type Catalog } from './catalog-schema';

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
  constructor(readonly file: string, readonly problems: string[]) {
    super(`The repository catalog ${file} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export async function loadCatalog(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Catalog> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new CatalogError(file, [`cannot be read: ${(error as Error).message}`]);
  }
  return parseCatalog(text, file, env);
}

export function parseCatalog(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Catalog {
  const document = YAML.parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    throw new CatalogError(file, document.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const missing = new Set<string>();
  const raw = substituteEnv(document.toJS(), env, missing);
  if (missing.size > 0) {
    throw new CatalogError(file, [...missing].map((name) => `environment variable ${name} is used but not set`));
  }
  const parsed = CatalogSchema.safeParse(raw);
  if (!parsed.success) throw new CatalogError(file, parsed.error.issues.map((issue) => describeIssue(raw, issue)));
  return parsed.data;
}

/** Only `url` fields are substituted: commands keep their `${VAR}`s for the shell that runs them. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, missing: Set<string>, key = ''): unknown {
  if (typeof value === 'string' && key === 'url') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined || found === '') missing.add(name);
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => substituteEnv(v, env, missing));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, missing, k)]));
  }
  return value;
}

/** "repositories[1] (web-app).url: must be a clone URL …" — names the repository, not just its index. */
function describeIssue(raw: unknown, issue: z.core.$ZodIssue): string {
  let field = '';
  let cursor: unknown = raw;
  for (const key of issue.path) {
    cursor = cursor && typeof cursor === 'object' ? (cursor as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
    if (typeof key === 'number') {
      const id = cursor && typeof cursor === 'object' ? (cursor as { id?: unknown }).id : undefined;
      field += `[${key}]${typeof id === 'string' ? ` (${id})` : ''}`;
    } else {
      field += field ? `.${String(key)}` : String(key);
    }
  }
  return `${field || '(top level)'}: ${issue.message}`;
}
