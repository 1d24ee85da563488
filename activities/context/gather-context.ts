// Context intake, one pass: the links are read in code (allow-list, limits, stored by hash), then the model
// extracts the requirement brief from what was read. Its only freedom is opening further links listed in
// those pages (within the allow-list, a count and the step budget); code validates the brief it submits:
// the schema, every source a page this run read, every quote found in that page's text.
import { z } from 'zod';
import { briefProblems, renderBrief, RequirementBriefSchema, type ApiOperationShape, type ContextSource, type RequirementBrief, type UnreadableSource } from '../../domain/brief';
import { noSpend } from '../../domain/budget';
import type { GatherRequest, GatherResult } from '../../domain/activity-contracts';
import { EXTRACT_SYSTEM_PROMPT, extractPrompt, pageSection } from '../agent/prompts';
import { runAgentStep } from '../agent/run-step';
import { defineTool, ToolRegistry } from '../agent/tools/registry';
import type { ActivityDeps } from '../deps';
import { heartbeat } from '../heartbeat';
import { importApiSpec, findOperation, operationShape } from './openapi';
import { readSource, withId } from './read-source';
import { readRepositorySpec } from './repository-spec';
import { SourceStore } from './source-store';

/** Most of one page the model is shown (the full text stays in the store, and quotes are checked on it). */
const PAGE_CHARS_SHOWN = 24_000;
const LABEL = 'read the requirement';

type Answer = { valid: true; brief: RequirementBrief; operations: ApiOperationShape[] } | { valid: false; error: string };

export async function gatherContext(deps: ActivityDeps, request: GatherRequest): Promise<GatherResult> {
  const store = SourceStore.under(deps.dataDir);
  const allowHosts = [...(deps.contextHosts ?? []), ...request.allowHosts];
  const readOptions = { store, runId: request.runId, allowHosts, documents: deps.chatDocuments ?? [] };
  const sources: ContextSource[] = [];
  const unreadable: UnreadableSource[] = [];
  const texts = new Map<string, string>();
  const known = [...request.known];

  // What earlier passes read: from the store, or read again by the same rules when this worker lacks it.
  for (const source of known) {
    const text = (await store.text(source.hash)) ?? (await readSource(source.url, readOptions).then((o) => (o.ok ? o.text : null)));
    if (text !== null) texts.set(source.id, text);
  }
  const read = async (url: string, via: ContextSource['via']): Promise<ContextSource | UnreadableSource> => {
    heartbeat();
    const outcome = await readSource(url, readOptions);
    if (!outcome.ok) {
      const note = { ...outcome.unreadable, at: Date.now() };
      unreadable.push(note);
      return note;
    }
    const already = [...known, ...sources].find((s) => s.hash === outcome.source.hash || s.url === url);
    if (already) return already;
    const source = withId(outcome.source, via, [...known, ...sources].filter((s) => s.via !== 'catalog').length);
    sources.push(source);
    texts.set(source.id, outcome.text);
    return source;
  };
  for (const link of request.links) await read(link.url, link.via);
  // The api repositories' own definitions, from their default branches (named by repository, not numbered).
  for (const spec of request.apiSpecs ?? []) {
    heartbeat();
    if ([...known, ...sources].some((s) => s.repo?.id === spec.repo)) continue;
    const outcome = await readRepositorySpec(deps, request.runId, spec, { branch: spec.defaultBranch });
    if (!outcome.ok) {
      unreadable.push({ ...outcome.unreadable, at: Date.now() });
      continue;
    }
    const source: ContextSource = { ...outcome.source, id: `${spec.repo}/${spec.path}`, via: 'catalog' };
    sources.push(source);
    texts.set(source.id, outcome.text);
  }

  const none = (note: string): GatherResult => ({ sources, unreadable, brief: null, operations: [], note, usage: { step: LABEL, repo: null, round: 0, model: 'none', spend: noSpend(), stoppedBy: null }, transcript: null });
  const all = [...known, ...sources];
  // The repositories' definitions add to the pages; without a page there is nothing to extract from.
  if (![...known, ...sources].some((s) => s.via !== 'catalog' && texts.has(s.id))) return none(all.every((s) => s.via === 'catalog') && unreadable.length ? 'none of the linked pages could be read' : 'no page could be read');

  let opened = 0;
  const openLink = defineTool({
    name: 'open_link',
    description: `Read a page linked from one of the pages you were given (only links listed under a page; at most ${request.maxOpenedLinks} in this step). Answers with the page's id and text.`,
    input: z.object({ url: z.string().min(1).describe('A link as listed under a page: its address, or its name such as S1.L2.') }),
    run: async ({ url: asked }) => {
      const url = listedLink([...known, ...sources], asked.trim());
      if (!url) return { isError: true, text: `${asked} is not a link listed in the pages read; open only listed links.` };
      const before = [...known, ...sources].find((s) => s.url === url || s.finalUrl === url);
      if (before) return { text: `Already read as ${before.id}.` };
      if (opened >= request.maxOpenedLinks) return { isError: true, text: `No more links may be opened in this step (at most ${request.maxOpenedLinks}); submit the brief with what you have.` };
      opened += 1;
      const result = await read(url, 'linked');
      if (!('id' in result)) return { isError: true, text: `could not read ${url}: ${result.why}` };
      return { text: pageSection(shown(result, texts.get(result.id) ?? '')) };
    },
  });
  let invalidAnswers = 0;
  let lastProblems: string[] = [];
  const submit = defineTool({
    name: 'submit_brief',
    description: 'Give the requirement brief. Every source is a page id (S1 …) and every quote is copied exactly from that page.',
    input: z.unknown(),
    inputShownToModel: RequirementBriefSchema,
    run: async (value) => {
      const parsed = RequirementBriefSchema.safeParse(value);
      const problems = parsed.success ? briefProblems(parsed.data, texts) : [z.prettifyError(parsed.error)];
      const operations = parsed.success ? await shapesOf(parsed.data, [...known, ...sources], texts, problems) : [];
      if (parsed.success && problems.length === 0) return { final: { valid: true, brief: parsed.data, operations } satisfies Answer, text: 'Brief received.' };
      invalidAnswers += 1;
      lastProblems = problems;
      if (invalidAnswers >= 3) return { final: { valid: false, error: problems.join('; ') } satisfies Answer, text: 'The brief still does not stand.' };
      return { isError: true, text: `The brief does not stand:\n${problems.map((p) => `- ${p}`).join('\n')}\nCall submit_brief again with a corrected brief.` };
    },
  });

  const step = await runAgentStep(deps, request.runId, {
    task: { kind: 'extract', runId: request.runId, requirement: request.requirement, corrections: request.previousBrief ? request.context.join('\n') : null },
    label: LABEL,
    repo: null,
    round: 0,
    system: EXTRACT_SYSTEM_PROMPT,
    prompt: extractPrompt({
      requirement: request.requirement,
      context: request.context,
      previousBrief: request.previousBrief ? renderBrief(request.previousBrief, all) : null,
      corrections: request.corrections,
      pages: all.filter((s) => texts.has(s.id)).map((s) => shown(s, texts.get(s.id)!)),
    }),
    tools: new ToolRegistry<Answer>([openLink, submit], PAGE_CHARS_SHOWN + 4000),
    limits: request.limits,
    model: request.model,
    spendKey: request.spendKey,
    nudgeIfNoFinal: 'Please answer by calling submit_brief; a prose answer cannot be used.',
    transcriptId: `brief-${request.spendKey.replace(/[^a-z0-9]+/gi, '-')}`,
  });
  const { outcome } = step;
  const note =
    outcome.kind === 'limit'
      ? `the brief was not finished: ${outcome.stop.message}`
      : outcome.kind === 'ended'
        ? invalidAnswers > 0
          ? `the brief did not stand: ${lastProblems.join('; ')}`
          : 'the model gave no brief'
        : outcome.value.valid
          ? null
          : `the brief did not stand: ${outcome.value.error}`;
  const valid = outcome.kind === 'final' && outcome.value.valid ? outcome.value : null;
  return { sources, unreadable, brief: valid?.brief ?? null, operations: valid?.operations ?? [], note, usage: step.usage, transcript: step.transcript };
}

