// Process groups of service previews: signalling a whole group, telling whether anything of it still runs,
// and recognising a group recorded by an earlier server (pids are reused; a process's start time is not).
import { promises as fs } from 'node:fs';

/** After SIGKILL a group is gone within milliseconds; this only bounds a wait that should never be long. */
export const AFTER_KILL_WAIT_MS = 3_000;

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * True while a process of the group is alive. kill(-pgid, 0) alone also counts zombies: children the
 * shell started are orphaned when it dies and wait for PID 1 to reap them, which takes a while on some
 * systems and never happens in a container without an init. A zombie runs nothing and holds no port, so
 * where /proc tells them apart, a group of zombies counts as ended.
 */
export async function isProcessGroupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const pids = await fs.readdir('/proc').catch(() => null);
  if (pids === null) return true;
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // After the parenthesised command name: state, ppid, pgrp, …
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (group === String(pgid) && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

export async function waitForGroupToEnd(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (await isProcessGroupAlive(pid)) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  return true;
}

/** Field 22 of /proc/<pid>/stat (null where there is no /proc, or no such process). */
export async function processStartTicks(pid: number): Promise<string | null> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

/**
 * Kills what a server that died without closing left running. The group is ours when its leader is the
 * very process recorded (same start time), or when the leader is gone but the group lives on (a group id
 * is not handed out again while the group exists). Without /proc a live leader cannot be told from a
 * stranger with a reused pid, so it is left alone.
 */
export async function killRecordedGroup(pid: number | null, startTicks: string | null, graceMs: number): Promise<void> {
  if (pid === null || !(await isProcessGroupAlive(pid))) return;
  if (!(await fs.stat('/proc/self').then(() => true, () => false))) return;
  const leader = await processStartTicks(pid);
  const leaderAlive = await fs.stat(`/proc/${pid}`).then(() => true, () => false);
  if (leaderAlive && (leader === null || leader !== startTicks)) return;
  signalGroup(pid, 'SIGTERM');
  if (!(await waitForGroupToEnd(pid, graceMs))) {
    signalGroup(pid, 'SIGKILL');
    await waitForGroupToEnd(pid, AFTER_KILL_WAIT_MS);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
