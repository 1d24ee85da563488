// The JSON API behind the web chat page, one method per endpoint. Like every adapter it only translates:
// requests become ConversationRouter events, runs become cards; the run decides what is allowed.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { readOutbox } from '../../activities/notify';
import { UnknownRunError, type ChangeRequestGateway } from '../../client/gateway';
import { ButtonValueSchema, cardFor, type Card } from '../../domain/card';
import { RepoIdSchema, type Catalog } from '../../domain/catalog-schema';
import type { RunState } from '../../domain/contracts';
import { NOT_A_RUN_THREAD, type ButtonOutcome, type ConversationRouter, type MessageOutcome } from '../core/router';
import { diffRangesOf } from '../../domain/compare';
import { renderDiffHtml, MAX_RENDERED_DIFF_BYTES, type DiffHtml } from '../../domain/diff-html';
import { HttpError, validate } from './http';
import { peopleOf, type WebPerson } from './people';
import { RunWatches } from './run-watch';
import type { Uploads } from './uploads';

/** Every web chat thread lives in this one channel: the page is a single room. */
export const WEB_CHANNEL = 'web';
/** The ids runIdForThread gives web threads; anything else is not a thread of this page. */
const WEB_RUN_ID = /^cr-web-[0-9a-f]{16}$/;

/** How long a run view waits for a change before answering with what it has. */
const LONG_POLL_MS = 20_000;
const POLL_EVERY_MS = 100;

const PersonField = z.string().trim().min(1, 'say who you are').max(100);
const TextField = z.string().trim().min(1, 'must not be empty').max(20_000, 'at most 20,000 characters');
/** Made by the page, one per click, so a retried request has one effect (the router de-duplicates on it). */
const EventIdField = z.string().regex(/^[A-Za-z0-9_-]{8,100}$/, 'use 8 to 100 letters, digits, "-" or "_"');

export const NewThreadBodySchema = z.object({ as: PersonField, text: TextField, eventId: EventIdField.optional() }).strict();
export const ReplyBodySchema = z.object({ as: PersonField, text: TextField, eventId: EventIdField }).strict();
export const AttachmentBodySchema = z
  .object({ as: PersonField, name: z.string().min(1).max(100), content: z.string().min(1, 'the file is empty'), text: z.string().trim().max(20_000).optional(), eventId: EventIdField })
  .strict();
export const ButtonBodySchema = z.object({ as: PersonField, value: ButtonValueSchema, eventId: EventIdField }).strict();

const VersionParam = z.coerce.number().int().min(0);
const RunQuerySchema = z.object({
  /** Wait until the run's version is past this one (the page sends the version it shows). */
  after: VersionParam.optional(),
  /** Also answer when the thread has more messages than this (reminders are written after the version moves). */
  messages: VersionParam.optional(),
  /** The repositories ticked on a confirmation card, comma-separated; absent means the proposal's. */
  selection: z
    .string()
    .transform((text) => text.split(',').filter(Boolean))
    .pipe(z.array(RepoIdSchema).max(50))
    .optional(),
});
export type RunQuery = z.infer<typeof RunQuerySchema>;

const OPEN_FILES_UP_TO = 3;

const DiffQuerySchema = z.object({
  repo: RepoIdSchema,
  /** `total` (the default) or a round number. */
  round: z.union([z.literal('total'), z.coerce.number().int().min(1)]).default('total'),
}).strict();

/** One repository's diff as the review panel shows it, with the other ranges it can switch to. */
export interface DiffView {
  repo: string;
  round: number | 'total';
  label: string;
  /** The same diff on the repository's host (the card's link). */
  url: string;
  ranges: { round: number | 'total'; label: string }[];
  html: string;
  files: number;
  truncated: boolean;
}

export interface ThreadMessage {
  key: string;
  at: number;
  text: string;
}

export interface RunView {
  state: RunState;
  card: Card;
  /** What the service said in the thread besides the card (reminders), oldest first. */
  messages: ThreadMessage[];
}

export interface ThreadSummary {
  runId: string;
  phase: string | null;
  requester: string | null;
  summary: string | null;
  startedAt: string;
}

export interface WebChatDeps {
  gateway: ChangeRequestGateway;
  router: ConversationRouter;
  loadCatalog: () => Promise<Catalog>;
  outboxDir: string;
  demoRequirements: string[];
  /** Files attached in threads, served back by this web chat so the run reads them as links. */
  uploads: Uploads;
  /** This web chat's own address, for the links to its uploads. */
  ownUrl: () => string;
  /** Reads a raw diff from a repository host's compare view (`<compare url>.diff`). */
  readDiff?: (url: string, signal: AbortSignal) => Promise<string>;
}

