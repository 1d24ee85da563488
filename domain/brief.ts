// The requirement brief: what the run is asked to build, extracted by the model from the requirement and
// the pages it links, in a fixed shape, with every claim traceable to a quote in a page that was read.
// Code, not the model, decides whether a brief stands: every source must be a page this run read, and
// every quote must occur in that page's text. Pure (the workflow and the activities share it).
import { z } from 'zod';

const Line = z.string().trim().min(1).max(1000);

export const RequirementBriefSchema = z
  .object({
    goal: Line.describe('One or two sentences: what the requester wants, and for whom.'),
    behaviour: z.array(Line).max(30).default([]).describe('What a user sees and does once it is built.'),
    acceptanceCriteria: z
      .array(
        z
          .object({
            text: Line,
            /** The source it came from (its id, e.g. "S2"), or null for the requirement as typed. */
            source: z.string().trim().min(1).nullable().default(null),
          })
          .strict(),
      )
      .max(40)
      .default([]),
    uiCopy: z.array(z.object({ text: Line, where: z.string().trim().max(200).optional() }).strict()).max(30).default([]).describe('Exact words the UI shows.'),
    dataAndApi: z.array(Line).max(30).default([]).describe('Data the UI needs, and API operations or fields.'),
    outOfScope: z.array(Line).max(20).default([]),
    openQuestions: z.array(Line).max(20).default([]),
    /** The API operations the requirement needs, from an API definition among the sources; code checks each exists. */
    apiOperations: z
      .array(
        z
          .object({
            source: z.string().trim().min(1).describe('The id of the API definition source (S1 …).'),
            method: z.string().trim().min(1).optional(),
            path: z.string().trim().min(1).optional(),
            operationId: z.string().trim().min(1).optional(),
            why: z.string().trim().max(500).optional(),
          })
          .strict()
          .refine((op) => op.operationId || (op.method && op.path), 'name the operation by method and path, or by operationId'),
      )
      .max(12)
      .default([]),
    sources: z
      .array(
        z
          .object({
            /** A source's id as the run lists it ("S1"). */
            source: z.string().trim().min(1),
            quotes: z.array(z.string().trim().min(3).max(600)).min(1).max(12).describe('Exact passages of that page the brief rests on.'),
          })
          .strict(),
      )
      .max(20)
      .default([]),
  })
  .strict();
export type RequirementBrief = z.infer<typeof RequirementBriefSchema>;

export type ApiOperationRef = RequirementBrief['apiOperations'][number];

/** An API definition among the sources: what it is and the operations it has. */
export interface ApiSpecSummary {
  title: string;
  version: string;
  spec: string;
  operations: { method: string; path: string; operationId: string | null; summary: string | null }[];
}

/** A chosen operation with its exact shape from the spec (code renders it; the model only chose it). */
export interface ApiOperationShape {
  source: string;
  method: string;
  path: string;
  operationId: string | null;
  /** Parameters, request body and responses, dereferenced, as YAML. */
  shape: string;
  /** Where the shape was read: the source as read, or the run's branch of the repository that owns the spec. */
  from: string;
}

/** How a text came into the run. */
/** `catalog`: an api repository's own definition (its catalog entry's `openapi`). */
export type SourceVia = 'requirement' | 'context' | 'linked' | 'attachment' | 'catalog';

/** A page or document the run read: its cleaned text is stored by hash, outside workflow history. */
export interface ContextSource {
  /** "S1", "S2" … in the order the run read them: what the brief cites. */
  id: string;
  /** As linked (or `attachment:<name>` for an upload). */
  url: string;
  /** After redirects. */
  finalUrl: string;
  title: string;
  format: 'html' | 'markdown' | 'text' | 'json' | 'yaml';
  /** sha256 of the cleaned text, the key of the source store. */
  hash: string;
  chars: number;
  /** Set when the page was longer than the size limit and cut there (bytes). */
  truncatedAt: number | null;
  via: SourceVia;
  fetchedAt: number;
  /** Links found in the page (absolute, at most 50): the agent may open those the allow-list permits. */
  links: string[];
  /** Set when the text is an OpenAPI or Swagger document (validated and dereferenced). */
  api?: ApiSpecSummary;
  /** Set for an api repository's own definition: which repository, and the file's path in it. */
  repo?: { id: string; path: string };
}

/** A link that could not be read, said plainly on the card ("could not read <url>: <why>"). */
export interface UnreadableSource {
  url: string;
  why: string;
  at: number;
}

export interface BriefRecord {
  brief: RequirementBrief;
  /** The brief's apiOperations with their exact request and response shapes. */
  operations: ApiOperationShape[];
  /** Increases with every extraction (a correction or new context makes a new one). */
  version: number;
  at: number;
  /** The context entries (by count) the extraction had read; later ones call for another pass. */
  contextSeen: number;
}

