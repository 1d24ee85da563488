// Worker Versioning for operators: which builds exist, which is current, who serves each and how many runs
// are pinned to it; making a build current; and moving the runs of a build nobody serves any more onto the
// current one, each only after its history replays cleanly against the current code (README: Deploying).
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { WORKFLOW_TYPE } from '../domain/contracts';
import { WORKER_ROLES, taskQueueFor } from '../workflows/task-queues';
import type { ReplayResult } from './replay';

const { TaskQueueType } = temporal.api.enums.v1;
const { PinnedOverrideBehavior } = temporal.api.workflow.v1.VersioningOverride;

export interface VersionLine {
  buildId: string;
  status: 'current' | 'ramping' | 'draining' | 'drained' | 'inactive';
  createdAt: Date | null;
  /** Runs still going that are pinned to this build. */
  runningRuns: number;
  /** Worker processes of this build polling each role's queue now. */
  pollers: Record<string, number>;
}

export interface DeploymentReport {
  deploymentName: string;
  current: string | null;
  versions: VersionLine[];
  /** Running runs started before versioning (they follow the current build). */
  unversionedRuns: number;
}

export interface MoveResult {
  moved: string[];
  kept: { runId: string; reason: string }[];
}

const FAILED_PRECONDITION = 9;

/** A long poll lasts up to about a minute; a poller not seen for longer is gone. */
const LIVE_POLLER_WINDOW_MS = 90_000;

type Replay = (history: unknown, runId: string) => Promise<ReplayResult>;

export class Deployments {
  constructor(
    private readonly client: Client,
    private readonly namespace: string,
    private readonly deploymentName: string,
    private readonly taskQueue: string,
  ) {}

