// API definitions: an OpenAPI 3.x or Swagger 2 document (JSON or YAML) parsed, validated and dereferenced
// by @apidevtools/swagger-parser, with every external reference refused (a spec cannot make the service
// read a file or a URL), then its operations listed and the chosen ones rendered as their exact request
// and response shapes.
import SwaggerParser from '@apidevtools/swagger-parser';
import YAML from 'yaml';
import type { ApiOperationRef, ApiSpecSummary } from '../../domain/brief';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;
const MAX_OPERATIONS_LISTED = 200;
/** One operation's shape in a prompt: enough for a real endpoint, bounded for history. */
const MAX_SHAPE_CHARS = 8000;

type Document = Record<string, unknown>;

export type SpecImport = { kind: 'not-a-spec' } | { kind: 'invalid'; why: string } | { kind: 'spec'; summary: ApiSpecSummary; document: Document };

/** Whether a parsed JSON/YAML text declares itself an API definition. */
function declaresSpec(value: unknown): value is Document {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const doc = value as Document;
  return (typeof doc.openapi === 'string' && /^3\./.test(doc.openapi)) || String(doc.swagger) === '2.0';
}

export async function importApiSpec(text: string): Promise<SpecImport> {
  let parsed: unknown;
  try {
    parsed = YAML.parse(text, { maxAliasCount: 100 }); // YAML is a superset of JSON
  } catch {
    return { kind: 'not-a-spec' };
  }
  if (!declaresSpec(parsed)) return { kind: 'not-a-spec' };
  const external = externalRef(parsed, '#');
  if (external) return { kind: 'invalid', why: `it refers outside itself ($ref "${external.ref.slice(0, 200)}" at ${external.at}), and references to other files or URLs are not followed` };
  try {
    const document = (await SwaggerParser.validate(structuredClone(parsed) as never, {
      resolve: { external: false },
      dereference: { circular: 'ignore' },
    })) as unknown as Document;
    return { kind: 'spec', summary: summaryOf(document), document };
  } catch (error) {
    return { kind: 'invalid', why: `it is not a valid ${parsed.openapi ? `OpenAPI ${String(parsed.openapi)}` : 'Swagger 2.0'} document: ${describeSpecError(error)}` };
  }
}

/** The first `$ref` that points outside the document, with the JSON pointer where it sits. */
function externalRef(value: unknown, at: string): { ref: string; at: string } | null {
  if (!value || typeof value !== 'object') return null;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const here = `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (key === '$ref' && typeof child === 'string' && !child.startsWith('#')) return { ref: child, at: here };
    const found = externalRef(child, here);
    if (found) return found;
  }
  return null;
}

function summaryOf(document: Document): ApiSpecSummary {
  const info = (document.info ?? {}) as { title?: string; version?: string };
  const operations: ApiSpecSummary['operations'] = [];
  for (const [path, item] of Object.entries((document.paths ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const method of METHODS) {
      const operation = item?.[method] as { operationId?: string; summary?: string } | undefined;
      if (operation) operations.push({ method, path, operationId: operation.operationId ?? null, summary: operation.summary ?? null });
    }
  }
  return {
    title: info.title ?? '(untitled)',
    version: info.version ?? '',
    spec: document.openapi ? `OpenAPI ${String(document.openapi)}` : 'Swagger 2.0',
    operations: operations.slice(0, MAX_OPERATIONS_LISTED),
  };
}

/** The operation a reference names (method and path, or operationId), or why there is none. */
export function findOperation(summary: ApiSpecSummary, ref: Pick<ApiOperationRef, 'method' | 'path' | 'operationId'>): ApiSpecSummary['operations'][number] | string {
  const found = summary.operations.find((op) =>
    ref.operationId ? op.operationId === ref.operationId : op.method === ref.method?.toLowerCase() && op.path === ref.path,
  );
  if (found) return found;
  const asked = ref.operationId ? `operationId ${ref.operationId}` : `${(ref.method ?? '').toUpperCase()} ${ref.path ?? ''}`;
  return `the spec has no operation ${asked} (it has ${summary.operations.slice(0, 30).map((op) => `${op.method.toUpperCase()} ${op.path}`).join(', ') || 'none'})`;
}

/** An operation exactly as the spec defines it, dereferenced: parameters, request body and responses, as YAML. */
export function operationShape(document: Document, method: string, path: string): string {
  const item = ((document.paths ?? {}) as Record<string, Record<string, unknown>>)[path] ?? {};
  const operation = (item[method] ?? {}) as Record<string, unknown>;
  const shape = {
    [`${method.toUpperCase()} ${path}`]: {
      ...(operation.operationId ? { operationId: operation.operationId } : {}),
      ...(operation.summary ? { summary: operation.summary } : {}),
      ...(item.parameters || operation.parameters ? { parameters: [...((item.parameters as unknown[]) ?? []), ...((operation.parameters as unknown[]) ?? [])] } : {}),
      ...(operation.requestBody ? { requestBody: operation.requestBody } : {}),
      responses: operation.responses ?? {},
    },
  };
  const text = YAML.stringify(shape, { aliasDuplicateObjects: false, lineWidth: 0 });
  return text.length <= MAX_SHAPE_CHARS ? text : `${text.slice(0, MAX_SHAPE_CHARS)}\n# … cut at ${MAX_SHAPE_CHARS} characters`;
}

/** The validator's words with the JSON path it names, on one line. */
function describeSpecError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').replace(/\s{2,}/g, ' ').trim().slice(0, 600);
}
