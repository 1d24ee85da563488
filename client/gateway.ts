// The typed gateway that the CLI and every IM adapter share: start a run, send a human input and learn
// whether the run accepted it, read a run's state, list runs. Validates at the edge; the workflow
// validates again.
import { randomBytes } from 'node:crypto';
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { mayTarget, type Catalog } from '../domain/catalog-schema';
import {
  ChangeRequestInputSchema,
  WORKFLOW_TYPE,
  type ChangeRequestInput,
  type InputRecord,
  type Phase,
  type RunState,
  type Transcript,
} from '../domain/contracts';
import { SignalPayloadSchemas, type SignalName, type SignalPayload } from '../domain/human-inputs';
import { SA_AUTONOMY, SA_PHASE, SA_REQUESTER } from '../domain/search-attributes';
import { oneLine } from '../domain/summary';

/** A request the service will not carry out, with the reason to show the person. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}
export class UnknownRunError extends Error {
  override readonly name = 'UnknownRunError';
}
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

export interface RunListItem {
  runId: string;
  status: string;
  phase: string | undefined;
  requester: string | undefined;
  repos: string[];
  startTime: Date;
  summary: string | undefined;
  /** The build the run is pinned to (Worker Versioning); undefined for runs started unversioned. */
  build: string | undefined;
}

export interface ListFilter {
  phase?: Phase;
  requester?: string;
  repo?: string;
  failed?: boolean;
  since?: Date;
  /** Runs whose id starts with this (the IM adapters derive ids from their threads, e.g. `cr-web-`). */
  idPrefix?: string;
  limit?: number;
}

export interface GatewayOptions {
  taskQueue: string;
  /** The catalog as the service currently reads it, for checks at the edge. */
  catalog: () => Promise<Catalog>;
  /** How long to wait for a run to say whether it accepted an input. */
  verdictTimeoutMs?: number;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `cr-${stamp}-${randomBytes(4).toString('hex')}`;
}

