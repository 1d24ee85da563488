// Replaying histories against the workflow code as it is now: the check that a change will not break runs
// already in flight (used by `runs replay` and by the replay fixtures in CI).
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { quietSdkLogs, WORKFLOWS_PATH } from '../worker/create-worker';

export type ReplayResult = { ok: true } | { ok: false; eventId: number | null; message: string };

let bundle: Promise<{ code: string }> | undefined;

/** Bundles the current workflows once per process (a few seconds), then replays each history. */
export async function replayAgainstCurrentCode(history: unknown, workflowId: string, codePath?: string): Promise<ReplayResult> {
  quietSdkLogs();
  const workflowBundle = codePath ? { codePath } : await (bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silent }));
  try {
    await Worker.runReplayHistory({ workflowBundle }, history, workflowId);
    return { ok: true };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const eventId = /event(?:\s*id)?\s*[:#]?\s*(\d+)/i.exec(message);
    return { ok: false, eventId: eventId ? Number(eventId[1]) : null, message: message.split('\n')[0]! };
  }
}

const noop = () => undefined;
const silent = { trace: noop, debug: noop, info: noop, warn: noop, error: (message: string) => console.error(message), log: noop };
