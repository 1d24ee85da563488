// What operators do with runs, from Temporal's own records: a run's timeline (phases, activities with
// attempts and durations, errors, budget), its history as JSON, replaying it against the current code,
// resetting it to just before a phase, and retrying it as a new run linked to the old one.
import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import type { ChangeRequestInput, Phase, RunState } from '../domain/contracts';
import { SA_PHASE } from '../domain/search-attributes';
import { describeSpend } from '../domain/summary';
import { UnknownRunError, type ChangeRequestGateway } from './gateway';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ActivityLine {
  activityId: string;
  type: string;
  summary: string;
  scheduledAt: Date;
  attempts: number;
  durationMs: number | null;
  outcome: 'completed' | 'failed' | 'timed out' | 'cancelled' | 'running';
  error: string | null;
}

export interface Timeline {
  runId: string;
  status: string;
  summary: string | null;
  phases: { phase: string; at: Date; durationMs: number | null }[];
  activities: ActivityLine[];
  signals: { name: string; at: Date }[];
  continuedFrom: string | null;
  /** The build the run is on (Worker Versioning) and how: pinned by its start, or moved by an operator. */
  build: { buildId: string; how: 'pinned' | 'moved' | 'auto-upgrade' } | null;
  state: RunState | null;
  failure: string | null;
}

export class OperatorError extends Error {
  override readonly name = 'OperatorError';
}

const STATE_QUERY_PATIENCE_MS = 3000;

export class Operator {
  constructor(private readonly client: Client, private readonly gateway: ChangeRequestGateway, private readonly namespace: string) {}

  async history(runId: string): Promise<History> {
    return this.known(runId, () => this.client.workflow.getHandle(runId).fetchHistory());
  }

  /** Temporal says "not found" in more than one way; to a person it is one thing. */
  private async known<T>(runId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (error instanceof WorkflowNotFoundError || code === 5 || /NOT_FOUND|not found/i.test(String((error as Error).message))) {
        throw new UnknownRunError(`no run with id ${runId}`);
      }
      throw error;
    }
  }

  async exportHistory(runId: string): Promise<string> {
    return historyToJSON(await this.history(runId));
  }

  async timeline(runId: string): Promise<Timeline> {
    const history = await this.history(runId);
    const events = history.events ?? [];
    const description = await this.known(runId, () => this.client.workflow.getHandle(runId).describe());
    // A query needs a worker: with none running (the case worth looking into) it would wait its full
    // timeout, so the timeline goes without the state after a few seconds. It may also fail on a broken run.
    const state = await Promise.race([this.gateway.state(runId).catch(() => null), new Promise<null>((resolve) => setTimeout(() => resolve(null), STATE_QUERY_PATIENCE_MS).unref())]);
    // The first phase is set when the run is started, not upserted by it.
    const phases = [
      ...(events[0] ? [{ phase: 'intake', at: timeOf(events[0]) }] : []),
      ...events.flatMap((event) => {
        const phase = upsertedPhase(event);
        return phase ? [{ phase, at: timeOf(event) }] : [];
      }),
    ];
    const timedPhases = phases.map((p, i) => ({ ...p, durationMs: i + 1 < phases.length ? phases[i + 1]!.at.getTime() - p.at.getTime() : null }));
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    const closed = events.at(-1);
    return {
      runId,
      status: description.status.name,
      summary: (await description.staticSummary().catch(() => undefined)) ?? null,
      phases: timedPhases,
      activities: withPending(activityLines(events), description.raw.pendingActivities ?? []),
      // Human inputs; the agents' own progress reports would drown them.
      signals: events.flatMap((e) => {
        const signal = e.workflowExecutionSignaledEventAttributes;
        return signal && signal.signalName !== 'agentProgress' ? [{ name: signal.signalName ?? '?', at: timeOf(e) }] : [];
      }),
      continuedFrom: started?.continuedExecutionRunId || null,
      build: buildOf(description.raw.workflowExecutionInfo?.versioningInfo),
      state,
      failure: closed?.workflowExecutionFailedEventAttributes?.failure?.message ?? null,
    };
  }

  /**
   * Resets the run to the workflow task just before `phase` began, so it runs that phase again with the
   * code and services as they are now. Signals received after that point are re-applied unless told not to.
   */
  async reset(runId: string, phase: Phase, options: { reapplySignals: boolean; reason: string }): Promise<{ newRunId: string; eventId: number }> {
    const history = await this.history(runId);
    const events = history.events ?? [];
    const entered = events.findIndex((e) => upsertedPhase(e) === phase);
    if (entered < 0) {
      const reached = ['intake', ...new Set(events.flatMap((e) => upsertedPhase(e) ?? []))];
      throw new OperatorError(`run ${runId} never reached phase ${phase} in its current execution (it reached: ${reached.join(', ') || 'none'})`);
    }
    const taskBefore = events.slice(0, entered).reverse().find((e) => e.workflowTaskCompletedEventAttributes);
    if (!taskBefore?.eventId) throw new OperatorError(`no workflow task completed before ${phase} began in run ${runId}`);
    const description = await this.client.workflow.getHandle(runId).describe();
    const { ResetReapplyType } = temporal.api.enums.v1;
    const response = await this.client.workflowService.resetWorkflowExecution({
      namespace: this.namespace,
      workflowExecution: { workflowId: runId, runId: description.runId },
      reason: options.reason,
      workflowTaskFinishEventId: taskBefore.eventId,
      requestId: randomUUID(),
      resetReapplyType: options.reapplySignals ? ResetReapplyType.RESET_REAPPLY_TYPE_SIGNAL : ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
    });
    return { newRunId: response.runId ?? '', eventId: Number(taskBefore.eventId) };
  }

  /** A new run with the first run's input, linked to it in its memo and details. */
  async retry(runId: string): Promise<{ newRunId: string }> {
    const history = await this.history(runId);
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!input) throw new OperatorError(`run ${runId} has no recorded input to retry with`);
    const request = defaultPayloadConverter.fromPayload<ChangeRequestInput>(input as Payload);
    const newRunId = `${runId.replace(/-retry-\d+$/, '')}-retry-${Date.now().toString(36)}`;
    await this.gateway.start(request, newRunId, { retryOf: runId });
    return { newRunId };
  }
}

