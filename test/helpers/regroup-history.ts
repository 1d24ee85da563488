// Rewrites a recorded history as if a worker had seen one workflow task's results in two activations:
// an empty workflow task (scheduled, started, completed with no commands) goes in after a given event.
// A live worker can take such a path (test/fixtures/nondeterminism/README.md); a replay of the original
// history never does. Workflow code whose commands do not depend on that grouping replays both.

export interface JsonHistory {
  events: JsonEvent[];
}
type JsonEvent = { eventId: string; eventType: string; [attributes: string]: unknown };

/** The history with an empty workflow task inserted after event `afterEventId`, ids renumbered. */
export function withTaskBoundaryAfter(history: JsonHistory, afterEventId: number): JsonHistory {
  const template = (type: string) => {
    const event = history.events.find((e) => e.eventType === type);
    if (!event) throw new Error(`the history has no ${type} to copy`);
    return structuredClone(event);
  };
  const events: JsonEvent[] = [];
  for (const event of history.events) {
    events.push(structuredClone(event));
    if (Number(event.eventId) !== afterEventId) continue;
    const [scheduled, started, completed] = ['SCHEDULED', 'STARTED', 'COMPLETED'].map((s) => template(`EVENT_TYPE_WORKFLOW_TASK_${s}`));
    for (const inserted of [scheduled!, started!, completed!]) inserted.eventTime = event.eventTime;
    events.push({ ...scheduled!, eventId: 'new-scheduled' }, { ...started!, eventId: 'new-started' }, { ...completed!, eventId: 'new-completed' });
  }
  const renumbered = new Map<string, string>();
  const inserted = new Set<JsonEvent>(events.filter((e) => e.eventId.startsWith('new-')));
  events.forEach((event, i) => {
    renumbered.set(event.eventId, String(i + 1));
    event.eventId = String(i + 1);
  });
  for (const event of events) {
    for (const [key, value] of Object.entries(event)) {
      if (!key.endsWith('Attributes') || typeof value !== 'object' || value === null) continue;
      const attributes = value as Record<string, unknown>;
      for (const [field, id] of Object.entries(attributes)) {
        if (field.endsWith('EventId') && typeof id === 'string' && renumbered.has(id)) attributes[field] = renumbered.get(id);
      }
      if (!inserted.has(event)) continue;
      if (event.eventType === 'EVENT_TYPE_WORKFLOW_TASK_STARTED') attributes.scheduledEventId = String(Number(event.eventId) - 1);
      if (event.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED') {
        attributes.scheduledEventId = String(Number(event.eventId) - 2);
        attributes.startedEventId = String(Number(event.eventId) - 1);
      }
    }
  }
  return { ...history, events };
}