  /**
   * New runs start on this build from now on; runs pinned elsewhere stay where they are. Temporal refuses
   * while the build's workers have not yet polled every queue the current build serves (its steps would
   * have nowhere to go); a build that is coming up gets `waitMs` to do so.
   */
  async makeCurrent(buildId: string, options: { waitMs?: number } = {}): Promise<{ previous: string | null }> {
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      try {
        const response = await this.client.workflowService.setWorkerDeploymentCurrentVersion({
          namespace: this.namespace,
          deploymentName: this.deploymentName,
          buildId,
          // The first build of a deployment may be made current before its workers poll.
          allowNoPollers: true,
          identity: 'change-request operator',
        });
        const previous = response.previousDeploymentVersion?.buildId ?? null;
        return { previous: previous && previous !== '__unversioned__' ? previous : null };
      } catch (error) {
        if ((error as { code?: number }).code !== FAILED_PRECONDITION) throw error;
        if (Date.now() > deadline) {
          throw new Error(`build ${buildId} cannot be made current yet: ${(error as Error).message.replace(/^\d+ FAILED_PRECONDITION: /, '')}. Start its workers of every role (${WORKER_ROLES.join(', ')}) first.`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async report(): Promise<DeploymentReport> {
    const described = await this.describeDeployment();
    const pollers = await this.pollersByBuild();
    const versions = await Promise.all(
      (described?.versionSummaries ?? []).map(async (summary): Promise<VersionLine> => {
        const buildId = summary.deploymentVersion?.buildId ?? '?';
        return {
          buildId,
          status: statusName(summary.status),
          createdAt: summary.createTime?.seconds ? new Date(Number(summary.createTime.seconds) * 1000) : null,
          runningRuns: await this.countRunning(`TemporalWorkerDeploymentVersion = '${this.deploymentName}:${buildId}'`),
          pollers: pollers.get(buildId) ?? {},
        };
      }),
    );
    versions.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
    return {
      deploymentName: this.deploymentName,
      current: described?.routingConfig?.currentDeploymentVersion?.buildId ?? null,
      versions,
      unversionedRuns: await this.countRunning('TemporalWorkerDeploymentVersion IS NULL'),
    };
  }

  /** Builds that still have running runs but no workflows worker polling: those runs cannot move. */
  async stranded(): Promise<VersionLine[]> {
    const { versions, current } = await this.report();
    return versions.filter((v) => v.buildId !== current && v.runningRuns > 0 && !v.pollers.workflows);
  }

  /**
   * Moves every running run pinned to `fromBuildId` onto the current build, one by one, each only when its
   * history replays against the current workflow code; a run that does not replay stays where it was.
   */
  async moveRuns(fromBuildId: string, replay: Replay): Promise<MoveResult> {
    const current = (await this.describeDeployment())?.routingConfig?.currentDeploymentVersion?.buildId;
    if (!current) throw new Error(`the deployment ${this.deploymentName} has no current build yet`);
    if (current === fromBuildId) return { moved: [], kept: [] };
    const result: MoveResult = { moved: [], kept: [] };
    const query = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TemporalWorkerDeploymentVersion = '${this.deploymentName}:${fromBuildId}'`;
    for await (const execution of this.client.workflow.list({ query })) {
      const runId = execution.workflowId;
      const replayed = await replay(await this.client.workflow.getHandle(runId).fetchHistory(), runId);
      if (!replayed.ok) {
        result.kept.push({ runId, reason: `does not replay on ${current}${replayed.eventId ? ` (event ${replayed.eventId})` : ''}: ${replayed.message}` });
        continue;
      }
      await this.client.workflowService.updateWorkflowExecutionOptions({
        namespace: this.namespace,
        workflowExecution: { workflowId: runId },
        workflowExecutionOptions: {
          versioningOverride: { pinned: { behavior: PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED, version: { deploymentName: this.deploymentName, buildId: current } } },
        },
        updateMask: { paths: ['versioning_override'] },
        identity: 'change-request operator',
      });
      result.moved.push(runId);
    }
    return result;
  }

  private async describeDeployment() {
    try {
      const response = await this.client.workflowService.describeWorkerDeployment({ namespace: this.namespace, deploymentName: this.deploymentName });
      return response.workerDeploymentInfo ?? null;
    } catch (error) {
      // No worker of this deployment has polled yet.
      if ((error as { code?: number }).code === 5) return null;
      throw error;
    }
  }

  private async pollersByBuild(): Promise<Map<string, Record<string, number>>> {
    const byBuild = new Map<string, Record<string, number>>();
    for (const role of WORKER_ROLES) {
      const response = await this.client.workflowService.describeTaskQueue({
        namespace: this.namespace,
        taskQueue: { name: taskQueueFor(this.taskQueue, role) },
        taskQueueType: role === 'workflows' ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      for (const poller of response.pollers ?? []) {
        // Temporal lists a poller for minutes after its process died; a live one polls again within a long poll.
        const seenAt = Number(poller.lastAccessTime?.seconds ?? 0) * 1000;
        if (Date.now() - seenAt > LIVE_POLLER_WINDOW_MS) continue;
        const options = poller.deploymentOptions;
        if (options?.deploymentName !== this.deploymentName || !options.buildId) continue;
        const counts = byBuild.get(options.buildId) ?? {};
        counts[role] = (counts[role] ?? 0) + 1;
        byBuild.set(options.buildId, counts);
      }
    }
    return byBuild;
  }

  private async countRunning(clause: string): Promise<number> {
    const { count } = await this.client.workflow.count(`WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND ${clause}`);
    return count;
  }
}

function statusName(status: temporal.api.enums.v1.WorkerDeploymentVersionStatus | null | undefined): VersionLine['status'] {
  const name = temporal.api.enums.v1.WorkerDeploymentVersionStatus[status ?? 0] ?? '';
  const short = name.replace('WORKER_DEPLOYMENT_VERSION_STATUS_', '').toLowerCase();
  return (['current', 'ramping', 'draining', 'drained'] as const).find((s) => s === short) ?? 'inactive';
}
