// The Node.js a repository's commands run on, ready to use: the PATH that puts it first, what the sandbox
// must bind for it, and a line for the check report when it is not the worker's own Node, or when the
// version asked for cannot be had (then the commands run on the worker's Node and the summary says so).
import path from 'node:path';
import type { CatalogRepo } from '../../domain/catalog-schema';
import type { CheckResult } from '../../domain/contracts';
import type { ActivityDeps } from '../deps';
import type { Confinement } from '../sandbox';
import { NodeRuntimes } from './node-runtimes';
import { wantedNode } from './wanted-node';

export interface RepositoryRuntime {
  /** The Node.js version the commands run on. */
  version: string;
  /** Added to the command environment (PATH with the runtime first), or nothing for the worker's Node. */
  env: Record<string, string>;
  confinement: Pick<Confinement, 'runtimes'>;
  /** For the check report: which Node ran and why, or the risk of running on another. */
  report: CheckResult | null;
}

const WORKER_NODE: RepositoryRuntime = { version: process.versions.node, env: {}, confinement: {}, report: null };

export function nodeRuntimesOf(deps: Pick<ActivityDeps, 'dataDir' | 'nodeRuntimeRegistry'>): NodeRuntimes {
  return new NodeRuntimes(path.join(deps.dataDir, 'runtimes'), deps.nodeRuntimeRegistry ?? null);
}

export async function repositoryRuntime(deps: ActivityDeps, repo: Pick<CatalogRepo, 'id' | 'node'>, checkout: string, signal?: AbortSignal): Promise<RepositoryRuntime> {
  const started = Date.now();
  const asked = await wantedNode(checkout, repo.node);
  const onWorkerNode = `Its commands ran on the worker's Node.js ${process.versions.node}, so a failure may come from that.`;
  if ('unreadable' in asked) return { ...WORKER_NODE, report: riskReport(`${repo.id}: ${asked.unreadable}. ${onWorkerNode}`, started) };
  if (!asked.wanted) return WORKER_NODE;
  const { range, source } = asked.wanted;
  const answer = await nodeRuntimesOf(deps).provide(range, signal);
  if ('problem' in answer) return { ...WORKER_NODE, report: riskReport(`${repo.id} asks for Node.js ${range} (${source}), but ${answer.problem}. ${onWorkerNode}`, started) };
  const { runtime, fetched } = answer;
  if (!runtime.root) return WORKER_NODE;
  return {
    version: runtime.version,
    env: { PATH: [runtime.binDir, process.env.PATH ?? '/usr/bin:/bin'].join(path.delimiter) },
    confinement: { runtimes: [runtime.root] },
    report: {
      name: `Node.js ${runtime.version}`,
      command: `node ${runtime.version}`,
      kind: 'install',
      status: 'passed',
      exitCode: 0,
      durationMs: Date.now() - started,
      outputTail: `${source} asks for ${range}; ${fetched ? `fetched Node.js ${runtime.version} from ${deps.nodeRuntimeRegistry} (kept for later runs)` : `Node.js ${runtime.version}, kept on this worker`}, first on PATH for every command`,
    },
  };
}

function riskReport(risk: string, started: number): CheckResult {
  return { name: 'Node.js', command: `node ${process.versions.node}`, kind: 'install', status: 'passed', exitCode: 0, durationMs: Date.now() - started, outputTail: risk, risk };
}