/**
 * The exact shapes of the operations the brief names, from the API definitions among the sources; an
 * operation that is not in its spec (or a source that is no spec) adds a problem instead.
 */
async function shapesOf(brief: RequirementBrief, sources: readonly ContextSource[], texts: ReadonlyMap<string, string>, problems: string[]): Promise<ApiOperationShape[]> {
  const shapes: ApiOperationShape[] = [];
  for (const [index, ref] of brief.apiOperations.entries()) {
    const source = sources.find((s) => s.id === ref.source);
    if (!source?.api || !texts.has(source.id)) {
      problems.push(`apiOperations[${index}].source: ${ref.source} is not an API definition this run read${sources.some((s) => s.api) ? ` (API definitions: ${sources.filter((s) => s.api).map((s) => s.id).join(', ')})` : ''}`);
      continue;
    }
    const found = findOperation(source.api, ref);
    if (typeof found === 'string') {
      problems.push(`apiOperations[${index}]: ${found}`);
      continue;
    }
    const spec = await importApiSpec(texts.get(source.id)!);
    if (spec.kind !== 'spec') continue; // it validated when it was read
    shapes.push({ source: source.id, method: found.method, path: found.path, operationId: found.operationId, shape: operationShape(spec.document, found.method, found.path), from: source.url });
  }
  return shapes;
}

/** A listed link by its address or its name in the page listing (S1.L2); null when no page lists it. */
function listedLink(sources: readonly ContextSource[], asked: string): string | null {
  const named = /^(S\d+)\.L(\d+)$/i.exec(asked);
  if (named) return sources.find((s) => s.id.toUpperCase() === named[1]!.toUpperCase())?.links[Number(named[2]) - 1] ?? null;
  return sources.some((s) => s.links.includes(asked)) ? asked : null;
}

function shown(source: ContextSource, text: string): { id: string; url: string; title: string; text: string; links: string[]; cut: boolean } {
  const cut = text.length > PAGE_CHARS_SHOWN || source.truncatedAt !== null;
  // An API definition leads with its operations, which is what a brief names (apiOperations).
  const operations = source.api
    ? `API definition ${source.api.title} ${source.api.version} (${source.api.spec}); its operations:\n${source.api.operations.map((op) => `- ${op.method.toUpperCase()} ${op.path}${op.operationId ? ` (operationId ${op.operationId})` : ''}${op.summary ? `: ${op.summary}` : ''}`).join('\n')}\nThe document:\n`
    : '';
  return { id: source.id, url: source.url, title: source.title, text: operations + text.slice(0, PAGE_CHARS_SHOWN), links: source.links, cut };
}
