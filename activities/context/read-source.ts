// Reading one link for a run: from the run's store when it was read before, else fetched (allow-list,
// limits, SSRF guard), cleaned and stored. Never throws for a bad link: it says why it could not be read.
import type { ContextSource, SourceVia, UnreadableSource } from '../../domain/brief';
import type { HostPattern } from '../egress-proxy';
import { chatFilePlatform, type ChatDocumentReader } from './chat-documents';
import { cleanPage } from './clean-page';
import { importApiSpec } from './openapi';
import { DEFAULT_FETCH_LIMITS, fetchPage, UnreadableLinkError, type FetchedPage, type FetchLimits } from './fetch-page';
import { SourceStore } from './source-store';

export type ReadOutcome = { ok: true; source: Omit<ContextSource, 'id' | 'via'>; text: string } | { ok: false; unreadable: Omit<UnreadableSource, 'at'> };

export interface ReadOptions {
  store: SourceStore;
  runId: string;
  allowHosts: readonly HostPattern[];
  limits?: FetchLimits;
  /** Readers of the chat platforms' own files and docs, with the app's token (im-adapters/<platform>/documents.ts). */
  documents?: readonly ChatDocumentReader[];
  signal?: AbortSignal;
  now?: () => number;
}

export async function readSource(url: string, options: ReadOptions): Promise<ReadOutcome> {
  const { store, runId } = options;
  const before = await store.readBefore(runId, url);
  if (before) return { ok: true, source: before, text: (await store.text(before.hash))! };
  try {
    const page = await fetchOrRead(url, options);
    const clean = cleanPage(page);
    if (!clean.text) return { ok: false, unreadable: { url, why: 'the page has no text' } };
    // A JSON or YAML text may be an API definition: validated here, so a broken one is refused with its path.
    const spec = page.kind === 'json' || page.kind === 'yaml' ? await importApiSpec(clean.text) : { kind: 'not-a-spec' as const };
    if (spec.kind === 'invalid') return { ok: false, unreadable: { url, why: spec.why } };
    if (spec.kind === 'spec' && page.truncatedAt !== undefined) return { ok: false, unreadable: { url, why: `the API definition is longer than the ${page.truncatedAt}-byte limit` } };
    const hash = await store.put(clean.text);
    const source = {
      url,
      finalUrl: page.finalUrl,
      title: clean.title,
      format: page.kind,
      hash,
      chars: clean.text.length,
      truncatedAt: page.truncatedAt ?? null,
      fetchedAt: (options.now ?? Date.now)(),
      links: clean.links,
      ...(spec.kind === 'spec' ? { api: spec.summary, title: `${spec.summary.title} ${spec.summary.version} (${spec.summary.spec})` } : {}),
    };
    await store.remember(runId, source);
    return { ok: true, source, text: clean.text };
  } catch (error) {
    options.signal?.throwIfAborted();
    if (error instanceof UnreadableLinkError) return { ok: false, unreadable: { url, why: error.reason } };
    return { ok: false, unreadable: { url, why: error instanceof Error ? error.message : String(error) } };
  }
}

/** A chat platform's file or doc through its reader, anything else as a link. */
function fetchOrRead(url: string, options: ReadOptions): Promise<FetchedPage> {
  const limits = options.limits ?? DEFAULT_FETCH_LIMITS;
  const reader = options.documents?.find((r) => r.reads(url));
  if (reader) return reader.read(url, limits, options.signal);
  const platform = chatFilePlatform(url);
  if (platform) throw new UnreadableLinkError(url, `this worker does not read ${platform} files (the ${platform} settings are not configured on it)`);
  return fetchPage(url, options.allowHosts, limits, options.signal);
}

/** Numbers new sources after the ones the run already has (S1, S2 …). */
export function withId(source: Omit<ContextSource, 'id' | 'via'>, via: SourceVia, known: number): ContextSource {
  return { ...source, id: `S${known + 1}`, via };
}
