// An api repository's own API definition, named in the catalog (`openapi: path/in/repo.yaml`): read from the
// repository itself (its default branch while the requirement is read, the run's branch once this run has
// edited it), validated like any other definition, and stored by hash like any other source. Reading it
// needs no link and no model; a missing or broken file is a note, never a failure.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ApiOperationShape, ContextSource, UnreadableSource } from '../../domain/brief';
import type { RepoSpecRequest, RepoSpecRef } from '../../domain/activity-contracts';
import { checkoutFromCache, remoteFor, type ActivityDeps } from '../deps';
import { withWorkspace } from '../git/workspace';
import { fileKind, textOf } from './chat-documents';
import { DEFAULT_FETCH_LIMITS } from './fetch-page';
import { findOperation, importApiSpec, operationShape } from './openapi';
import { SourceStore } from './source-store';

type SpecRead = { ok: true; source: Omit<ContextSource, 'id' | 'via'>; text: string; document: Record<string, unknown> } | { ok: false; unreadable: Omit<UnreadableSource, 'at'> };

/** Where people can look at the file: the forge's page for it (GitHub's shape). */
export function repositorySpecUrl(spec: RepoSpecRef, ref: string): string {
  return `${spec.url.replace(/\.git$/, '')}/blob/${ref}/${spec.path}`;
}

/** The definition at `branch` (at `sha` when given): from this run's store when read before, else from git. */
export async function readRepositorySpec(deps: ActivityDeps, runId: string, spec: RepoSpecRef, at: { branch: string; sha?: string }): Promise<SpecRead> {
  const url = repositorySpecUrl(spec, at.sha ?? at.branch);
  const store = SourceStore.under(deps.dataDir);
  // The default branch's head at the first read is the one the run keeps (a retried read must agree with it).
  const before = at.sha ? null : await store.readBefore(runId, url);
  if (before) {
    const text = (await store.text(before.hash))!;
    const spec = await importApiSpec(text);
    if (spec.kind === 'spec') return { ok: true, source: before, text, document: spec.document };
  }
  const unreadable = (why: string): SpecRead => ({ ok: false, unreadable: { url, why } });
  let bytes: Buffer | null;
  try {
    bytes = await withWorkspace(deps.dataDir, runId, `${spec.repo}-openapi`, async (dir) => {
      await checkoutFromCache(deps, await remoteFor(deps, spec.url), dir, at.branch, at.sha ? { sha: at.sha } : {});
      const file = path.join(dir, spec.path);
      const stat = await fs.lstat(file).catch(() => null);
      if (!stat?.isFile()) return null; // missing, a folder or a symbolic link: never followed out of the checkout
      const handle = await fs.open(file, 'r');
      try {
        const buffer = Buffer.alloc(Math.min(stat.size, DEFAULT_FETCH_LIMITS.maxBytes + 1));
        await handle.read(buffer, 0, buffer.length, 0);
        return buffer;
      } finally {
        await handle.close();
      }
    });
  } catch (error) {
    return unreadable(`${spec.repo} could not be read at ${at.branch}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!bytes) return unreadable(`${spec.repo} has no file ${spec.path} at ${at.branch} (the catalog's openapi)`);
  if (bytes.length > DEFAULT_FETCH_LIMITS.maxBytes) return unreadable(`${spec.path} is longer than the ${DEFAULT_FETCH_LIMITS.maxBytes}-byte limit`);
  const text = textOf(bytes);
  const format = fileKind(spec.path, '');
  if (text === null || (format !== 'yaml' && format !== 'json')) return unreadable(`${spec.path} is not a JSON or YAML file`);
  const imported = await importApiSpec(text);
  if (imported.kind === 'not-a-spec') return unreadable(`${spec.path} in ${spec.repo} is not an OpenAPI 3.x or Swagger 2.0 document`);
  if (imported.kind === 'invalid') return unreadable(imported.why);
  const hash = await store.put(text.trim());
  const source = {
    url,
    finalUrl: url,
    title: `${imported.summary.title} ${imported.summary.version} (${imported.summary.spec})`,
    format,
    hash,
    chars: text.trim().length,
    truncatedAt: null,
    fetchedAt: Date.now(),
    links: [],
    api: imported.summary,
    repo: { id: spec.repo, path: spec.path },
  };
  await store.remember(runId, source);
  return { ok: true, source, text: text.trim(), document: imported.document };
}

/**
 * After this run edited an api repository's definition: the brief's operations from it, shaped as the run's
 * branch now defines them. An operation the edit removed keeps its earlier shape and is named in `problems`.
 */
export async function readApiShapes(deps: ActivityDeps, request: RepoSpecRequest): Promise<{ operations: ApiOperationShape[]; problems: string[] }> {
  const read = await readRepositorySpec(deps, request.runId, request.spec, { branch: request.branch, sha: request.sha });
  if (!read.ok) return { operations: request.operations, problems: [`the API definition could not be read after the edit: ${read.unreadable.why}`] };
  const problems: string[] = [];
  const operations = request.operations.map((operation) => {
    const found = findOperation(read.source.api!, { method: operation.method, path: operation.path, ...(operation.operationId ? { operationId: operation.operationId } : {}) });
    if (typeof found === 'string') {
      problems.push(`${operation.method.toUpperCase()} ${operation.path} is no longer in ${request.spec.repo}'s ${request.spec.path} after its edit (the earlier shape is kept)`);
      return operation;
    }
    return { ...operation, method: found.method, path: found.path, operationId: found.operationId, shape: operationShape(read.document, found.method, found.path), from: read.source.url };
  });
  return { operations, problems };
}