export function newKey(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

export class ChangeRequestGateway {
  constructor(private readonly client: Client, private readonly options: GatewayOptions) {}

  /** Starts a run. Passing the same runId twice (a retried IM event) starts it once. */
  async start(rawInput: ChangeRequestInput, runId = newRunId(), links: { retryOf?: string } = {}): Promise<{ runId: string; alreadyStarted: boolean }> {
    const parsed = ChangeRequestInputSchema.safeParse(rawInput);
    if (!parsed.success) throw new RefusedError(`cannot start: ${describeZod(parsed.error)}`);
    const input = parsed.data;
    const catalog = await this.options.catalog();
    const autonomy = input.autonomy ?? catalog.policy.defaultAutonomy;
    if (!catalog.repositories.some((r) => mayTarget(catalog, input.requester, r.id))) {
      throw new RefusedError(`${input.requester} may not target any repository in the catalog`);
    }
    if (autonomy === 'fixed') {
      const unknown = input.repos!.filter((id) => !catalog.repositories.some((r) => r.id === id));
      if (unknown.length) throw new RefusedError(`unknown repository: ${unknown.join(', ')} (the catalog has ${catalog.repositories.map((r) => r.id).join(', ')})`);
      const outside = input.repos!.filter((id) => !mayTarget(catalog, input.requester, id));
      if (outside.length) throw new RefusedError(`${input.requester} may not target ${outside.join(', ')}`);
    }
    const summaryLine = `${input.requester}: ${oneLine(input.requirement, 100)}`;
    try {
      await this.guard(() =>
        this.client.workflow.start(WORKFLOW_TYPE, {
          taskQueue: this.options.taskQueue,
          workflowId: runId,
          args: [{ ...input, autonomy }],
          typedSearchAttributes: [
            { key: SA_REQUESTER, value: input.requester },
            { key: SA_AUTONOMY, value: autonomy },
            { key: SA_PHASE, value: 'intake' },
          ],
          staticSummary: summaryLine,
          memo: { summary: summaryLine, ...(links.retryOf ? { retryOf: links.retryOf } : {}) },
          staticDetails: [
            `**Requirement:** ${input.requirement}`,
            `**Requester:** ${input.requester} · **autonomy:** ${autonomy}${input.repos && autonomy === 'fixed' ? ` · **repositories:** ${input.repos.join(', ')}` : ''}`,
            `**Conversation:** ${input.conversation.platform} ${input.conversation.channel}${input.conversation.thread ? ` / ${input.conversation.thread}` : ''}`,
            ...(links.retryOf ? [`**Retry of:** ${links.retryOf}`] : []),
          ].join('\n\n'),
        }),
      );
      return { runId, alreadyStarted: false };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return { runId, alreadyStarted: true };
      throw error;
    }
  }

  /**
   * Sends a human input and waits for the run's verdict. Resolves with the accepted record; throws
   * RefusedError with the run's reason otherwise. Re-sending the same key returns the first verdict.
   */
  async send<S extends SignalName>(runId: string, signal: S, payload: SignalPayload<S>): Promise<InputRecord> {
    const parsed = SignalPayloadSchemas[signal].safeParse(payload);
    if (!parsed.success) throw new RefusedError(`${signal} refused: ${describeZod(parsed.error)}`);
    const handle = this.client.workflow.getHandle(runId);
    await this.guard(() => handle.signal(signal, parsed.data), runId);
    const record = await this.waitForVerdict(runId, parsed.data.key);
    // The record names the input the run took it as (a reply becomes feedback or context).
    if (record.outcome === 'refused') throw new RefusedError(`${record.signal} refused: ${record.reason ?? 'no reason given'}`);
    return record;
  }

  async state(runId: string): Promise<RunState> {
    return this.guard(() => this.client.workflow.getHandle(runId).query<RunState>('state'), runId);
  }

  /** One agent transcript of the run (ids are in `state.transcripts`). */
  async transcript(runId: string, id: string): Promise<Transcript | null> {
    return this.guard(() => this.client.workflow.getHandle(runId).query<Transcript | null, [string]>('transcript', id), runId);
  }

  async list(filter: ListFilter = {}): Promise<RunListItem[]> {
    const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
    if (filter.phase) clauses.push(`CrPhase = '${escapeQuery(filter.phase)}'`);
    if (filter.requester) clauses.push(`CrRequester = '${escapeQuery(filter.requester)}'`);
    if (filter.repo) clauses.push(`CrRepos = '${escapeQuery(filter.repo)}'`);
    if (filter.failed) clauses.push(`(ExecutionStatus = 'Failed' OR CrPhase = 'failed')`);
    if (filter.since) clauses.push(`StartTime >= '${filter.since.toISOString()}'`);
    if (filter.idPrefix) clauses.push(`WorkflowId STARTS_WITH '${escapeQuery(filter.idPrefix)}'`);
    const items: RunListItem[] = [];
    await this.guard(async () => {
      for await (const execution of this.client.workflow.list({ query: clauses.join(' AND ') })) {
        const attributes = execution.typedSearchAttributes;
        items.push({
          runId: execution.workflowId,
          status: execution.status.name,
          phase: attributes.get(SA_PHASE),
          requester: attributes.get(SA_REQUESTER),
          repos: (execution.searchAttributes?.CrRepos as string[] | undefined) ?? [],
          startTime: execution.startTime,
          summary: typeof execution.memo?.summary === 'string' ? execution.memo.summary : undefined,
          // "<deployment>:<build id>", kept by Temporal as a search attribute.
          build: (execution.searchAttributes?.TemporalWorkerDeploymentVersion as string[] | undefined)?.[0]?.split(':').slice(1).join(':'),
        });
        if (items.length >= (filter.limit ?? 50)) break;
      }
    });
    return items;
  }

  /** The run's record of the input, from the small `inputVerdict` query (the first one usually has it). */
  private async waitForVerdict(runId: string, key: string): Promise<InputRecord> {
    const deadline = Date.now() + (this.options.verdictTimeoutMs ?? 15_000);
    const handle = this.client.workflow.getHandle(runId);
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      const record = await this.guard(() => handle.query<InputRecord | null, [string]>('inputVerdict', key), runId);
      if (record) return record;
      if (Date.now() > deadline) throw new Error(`run ${runId} has not processed input ${key} yet; check again with \`show\``);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /** Turns Temporal's errors into the three a person can act on. */
  private async guard<T>(call: () => Promise<T>, runId?: string): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError || (error as { name?: string }).name === 'WorkflowNotFoundError') {
        throw new UnknownRunError(`no run with id ${runId ?? '(none)'}`);
      }
      const message = error instanceof Error ? error.message : String(error);
      if (/workflow execution already completed/i.test(message)) throw new RefusedError(`run ${runId} has already finished`);
      if (/UNAVAILABLE|ECONNREFUSED|failed to connect|DEADLINE_EXCEEDED|transport error/i.test(message)) {
        throw new UnreachableError(`cannot reach the Temporal server (${message.split('\n')[0]})`);
      }
      throw error;
    }
  }
}

function describeZod(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

function escapeQuery(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}
