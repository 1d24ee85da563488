// `run_command`: the agent may run the commands the catalog lists for this repository (its install and
// check commands), by name, and nothing else. Same runner as the checks: process group killed on timeout
// or cancel, working directory inside the checkout, an environment without the service's secrets.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { CatalogCommand } from '../../../shared/catalog-schema';
import { commandEnvironment, runCommand } from '../../commands';
import { defineTool, type Tool } from './registry';

export function runCommandTool(checkout: string, allowed: readonly CatalogCommand[], onOutput: () => void, extraEnv: Record<string, string> = {}): Tool<any, any> {
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
      const result = await runCommand(command.run, { cwd: checkout, timeoutMs: command.timeoutSeconds * 1000, env: commandEnvironment(home, extraEnv), signal, onOutput });
      const status = result.timedOut ? `killed after ${command.timeoutSeconds}s (timeout)` : `exit code ${result.exitCode}`;
      return { isError: result.exitCode !== 0, text: `${command.name} (\`${command.run}\`): ${status} in ${(result.durationMs / 1000).toFixed(1)}s\n${result.outputTail.slice(-8000)}` };
    },
  });
}
