// A Temporal dev server as `npm start` and `npm run eval` run it: this project's search attributes
// registered, persisted to SQLite when a file is given (in memory otherwise), and a connection that waits
// for it to come up.
import { spawn, type ChildProcess } from 'node:child_process';
import { TypedSearchAttributes } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';

/** `uiPort` null: no Web UI (headless); `dbFile` null: in memory. */
export function startDevServer(cli: string, ip: string, port: number, uiPort: number | null, dbFile: string | null, stderr: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), ...(uiPort === null ? ['--headless'] : ['--ui-port', String(uiPort)]), ...(dbFile ? ['--db-filename', dbFile] : []), '--log-level', 'warn'];
  for (const key of ALL_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`);
  const child = spawn(cli, args, { stdio: ['ignore', 'ignore', stderr] });
  return child;
}

export async function connectWithRetry(address: string): Promise<NativeConnection> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await NativeConnection.connect({ address });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the Temporal dev server did not come up at ${address}: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

