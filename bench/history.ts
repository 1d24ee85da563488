// Reading timings out of a workflow's history: when it started, when it reached a phase (the search
// attribute upsert that records the phase), and each activity's scheduled / started / closed times.
import type { temporal } from '@temporalio/proto';
import { unionLength } from './stats';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ActivitySpan {
  type: string;
  scheduled: number;
  started: number;
  closed: number;
}

export interface RunTimeline {
  started: number;
  /** When the phase was first recorded (the workflow task that upserted CrPhase completed), per phase. */
  phases: Map<string, number>;
  activities: ActivitySpan[];
  workflowTasks: { scheduled: number; started: number; completed: number }[];
}

export function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) return Number.NaN;
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

export function timelineOf(events: readonly HistoryEvent[]): RunTimeline {
  const byId = new Map<number, HistoryEvent>();
  for (const e of events) byId.set(Number(e.eventId), e);
  let started = Number.NaN;
  const phases = new Map<string, number>();
  const activities: ActivitySpan[] = [];
  const workflowTasks: RunTimeline['workflowTasks'] = [];
  for (const e of events) {
    if (e.workflowExecutionStartedEventAttributes) started = eventMs(e);
    const upsert = e.upsertWorkflowSearchAttributesEventAttributes;
    const phasePayload = upsert?.searchAttributes?.indexedFields?.CrPhase;
    if (phasePayload?.data) {
      const phase = JSON.parse(Buffer.from(phasePayload.data).toString('utf8')) as string;
      if (!phases.has(phase)) phases.set(phase, eventMs(e));
    }
    const closed =
      e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (closed) {
      const scheduled = byId.get(Number(closed.scheduledEventId));
      const startedEvent = byId.get(Number(closed.startedEventId));
      activities.push({
        type: scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?',
        scheduled: scheduled ? eventMs(scheduled) : Number.NaN,
        // The started event is written when the activity closes, but carries the time it really started.
        started: startedEvent ? eventMs(startedEvent) : Number.NaN,
        closed: eventMs(e),
      });
    }
    const wftCompleted = e.workflowTaskCompletedEventAttributes;
    if (wftCompleted) {
      const s = byId.get(Number(wftCompleted.scheduledEventId));
      const st = byId.get(Number(wftCompleted.startedEventId));
      workflowTasks.push({ scheduled: s ? eventMs(s) : Number.NaN, started: st ? eventMs(st) : Number.NaN, completed: eventMs(e) });
    }
  }
  return { started, phases, activities, workflowTasks };
}

export interface CriticalPath {
  /** Start of the workflow to the phase being recorded. */
  wallMs: number;
  /** Union of the activities' started→closed intervals inside that window: time some activity was running. */
  activityMs: number;
  /** Union of scheduled→closed intervals: also counts time activities waited in the task queue. */
  activityWithQueueMs: number;
  /** wall / activity − 1: what orchestration added on top of the activities' own time. */
  overhead: number;
  activities: number;
  workflowTasks: number;
  /** Start to the first workflow task's completion (a new workflow's first activation loads its code). */
  firstTaskMs: number;
}

export function criticalPath(timeline: RunTimeline, phase: string): CriticalPath {
  const end = timeline.phases.get(phase);
  if (end === undefined) throw new Error(`the history never records phase ${phase}`);
  const inWindow = timeline.activities.filter((a) => a.closed <= end + 1);
  const activityMs = unionLength(inWindow.map((a) => ({ start: a.started, end: a.closed })));
  const activityWithQueueMs = unionLength(inWindow.map((a) => ({ start: a.scheduled, end: a.closed })));
  const wallMs = end - timeline.started;
  return {
    wallMs,
    activityMs,
    activityWithQueueMs,
    overhead: wallMs / activityMs - 1,
    activities: inWindow.length,
    workflowTasks: timeline.workflowTasks.filter((t) => t.completed <= end + 1).length,
    firstTaskMs: (timeline.workflowTasks[0]?.completed ?? Number.NaN) - timeline.started,
  };
}