interface RunReading {
  state: RunState;
  messages: ThreadMessage[];
}

export class WebChatApi {
  /** One shared watch per run for all the pages long-polling it (run-watch.ts). */
  readonly watches: RunWatches<RunReading>;

  constructor(private readonly deps: WebChatDeps) {
    this.watches = new RunWatches((runId) => this.reading(runId), POLL_EVERY_MS);
  }

  async people(): Promise<{ people: WebPerson[] }> {
    return { people: peopleOf(await this.deps.loadCatalog()) };
  }

  demos(): { requirements: string[] } {
    return { requirements: this.deps.demoRequirements };
  }

  async threads(): Promise<{ threads: ThreadSummary[] }> {
    // Web threads are told apart by their run id (runIdForThread('web', …)).
    const runs = await this.deps.gateway.list({ idPrefix: 'cr-web-', limit: 200 });
    const threads = runs
      .filter((run) => WEB_RUN_ID.test(run.runId))
      .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
      .map((run) => ({
        runId: run.runId,
        phase: run.phase ?? null,
        requester: run.requester ?? null,
        summary: run.summary ?? null,
        startedAt: run.startTime.toISOString(),
      }));
    return { threads };
  }

  /**
   * A new thread: its first message starts a run. The page's event id becomes the thread id, and the run id
   * derives from the thread, so a retried start finds the run it started (alreadyStarted) and starts nothing
   * new; each request is a fresh delivery for the router, so the retry learns that run id instead of being
   * ignored as a repeat.
   */
  async startThread(body: z.infer<typeof NewThreadBodySchema>): Promise<MessageOutcome> {
    await this.requireKnownPerson(body.as);
    const thread = body.eventId ?? randomBytes(12).toString('hex');
    const delivery = `start-${randomBytes(12).toString('hex')}`;
    return this.deps.router.onMessage({ platform: 'web', channel: WEB_CHANNEL, thread, person: body.as, text: body.text, eventId: delivery, startsRun: true });
  }

  /** The run as the page draws it; with `after`, waits (up to LONG_POLL_MS) until something moved. */
  async run(runId: string, rawQuery: Record<string, string>, aborted: AbortSignal): Promise<RunView> {
    const query = validate(RunQuerySchema, rawQuery, 'query');
    const { after } = query;
    const moved = ({ state, messages }: RunReading) => after === undefined || state.version > after || messages.length > (query.messages ?? messages.length);
    const { state, messages } = after === undefined ? await this.reading(runId) : await this.watches.wait(runId, moved, Date.now() + LONG_POLL_MS, aborted);
    return { state, card: cardFor(state, query.selection), messages };
  }

  private async reading(runId: string): Promise<RunReading> {
    return { state: await this.webRunState(runId), messages: await this.messages(runId) };
  }

  /**
   * A file attached to a reply: kept by this web chat, and sent as a reply carrying its link, which the run
   * reads like any other link (an API definition is parsed and validated there).
   */
  async attach(runId: string, body: z.infer<typeof AttachmentBodySchema>): Promise<MessageOutcome> {
    await this.requireKnownPerson(body.as);
    const { hash, name } = await this.deps.uploads.put(body.name, body.content);
    const text = `${body.text ? `${body.text}\n` : ''}Attached ${name}: ${this.deps.ownUrl()}/uploads/${hash}/${name}`;
    return this.reply(runId, { as: body.as, text, eventId: body.eventId });
  }

  /** A reply in the thread: feedback while the run awaits review, context otherwise (the router decides). */
  async reply(runId: string, body: z.infer<typeof ReplyBodySchema>): Promise<MessageOutcome> {
    await this.requireKnownPerson(body.as);
    if (!WEB_RUN_ID.test(runId)) throw new HttpError(404, `${runId} is not a web chat thread`);
    const outcome = await this.deps.router.onReply('web', runId, body.as, body.text, body.eventId);
    if (outcome.kind === 'ignored' && outcome.why === NOT_A_RUN_THREAD) throw new HttpError(404, `no change request with id ${runId}`);
    return outcome;
  }