function timeOf(event: HistoryEvent): Date {
  const t = event.eventTime;
  return new Date(Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6));
}

function upsertedPhase(event: HistoryEvent): string | null {
  const payload = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.[SA_PHASE.name];
  if (!payload) return null;
  const value = defaultPayloadConverter.fromPayload<unknown>(payload as Payload);
  return typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : null;
}

function activityLines(events: readonly HistoryEvent[]): ActivityLine[] {
  const byScheduledId = new Map<string, ActivityLine>();
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const summaryPayload = event.userMetadata?.summary;
      byScheduledId.set(String(event.eventId), {
        activityId: scheduled.activityId ?? '',
        type: scheduled.activityType?.name ?? '?',
        summary: summaryPayload ? String(defaultPayloadConverter.fromPayload(summaryPayload as Payload)) : '',
        scheduledAt: timeOf(event),
        attempts: 0,
        durationMs: null,
        outcome: 'running',
        error: null,
      });
      continue;
    }
    const startedAttributes = event.activityTaskStartedEventAttributes;
    if (startedAttributes) {
      const line = byScheduledId.get(String(startedAttributes.scheduledEventId));
      if (line) line.attempts = startedAttributes.attempt ?? 1;
      continue;
    }
    const endings: [ActivityLine['outcome'], { scheduledEventId?: Long | number | null; failure?: { message?: string | null; cause?: { message?: string | null } | null } | null } | null | undefined][] = [
      ['completed', event.activityTaskCompletedEventAttributes],
      ['failed', event.activityTaskFailedEventAttributes],
      ['timed out', event.activityTaskTimedOutEventAttributes],
      ['cancelled', event.activityTaskCanceledEventAttributes],
    ];
    for (const [outcome, attributes] of endings) {
      if (!attributes) continue;
      const line = byScheduledId.get(String(attributes.scheduledEventId));
      if (!line) continue;
      line.outcome = outcome;
      line.durationMs = timeOf(event).getTime() - line.scheduledAt.getTime();
      line.error = attributes.failure ? [attributes.failure.message, attributes.failure.cause?.message].filter(Boolean).join(': ') : null;
    }
  }
  return [...byScheduledId.values()];
}

