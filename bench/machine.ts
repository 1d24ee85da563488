// The machine a benchmark ran on, for the results file and docs/benchmarks.md.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';

export interface MachineDescription {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  temporalCli: string;
  date: string;
}

export async function describeMachine(temporalCli: string): Promise<MachineDescription> {
  const cpuinfo = await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const release = await fs.readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(release)?.[1] ?? `${os.type()}`;
  const temporal = await promisify(execFile)(temporalCli, ['--version'], { timeout: 30_000 })
    .then(({ stdout }) => stdout.trim())
    .catch((error: unknown) => `unknown (${error instanceof Error ? error.message : String(error)})`);
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${pretty}, Linux ${os.release()} ${os.arch()}`,
    node: process.version,
    temporalCli: temporal,
    date: new Date().toISOString(),
  };
}

export function renderMachine(machine: MachineDescription): string {
  return [
    '| | |',
    '|---|---|',
    `| CPU | ${machine.cpu} |`,
    `| cores | ${machine.cores} |`,
    `| memory | ${machine.memoryGiB} GiB |`,
    `| OS | ${machine.os} |`,
    `| Node | ${machine.node} |`,
    `| Temporal CLI | ${machine.temporalCli} |`,
    `| measured | ${machine.date} |`,
  ].join('\n');
}
