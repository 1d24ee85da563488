// What every adapter does with an inbound event, once it has verified and parsed it: a new thread starts
// a run, a reply in a run's thread feeds it (feedback while it awaits review, context otherwise), and a
// card button sends the signal it stands for. Translation only: the workflow decides what is allowed.
import { createHash } from 'node:crypto';
import { ButtonValueSchema, cardFor, type ButtonValue, type Card } from '../../domain/card';
import { CARD_OUT_OF_DATE, inputForButton } from '../../domain/human-inputs';
import type { Catalog } from '../../domain/catalog-schema';
import type { ConversationRef, InputRecord, RunState } from '../../domain/contracts';
import { RefusedError, UnknownRunError, type ChangeRequestGateway } from '../../client/gateway';
import { executeCommand } from '../../client/execute-command';
import { EventDeduper } from './dedupe';


export type { Platform } from '../../domain/platforms';
import type { Platform, PlatformWithPeople } from '../../domain/platforms';

/** One thread, one run: the run id is derived from the thread, so a redelivered start starts nothing new. */
export function runIdForThread(platform: Platform, channel: string, thread: string): string {
  return `cr-${platform}-${createHash('sha256').update(`${channel}\0${thread}`).digest('hex').slice(0, 16)}`;
}

/** A chat user as the catalog knows them: their handle, or "<platform>:<id>" when not listed. */
export function personFor(catalog: Catalog, platform: PlatformWithPeople, userId: string): string {
  const found = Object.entries(catalog.people).find(([, ids]) => ids[platform] === userId);
  return found ? found[0] : `${platform}:${userId}`;
}

/** What every chat platform's inbound handlers need; a platform adds its own calls (Lark: replies, cards). */
export interface InboundDeps {
  router: ConversationRouter;
  loadCatalog: () => Promise<Catalog>;
}

/** The router's verdict on a thread that has no run; then a mention may start one there. */
export const NOT_A_RUN_THREAD = 'not a change request thread';

export interface InboundMessage {
  platform: Platform;
  channel: string;
  /** The thread the message belongs to; for a new request, the message itself (its id becomes the thread). */
  thread: string;
  person: string;
  text: string;
  /** The platform's id for this delivery, for de-duplication (Slack event_id, Lark event_id …). */
  eventId: string;
  /** True for a request to start (a mention or command outside a run's thread). */
  startsRun: boolean;
}

export type MessageOutcome =
  | { kind: 'started'; runId: string; alreadyStarted: boolean }
  | { kind: 'fed'; runId: string; as: 'feedback' | 'addContext' }
  | { kind: 'refused'; runId: string | null; reason: string }
  | { kind: 'ignored'; why: string };

export interface ButtonPress {
  platform: Platform;
  person: string;
  /** The raw value the platform hands back; validated here. */
  value: unknown;
  eventId: string;
}

export type ButtonOutcome =
  | { kind: 'accepted'; runId: string; card: Card }
  | { kind: 'refused'; runId: string | null; reason: string; card: Card | null }
  | { kind: 'rerender'; runId: string; card: Card }
  | { kind: 'ask_feedback'; runId: string }
  | { kind: 'duplicate' };

export class ConversationRouter {
  private readonly seen = new EventDeduper();

  constructor(private readonly gateway: ChangeRequestGateway) {}

  async onMessage(message: InboundMessage): Promise<MessageOutcome> {
    if (!this.seen.firstTime(`${message.platform}:${message.eventId}`)) return { kind: 'ignored', why: 'already handled this delivery' };
    const text = message.text.trim();
    if (!text) return { kind: 'ignored', why: 'empty message' };
    const runId = runIdForThread(message.platform, message.channel, message.thread);
    if (message.startsRun) {
      try {
        const conversation: ConversationRef = { platform: message.platform, channel: message.channel, thread: message.thread };
        const started = await executeCommand(this.gateway, { kind: 'start', runId, input: { requirement: text, requester: message.person, conversation } });
        return { kind: 'started', runId, alreadyStarted: started.kind === 'started' && started.alreadyStarted };
      } catch (error) {
        if (error instanceof RefusedError) return { kind: 'refused', runId: null, reason: error.message };
        throw error;
      }
    }
    return this.reply(runId, message.person, text, `${message.platform}:${message.eventId}`);
  }

