// `run_command`: the agent may run the commands the catalog lists for this repository (its install and
// check commands), by name, and nothing else. Same runner as the checks: process group killed on timeout
// or cancel, working directory inside the checkout, an environment without the service's secrets.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { CatalogCommand } from '../../../domain/catalog-schema';
import type { CheckResult } from '../../../domain/contracts';
import { runCommand } from '../../commands';
import type { Confinement } from '../../sandbox';
import { defineTool, type Tool } from './registry';

export interface RunCommandOptions {
  allowed: readonly CatalogCommand[];
  /** The command's environment for a given home folder (no secrets). */
  env: (home: string) => NodeJS.ProcessEnv;
  onOutput: () => void;
  /** What the commands may reach besides loopback; never an install's credentials. */
  confinement?: Confinement;
  /** Names among `allowed` that install dependencies: `afterInstall` runs after each succeeds. */
  installNames?: readonly string[];
  /** E.g. installing the run's in-flight packages over the released ones; its output is appended. */
  afterInstall?: (env: NodeJS.ProcessEnv, signal?: AbortSignal) => Promise<CheckResult | null>;
}

export function runCommandTool(checkout: string, options: RunCommandOptions): Tool<any, any> {
  const { allowed } = options;
  const names = allowed.map((c) => c.name);
  return defineTool({
    name: 'run_command',
    description:
      `Run one of this repository's catalog commands in the checkout and see its exit code and output. ` +
      `Allowed: ${allowed.map((c) => `${c.name} (\`${c.run}\`)`).join(', ') || 'none'}. No other command can be run.`,
    input: z.object({ name: z.string().describe(`one of: ${names.join(', ')}`) }),
    run: async ({ name }, signal) => {
      const command = allowed.find((c) => c.name === name);
      if (!command) {
        return { isError: true, text: `"${name}" is not a command this repository allows. Allowed: ${names.join(', ') || 'none'}.` };
      }
      const home = path.join(path.dirname(checkout), '.home');
      await fs.mkdir(home, { recursive: true });
      const env = options.env(home);
      const result = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env, signal, onOutput: options.onOutput, confinement: options.confinement });
      const status = result.timedOut ? `killed after ${command.timeoutSeconds}s (timeout)` : `exit code ${result.exitCode}`;
      let text = `${command.name} (\`${command.run}\`): ${status} in ${(result.durationMs / 1000).toFixed(1)}s\n${result.outputTail.slice(-8000)}`;
      let failed = result.exitCode !== 0;
      if (!failed && options.afterInstall && options.installNames?.includes(command.name)) {
        const extra = await options.afterInstall(env, signal);
        if (extra) {
          text += `\n\nThen the change set (\`${extra.command}\`): ${extra.status}, exit code ${extra.exitCode}\n${extra.outputTail.slice(-4000)}`;
          failed = extra.status !== 'passed';
        }
      }
      return { isError: failed, text };
    },
  });
}
