// One eval case on one model, through the real workflow: the agent proposes, the expected repositories are
// confirmed (so that editing is judged on the right set whatever the proposal was), the run edits and
// checks until review, and then the case's acceptance commands run on each repository's branch, in a
// checkout of their own, installed against the run's change set. The run is cancelled afterwards.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { commandEnvironment, runCommand } from '../activities/commands';
import { installChangeSet } from '../activities/packages/change-set-install';
import { loadCatalog } from '../domain/catalog-loader';
import type { ChangeSetPackage, RunState } from '../domain/contracts';
import type { EvalCase } from './cases';
import type { EvalWorld } from './world';

const git = promisify(execFile);
const SETTLED = ['awaiting_review', 'awaiting_budget', 'failed', 'cancelled', 'done'];

export interface AcceptanceOutcome {
  repo: string;
  check: string;
  passed: boolean;
  /** Why it failed: the end of its output, or what kept it from running. */
  detail?: string;
}

export interface CaseResult {
  case: string;
  model: string;
  phase: string;
  reason?: string;
  proposed: string[];
  expected: string[];
  precision: number;
  recall: number;
  ownChecks: { passed: number; total: number };
  acceptance: AcceptanceOutcome[];
  /** Own checks and acceptance checks all passed, and the run reached review. */
  passed: boolean;
  rounds: number;
  turns: number;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  costUsd: number;
  wallTimeMs: number;
}

export interface CaseOptions {
  evalDir: string;
  /** Most time one case may take until review. */
  timeoutMs: number;
  progress: (line: string) => void;
}

export async function runCase(world: EvalWorld, model: string, evalCase: EvalCase, options: CaseOptions): Promise<CaseResult> {
  const started = Date.now();
  const say = (what: string) => options.progress(`${evalCase.id} on ${model}: ${what}`);
  const { runId } = await world.gateway.start({ requirement: evalCase.requirement, requester: evalCase.requester, autonomy: 'guided' });
  say(`started ${runId}, proposing`);
  try {
    const proposing = await settle(world, runId, ['awaiting_confirmation', ...SETTLED], options.timeoutMs);
    const proposed = proposing.proposal?.repos.map((r) => r.id) ?? [];
    const { precision, recall } = proposalScore(proposed, evalCase.expect);
    if (proposing.phase !== 'awaiting_confirmation') return resultOf(proposing, { proposed, precision, recall, acceptance: [] });
    say(`proposed ${proposed.join(', ') || 'nothing'}; confirming ${evalCase.expect.join(', ')}`);
    await world.gateway.send(runId, 'confirmRepos', { by: evalCase.requester, key: `eval-${runId}-confirm`, repos: evalCase.expect });
    const review = await settle(world, runId, SETTLED, options.timeoutMs, (s) => say(`${s.phase}${repoPhases(s)}`));
    const wallTimeMs = Date.now() - started;
    say(`${review.phase} after ${Math.round(wallTimeMs / 1000)} s`);
    const acceptance = review.phase === 'awaiting_review' ? await acceptanceChecks(world, review, evalCase, options) : [];
    if (acceptance.length) say(`acceptance ${acceptance.filter((a) => a.passed).length}/${acceptance.length}`);
    return resultOf(review, { proposed, precision, recall, acceptance, wallTimeMs });
  } finally {
    await world.gateway.send(runId, 'cancel', { by: evalCase.requester, key: `eval-${runId}-end` }).catch(() => undefined);
  }

  function resultOf(state: RunState, parts: { proposed: string[]; precision: number; recall: number; acceptance: AcceptanceOutcome[]; wallTimeMs?: number }): CaseResult {
    const edited = Object.values(state.repos).filter((r) => r.checks.length > 0);
    const ownPassed = edited.filter((r) => r.checks.at(-1)!.passed).length;
    const used = state.budget.used;
    return {
      case: evalCase.id,
      model,
      phase: state.phase,
      ...(state.outcome?.reason ? { reason: state.outcome.reason } : {}),
      proposed: parts.proposed,
      expected: evalCase.expect,
      precision: parts.precision,
      recall: parts.recall,
      ownChecks: { passed: ownPassed, total: edited.length },
      acceptance: parts.acceptance,
      passed: state.phase === 'awaiting_review' && edited.length > 0 && ownPassed === edited.length && parts.acceptance.every((a) => a.passed),
      rounds: state.rounds.length,
      turns: used.turns,
      inputTokens: used.inputTokens,
      cacheReadTokens: used.cacheReadTokens,
      cacheWriteTokens: used.cacheWriteTokens,
      outputTokens: used.outputTokens,
      costUsd: used.costUsd,
      wallTimeMs: parts.wallTimeMs ?? Date.now() - started,
    };
  }
}