  /**
   * A message in a run's thread, sent as a `reply` without reading the run first: the run takes it as
   * feedback while it awaits review and as context otherwise, and its verdict says which.
   */
  async onReply(platform: Platform, runId: string, person: string, text: string, eventId: string): Promise<MessageOutcome> {
    if (!this.seen.firstTime(`${platform}:${eventId}`)) return { kind: 'ignored', why: 'already handled this delivery' };
    const trimmed = text.trim();
    if (!trimmed) return { kind: 'ignored', why: 'empty message' };
    return this.reply(runId, person, trimmed, `${platform}:${eventId}`);
  }

  private async reply(runId: string, person: string, text: string, key: string): Promise<MessageOutcome> {
    try {
      const { record } = (await executeCommand(this.gateway, { kind: 'reply', runId, payload: { by: person, key, text } })) as { record: InputRecord };
      return { kind: 'fed', runId, as: record.signal === 'feedback' ? 'feedback' : 'addContext' };
    } catch (error) {
      if (error instanceof RefusedError) return { kind: 'refused', runId, reason: error.message };
      if (!(error instanceof UnknownRunError)) throw error;
      // No run takes signals here: a thread that is not a run's, or a run that has ended (it still answers queries).
      const state = await this.stateOrNull(runId);
      if (!state) return { kind: 'ignored', why: NOT_A_RUN_THREAD };
      return { kind: 'refused', runId, reason: `this change request is ${state.phase}; start a new one for more changes` };
    }
  }

  async onButton(press: ButtonPress): Promise<ButtonOutcome> {
    if (!this.seen.firstTime(`${press.platform}:${press.eventId}`)) return { kind: 'duplicate' };
    const parsed = ButtonValueSchema.safeParse(press.value);
    if (!parsed.success) return { kind: 'refused', runId: null, reason: 'this button is not one of ours', card: null };
    const value: ButtonValue = parsed.data;
    const gone = { kind: 'refused' as const, runId: value.runId, reason: 'this change request no longer exists', card: null };
    const input = inputForButton(value, press.person);
    if (!input) {
      // Buttons that send nothing (toggle a repository, open the feedback form) are answered from the state.
      const state = await this.stateOrNull(value.runId);
      if (!state) return gone;
      if (value.cardVersion !== state.cardVersion) return { kind: 'refused', runId: value.runId, reason: CARD_OUT_OF_DATE, card: cardFor(state) };
      return value.action === 'toggle' ? { kind: 'rerender', runId: value.runId, card: cardFor(state, value.selection ?? []) } : { kind: 'ask_feedback', runId: value.runId };
    }
    // Sent without reading the run first: the run checks the card's version, the sender and the phase.
    const payload = { by: press.person, key: `${press.platform}:${press.eventId}`, cardVersion: value.cardVersion, ...input.fields };
    try {
      await this.gateway.send(value.runId, input.signal, payload as never);
    } catch (error) {
      // A finished run takes no signal (Temporal answers "not found") but still answers queries.
      if (!(error instanceof RefusedError || error instanceof UnknownRunError)) throw error;
      const state = await this.stateOrNull(value.runId);
      if (!state) return gone;
      const reason = value.cardVersion !== state.cardVersion ? CARD_OUT_OF_DATE : error instanceof RefusedError ? error.message : `this change request is ${state.phase}`;
      return { kind: 'refused', runId: value.runId, reason, card: cardFor(state) };
    }
    const state = await this.stateOrNull(value.runId);
    return state ? { kind: 'accepted', runId: value.runId, card: cardFor(state) } : gone;
  }

  /** Feedback typed into a form (Slack modal, web chat box) rather than as a thread reply. */
  async onFeedback(platform: Platform, runId: string, person: string, text: string, eventId: string): Promise<MessageOutcome> {
    if (!this.seen.firstTime(`${platform}:${eventId}`)) return { kind: 'ignored', why: 'already handled this delivery' };
    try {
      await executeCommand(this.gateway, { kind: 'feedback', runId, payload: { by: person, key: `${platform}:${eventId}`, text } });
      return { kind: 'fed', runId, as: 'feedback' };
    } catch (error) {
      if (error instanceof RefusedError) return { kind: 'refused', runId, reason: error.message };
      throw error;
    }
  }

  private async stateOrNull(runId: string): Promise<RunState | null> {
    try {
      return await this.gateway.state(runId);
    } catch (error) {
      if (error instanceof UnknownRunError) return null;
      throw error;
    }
  }
}