type Long = { toString(): string };

interface PendingActivity {
  activityId?: string | null;
  attempt?: number | null;
  lastFailure?: { message?: string | null; timeoutFailureInfo?: { timeoutType?: number | string | null } | null } | null;
}

/**
 * What history cannot say yet about a running step (its started event is written when it ends): which
 * attempt it is on, and why the last one failed; a lost heartbeat means its worker was lost.
 */
function withPending(lines: ActivityLine[], pending: readonly PendingActivity[]): ActivityLine[] {
  return lines.map((line) => {
    const now = line.outcome === 'running' ? pending.find((p) => p.activityId === line.activityId) : undefined;
    if (!now) return line;
    const timeout = now.lastFailure?.timeoutFailureInfo?.timeoutType;
    // The enum's number from the proto, or its name when the response was decoded from JSON.
    const lost = timeout === temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT || timeout === 'TIMEOUT_TYPE_HEARTBEAT';
    const retrying = now.lastFailure ? (lost ? 'retrying: the worker was lost (no heartbeat within the timeout)' : `retrying after: ${now.lastFailure.message ?? 'a failure'}`) : null;
    return { ...line, attempts: now.attempt ?? line.attempts, error: retrying ?? line.error };
  });
}

type VersioningInfo = temporal.api.workflow.v1.IWorkflowExecutionVersioningInfo | null | undefined;

function buildOf(info: VersioningInfo): Timeline['build'] {
  const overridden = info?.versioningOverride?.pinned?.version?.buildId;
  if (overridden) return { buildId: overridden, how: 'moved' };
  const buildId = info?.deploymentVersion?.buildId;
  if (!buildId) return null;
  return { buildId, how: info.behavior === temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE ? 'auto-upgrade' : 'pinned' };
}

export function formatTimeline(timeline: Timeline): string {
  const time = (d: Date) => d.toISOString().slice(11, 19);
  const seconds = (ms: number | null) => (ms === null ? '…' : `${(ms / 1000).toFixed(1)}s`);
  const out = [`Run ${timeline.runId} — ${timeline.status}${timeline.summary ? ` — ${timeline.summary}` : ''}`];
  if (timeline.continuedFrom) out.push(`  continued as new from run ${timeline.continuedFrom}`);
  if (timeline.build) out.push(`  build ${timeline.build.buildId} (${timeline.build.how === 'moved' ? 'moved there by an operator' : timeline.build.how})`);
  out.push('', 'Phases:');
  for (const p of timeline.phases) out.push(`  ${time(p.at)}  ${p.phase.padEnd(22)} ${seconds(p.durationMs)}`);
  out.push('', 'Activities:');
  for (const a of timeline.activities) {
    const attempts = `${a.attempts} attempt${a.attempts === 1 ? '' : 's'}`;
    out.push(`  ${time(a.scheduledAt)}  ${a.type.padEnd(20)} ${(a.summary || '').padEnd(34)} ${attempts.padEnd(11)} ${seconds(a.durationMs).padStart(7)}  ${a.outcome}`);
    if (a.error) out.push(`            ${a.error}`);
  }
  if (timeline.signals.length) {
    out.push('', 'Signals:');
    for (const s of timeline.signals) out.push(`  ${time(s.at)}  ${s.name}`);
  }
  if (timeline.state) {
    out.push('', `Budget spent: ${describeSpend(timeline.state.budget.used)}`);
    if (timeline.state.lastError) out.push(`Last error (${timeline.state.lastError.phase}): ${timeline.state.lastError.message}`);
  }
  if (timeline.failure) out.push(`Failure: ${timeline.failure}`);
  return out.join('\n');
}