export function proposalScore(proposed: readonly string[], expected: readonly string[]): { precision: number; recall: number } {
  const hits = proposed.filter((r) => expected.includes(r)).length;
  return { precision: proposed.length ? hits / proposed.length : 0, recall: expected.length ? hits / expected.length : 1 };
}

async function settle(world: EvalWorld, runId: string, phases: string[], timeoutMs: number, onChange?: (s: RunState) => void): Promise<RunState> {
  const deadline = Date.now() + timeoutMs;
  let seen = '';
  for (;;) {
    const state = await world.gateway.state(runId);
    const shown = `${state.phase}${repoPhases(state)}`;
    if (shown !== seen) {
      seen = shown;
      onChange?.(state);
    }
    if (phases.includes(state.phase)) return state;
    if (Date.now() > deadline) throw new Error(`${runId} did not reach ${phases.join(' or ')} within ${Math.round(timeoutMs / 1000)} s (it is ${state.phase})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function repoPhases(state: RunState): string {
  const repos = Object.entries(state.repos);
  return repos.length ? ` (${repos.map(([id, r]) => `${id}: ${r.status}`).join(', ')})` : '';
}

/** Each repository's acceptance commands on a fresh checkout of its branch, with the run's packages installed. */
async function acceptanceChecks(world: EvalWorld, state: RunState, evalCase: EvalCase, options: CaseOptions): Promise<AcceptanceOutcome[]> {
  const catalog = await loadCatalog(world.config.catalogPath, { ...process.env, FORGE_URL: world.forge.url });
  const outcomes: AcceptanceOutcome[] = [];
  for (const [repoId, checks] of Object.entries(evalCase.acceptance)) {
    const repo = catalog.repositories.find((r) => r.id === repoId)!;
    const progress = state.repos[repoId];
    const failAll = (detail: string) => checks.forEach((c) => outcomes.push({ repo: repoId, check: c.name, passed: false, detail }));
    if (!progress) {
      failAll('the run did not edit this repository');
      continue;
    }
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), `cr-eval-${repoId}-`));
    try {
      const checkout = path.join(scratch, 'checkout');
      const home = path.join(scratch, 'home');
      await fs.mkdir(home);
      const auth = `Authorization: Basic ${Buffer.from(`eval:${world.forgeToken}`).toString('base64')}`;
      await git('git', ['-c', `http.extraHeader=${auth}`, 'clone', '--quiet', '--depth', '1', '--branch', progress.branch, repo.url, checkout]);
      const env = commandEnvironment(home, { npm_config_registry: world.registry.url, EVAL_DIR: options.evalDir });
      const failedInstall = await installAll(repo.install.map((c) => c.run), checkout, env);
      if (failedInstall) {
        failAll(`install failed: ${failedInstall}`);
        continue;
      }
      const inFlight: ChangeSetPackage[] = (progress.checks.at(-1)?.against ?? []).flatMap((u) => (u.source === 'run' && u.version ? [{ repo: u.repo, name: u.name, version: u.version, round: 0, sha: '' }] : []));
      const changeSet = await installChangeSet(checkout, inFlight, { env });
      if (changeSet.result && changeSet.result.status !== 'passed') {
        failAll(`the change set did not install: ${changeSet.result.outputTail.slice(-400)}`);
        continue;
      }
      for (const check of checks) {
        const ran = await runCommand(check.run, { cwd: checkout, env, timeoutMs: check.timeoutSeconds * 1000, confinement: { readable: [options.evalDir] } });
        const passed = ran.exitCode === 0 && !ran.timedOut;
        outcomes.push({ repo: repoId, check: check.name, passed, ...(passed ? {} : { detail: ran.timedOut ? `timed out after ${check.timeoutSeconds} s` : ran.outputTail.slice(-800) }) });
      }
    } catch (error) {
      failAll(error instanceof Error ? error.message : String(error));
    } finally {
      await fs.rm(scratch, { recursive: true, force: true });
    }
  }
  return outcomes;
}

async function installAll(commands: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  for (const command of commands) {
    const ran = await runCommand(command, { cwd, env, timeoutMs: 10 * 60_000 });
    if (ran.exitCode !== 0) return `${command}: ${ran.outputTail.slice(-400)}`;
  }
  return null;
}
