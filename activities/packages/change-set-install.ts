// Installs a run's in-flight packages over a checkout's own install, in the workspace only: the repository's
// package.json and lock file stay as they are, so nothing of the change set can reach a commit.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import type { ChangeSetPackage, CheckResult } from '../../domain/contracts';
import { runCommand } from '../commands';
import type { Confinement } from '../sandbox';
import { readPackument, RegistryUnavailableError } from './npm';

export interface ChangeSetInstallContext {
  /** The repository commands' environment; carries npm_config_registry (and never the registry token). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onOutput?: () => void;
  timeoutMs?: number;
  /** What the install may reach besides loopback (repositoryConfinement). */
  confinement?: Confinement;
}

export interface ChangeSetInstall {
  /** Null when there was nothing to install (no packages, or none the checkout depends on). */
  result: CheckResult | null;
  /** Per requested package: the version found in node_modules afterwards (null: not installed). */
  installed: Record<string, string | null>;
}

const DEPENDENCY_SECTIONS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;
const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_TAIL_CHARS = 4000;
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

export async function installChangeSet(checkout: string, packages: readonly ChangeSetPackage[], context: ChangeSetInstallContext): Promise<ChangeSetInstall> {
  const listed = await packagesListedBy(checkout);
  const wanted = packages.filter((p) => listed.has(p.name));
  if (wanted.length === 0) return { result: null, installed: await installedVersions(checkout, packages) };

  const specs = wanted.map((p) => specOf(p));
  // Exact versions, no save, no lock: the install changes node_modules and nothing the repository tracks.
  const command = ['npm install --no-save --no-package-lock --no-audit --no-fund --no-update-notifier --loglevel=error', ...specs.map(shellQuote)].join(' ');
  const ran = await runCommand(command, { cwd: checkout, env: context.env, timeoutMs: context.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: context.signal, onOutput: context.onOutput, confinement: context.confinement });
  context.signal?.throwIfAborted();
  const installed = await installedVersions(checkout, packages);
  const status: CheckResult['status'] = ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'passed' : 'failed';
  let explanation = '';
  if (status === 'timed_out') explanation = `[killed after ${Math.round((context.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)}s] installing the change set (${specs.join(', ')}) took too long.`;
  else if (status === 'failed') explanation = await explainFailure(wanted, context.env.npm_config_registry);
  else {
    const wrong = wanted.filter((p) => installed[p.name] !== p.version);
    if (wrong.length > 0) {
      // npm succeeded, yet something else sits in node_modules (e.g. an override in package.json): say so.
      return {
        installed,
        result: resultOf(command, 'failed', ran.exitCode, ran.durationMs, wrong.map((p) => `${p.name}@${p.version} was asked for, but node_modules has ${installed[p.name] ?? 'nothing'}.`).join('\n'), ran.outputTail),
      };
    }
  }
  return { installed, result: resultOf(command, status, ran.exitCode, ran.durationMs, explanation, ran.outputTail) };
}

/** Every package name the checkout's package.json depends on, in any section. */
export async function packagesListedBy(checkout: string): Promise<Set<string>> {
  const text = await fs.readFile(path.join(checkout, 'package.json'), 'utf8').catch(() => null);
  if (text === null) return new Set();
  const manifest = JSON.parse(text) as Partial<Record<(typeof DEPENDENCY_SECTIONS)[number], Record<string, string>>>;
  return new Set(DEPENDENCY_SECTIONS.flatMap((section) => Object.keys(manifest[section] ?? {})));
}

/** The version of each package found at node_modules/<name> (null when it is not there). */
export async function installedVersions(checkout: string, packages: readonly Pick<ChangeSetPackage, 'name'>[]): Promise<Record<string, string | null>> {
  const installed: Record<string, string | null> = {};
  for (const { name } of packages) {
    const manifest = await fs.readFile(path.join(checkout, 'node_modules', name, 'package.json'), 'utf8').catch(() => null);
    installed[name] = manifest === null ? null : ((JSON.parse(manifest) as { version?: string }).version ?? null);
  }
  return installed;
}

function specOf(p: ChangeSetPackage): string {
  // The spec goes through a shell: only what npm itself accepts as a name and an exact version gets there.
  if (!PACKAGE_NAME.test(p.name)) throw new Error(`change set package name ${JSON.stringify(p.name)} is not an npm package name`);
  if (!semver.valid(p.version)) throw new Error(`change set version ${JSON.stringify(p.version)} of ${p.name} is not an exact version`);
  return `${p.name}@${p.version}`;
}

/** A plain first line saying which package and version could not be installed, and why when the registry can tell. */
async function explainFailure(wanted: readonly ChangeSetPackage[], registryUrl: string | undefined): Promise<string> {
  const lines: string[] = [];
  for (const p of wanted) {
    if (!registryUrl) {
      lines.push(`Could not install ${p.name}@${p.version} (${p.repo} round ${p.round}); no registry is configured for the install.`);
      continue;
    }
    try {
      const packument = await readPackument({ url: registryUrl }, p.name);
      if (!packument) lines.push(`Could not install ${p.name}@${p.version} (${p.repo} round ${p.round}): the registry ${registryUrl} has no package ${p.name}.`);
      else if (!packument.versions[p.version]) {
        const known = Object.keys(packument.versions).slice(-5).join(', ');
        lines.push(`Could not install ${p.name}@${p.version} (${p.repo} round ${p.round}): the registry ${registryUrl} has no version ${p.version} of ${p.name} (it has ${known || 'none'}).`);
      }
    } catch (error) {
      const why = error instanceof RegistryUnavailableError ? 'the registry cannot be reached' : error instanceof Error ? error.message : String(error);
      lines.push(`Could not install ${p.name}@${p.version} (${p.repo} round ${p.round}): ${why}.`);
    }
  }
  if (lines.length === 0) lines.push(`Could not install the change set ${wanted.map((p) => `${p.name}@${p.version}`).join(', ')}: npm failed (its output follows).`);
  return lines.join('\n');
}

/** The explanation comes first and is always kept; npm's output fills the rest of the tail from its end. */
function resultOf(command: string, status: CheckResult['status'], exitCode: number | null, durationMs: number, explanation: string, npmOutput: string): CheckResult {
  const head = explanation ? `${explanation.slice(0, OUTPUT_TAIL_CHARS / 2)}\n` : '';
  const room = OUTPUT_TAIL_CHARS - head.length;
  const output = npmOutput.length > room ? `…${npmOutput.slice(-(room - 1))}` : npmOutput;
  return { name: 'change set', command, kind: 'install', status, exitCode, durationMs, outputTail: head + output };
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