  async press(runId: string, body: z.infer<typeof ButtonBodySchema>): Promise<ButtonOutcome> {
    if (body.value.runId !== runId) throw new HttpError(400, `bad body: value.runId: this button belongs to ${body.value.runId}, not ${runId}`);
    await this.requireKnownPerson(body.as);
    await this.webRunState(runId);
    return this.deps.router.onButton({ platform: 'web', person: body.as, value: body.value, eventId: body.eventId });
  }

  /** Feedback typed into the review box: always feedback, so a phase change in between is refused, not turned into context. */
  async feedback(runId: string, body: z.infer<typeof ReplyBodySchema>): Promise<MessageOutcome> {
    await this.requireKnownPerson(body.as);
    await this.webRunState(runId);
    return this.deps.router.onFeedback('web', runId, body.as, body.text, body.eventId);
  }

  /**
   * A repository's diff, in total or for one round, from its host's compare view (the local forge, or
   * GitHub), rendered by diff2html. Commits never change, so a diff once read is kept.
   */
  async diff(runId: string, rawQuery: Record<string, string>, aborted: AbortSignal): Promise<DiffView> {
    const query = validate(DiffQuerySchema, rawQuery, 'query');
    const state = await this.webRunState(runId);
    const ranges = diffRangesOf(state, query.repo);
    if (ranges.length === 0) throw new HttpError(404, `${query.repo} has no changes in ${runId} yet`);
    const range = ranges.find((r) => r.round === query.round);
    if (!range) throw new HttpError(404, `${query.repo} has no commit of round ${query.round} (its rounds: ${ranges.slice(1).map((r) => r.round).join(', ')})`);
    if (!range.url) throw new HttpError(404, `${query.repo}'s clone URL has no web compare view to read its diff from`);
    const rendered = await this.renderedDiff(range.url, aborted);
    return { repo: query.repo, round: range.round, label: range.label, url: range.url, ranges: ranges.map((r) => ({ round: r.round, label: r.label })), ...rendered };
  }

  private readonly diffs = new Map<string, DiffHtml>();

  private async renderedDiff(url: string, aborted: AbortSignal): Promise<DiffHtml> {
    const known = this.diffs.get(url);
    if (known) return known;
    const read = this.deps.readDiff ?? readCompareDiff;
    let patch: string;
    try {
      patch = await read(`${url}.diff`, AbortSignal.any([aborted, AbortSignal.timeout(15_000)]));
    } catch (error) {
      throw new HttpError(502, `could not read the diff from ${url}: ${error instanceof Error ? error.message : String(error)}`);
    }
    // A review panel holds every repository's diff: past a few files, each starts collapsed.
    const rendered = renderDiffHtml(patch, { openFilesUpTo: OPEN_FILES_UP_TO });
    if (this.diffs.size >= 100) this.diffs.delete(this.diffs.keys().next().value!);
    this.diffs.set(url, rendered);
    return rendered;
  }

  /** The state of a run started from this page; 404 for any other id. */
  private async webRunState(runId: string): Promise<RunState> {
    if (!WEB_RUN_ID.test(runId)) throw new HttpError(404, `${runId} is not a web chat thread`);
    let state: RunState;
    try {
      state = await this.deps.gateway.state(runId);
    } catch (error) {
      if (error instanceof UnknownRunError) throw new HttpError(404, `no change request with id ${runId}`);
      throw error;
    }
    const { conversation } = state.request;
    if (conversation.platform !== 'web' || !conversation.thread) throw new HttpError(404, `${runId} is not a web chat thread`);
    return state;
  }

  private async messages(runId: string): Promise<ThreadMessage[]> {
    const lines = await readOutbox(this.deps.outboxDir, runId);
    return lines.map(({ key, at, text }) => ({ key, at, text }));
  }

  /** The page offers the catalog's people; anyone else is a mistake worth saying (the run would refuse later). */
  private async requireKnownPerson(handle: string): Promise<void> {
    const catalog = await this.deps.loadCatalog();
    if (!Object.hasOwn(catalog.people, handle)) {
      throw new HttpError(400, `bad body: as: "${handle}" is not one of the catalog's people (${Object.keys(catalog.people).join(', ')})`);
    }
  }
}

/** The compare view's raw diff, as a browser would read it (no token: the forge's pages are open to this machine). */
async function readCompareDiff(url: string, signal: AbortSignal): Promise<string> {
  const response = await fetch(url, { signal, headers: { accept: 'text/plain' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  // Past what is rendered, the rest is not needed: read a little more than that, then stop.
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.byteLength;
    if (bytes > MAX_RENDERED_DIFF_BYTES + 64 * 1024) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