/** What the run gathered before proposing and whenever context was added. */
export interface ContextIntake {
  sources: ContextSource[];
  unreadable: UnreadableSource[];
  brief: BriefRecord | null;
  /** Why the last extraction produced no brief (the run goes on with the requirement as typed). */
  note: string | null;
  /** How many context entries have been gathered from (links read, corrections given to the model). */
  contextSeen: number;
  /** Passes made so far (the first reads the requirement's own links). */
  passes: number;
}

export function emptyIntake(): ContextIntake {
  return { sources: [], unreadable: [], brief: null, note: null, contextSeen: 0, passes: 0 };
}

/**
 * The http(s) links in a text, and the chat file references the adapters write for attached files
 * (`slack-file:F0123`, `lark-file:om_…/file_…`), in order, without duplicates or trailing punctuation.
 */
export function linksIn(text: string): string[] {
  const found = text.match(/\bhttps?:\/\/[^\s<>"'`()[\]{}]+|\b[a-z]+-file:[A-Za-z0-9_./-]+/gi) ?? [];
  const links = found.map((link) => link.replace(/[.,;:!?]+$/, ''));
  return [...new Set(links)];
}

/** For comparing a quote with a page: whitespace collapsed, typographic quotes and dashes made plain, case ignored. */
export function normalizeForQuotes(text: string): string {
  return text
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201C\u201D]/g, '"')
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/[*_`]+/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * Why a brief does not stand, one line per problem (empty when it does): a source that is not a page this
 * run read, or a quote that is not in that page's text. `texts` maps a read source's id to its cleaned text.
 */
export function briefProblems(brief: RequirementBrief, texts: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  const normalized = new Map([...texts].map(([url, text]) => [url, normalizeForQuotes(text)]));
  for (const source of brief.sources) {
    const text = normalized.get(source.source);
    if (text === undefined) {
      problems.push(`sources: ${source.source} is not a source this run read (read: ${[...texts.keys()].join(', ') || 'none'})`);
      continue;
    }
    for (const quote of source.quotes) {
      if (!text.includes(normalizeForQuotes(quote))) problems.push(`sources: the quote "${clip(quote, 80)}" does not occur in ${source.source}; quote the page exactly`);
    }
  }
  brief.acceptanceCriteria.forEach((criterion, index) => {
    if (criterion.source !== null && !normalized.has(criterion.source)) problems.push(`acceptanceCriteria[${index}].source: ${criterion.source} is not a source this run read`);
  });
  if (brief.sources.length === 0 && texts.size > 0) problems.push('sources: cite at least one page you read, with the passages the brief rests on');
  return problems;
}

/**
 * The brief as Markdown, for prompts and the web chat; sources are named by their address, and the API
 * operations it needs come with their exact shapes from the spec.
 */
export function renderBrief(brief: RequirementBrief, sources: readonly Pick<ContextSource, 'id' | 'url'>[] = [], operations: readonly ApiOperationShape[] = []): string {
  const where = (id: string | null) => (id ? ` (${sources.find((s) => s.id === id)?.url ?? id})` : '');
  const list = (title: string, items: readonly string[]) => (items.length ? [`**${title}**`, ...items.map((i) => `- ${i}`), ''] : []);
  return [
    `**Goal.** ${brief.goal}`,
    '',
    ...list('User-visible behaviour', brief.behaviour),
    ...list('Acceptance criteria', brief.acceptanceCriteria.map((c) => `${c.text}${where(c.source)}`)),
    ...list('UI copy', brief.uiCopy.map((c) => `"${c.text}"${c.where ? ` (${c.where})` : ''}`)),
    ...list('Data and API', brief.dataAndApi),
    ...list('Out of scope', brief.outOfScope),
    ...list('Open questions', brief.openQuestions),
    ...list('Sources', brief.sources.map((s) => `${sources.find((r) => r.id === s.source)?.url ?? s.source}: ${s.quotes.map((q) => `"${clip(q, 160)}"`).join('; ')}`)),
    ...(operations.length
      ? ['**API operations, exactly as the spec defines them** (build to these shapes; do not invent fields)', ...operations.flatMap((op) => [`${op.method.toUpperCase()} ${op.path} (from ${op.from}):`, fenced(op.shape, 'yaml')]), '']
      : []),
  ]
    .join('\n')
    .trim();
}

/** A few lines for a chat card: the goal and the count of each part. */
export function briefShort(brief: RequirementBrief): string {
  const counts = [
    [brief.acceptanceCriteria.length, 'acceptance criteri', 'on', 'a'],
    [brief.uiCopy.length, 'UI text', '', 's'],
    [brief.openQuestions.length, 'open question', '', 's'],
    [brief.sources.length, 'source', '', 's'],
  ] as const;
  const parts = counts.filter(([n]) => n > 0).map(([n, word, one, many]) => `${n} ${word}${n === 1 ? one : many}`);
  return `${clip(brief.goal, 280)}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** A code block whose fence is longer than any backtick run inside it. */
function fenced(text: string, language: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${text.trimEnd()}\n${fence}`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
