// Repository code is untrusted: every command it runs (installs, checks, builds, previews, the agent's
// run_command) goes through bubblewrap. Inside:
//  - its own PID namespace: nothing of the worker is visible (no /proc/<worker>/environ), and when the
//    command ends every process it started ends with it, setsid or not;
//  - a mount view of the system read-only (/usr and the few /etc files programs need), the command's
//    checkout and caches writable, a private /tmp, and nothing else: the data folder, the forge's
//    repositories, the Temporal database, the service's home and other workspaces are absent;
//  - its own network namespace with loopback only. The addresses the command is meant to reach (the
//    registry and previews its environment names, e.g. npm_config_registry) are forwarded one port each
//    through a Unix socket to the real address; the hosts the catalog allows (allowHosts) are reached
//    through an allow-listing HTTP proxy (egress-proxy.ts) relayed the same way; nothing else is reachable;
//  - user 1000 in a user namespace, all capabilities dropped, and only the environment it was given;
//    outside the namespace an unprivileged user too: when the worker runs as root, bwrap itself is started
//    as REPO_SANDBOX_UID (default 64000) through setpriv, and the folders the command may write are handed
//    to that user first, so even a process that left its namespaces would be nobody on the machine.
// Where bubblewrap is missing or cannot create namespaces, REPO_SANDBOX decides: `required` (the default
// when it works) refuses to run, `off` runs unconfined and every check result says so.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { splice } from './sandbox-forwarder';
import { createEgressProxy, proxyEnvironment } from './egress-proxy';

export type SandboxMode = 'bwrap' | 'off';

export interface Confinement {
  /** Folders the command may write besides its working directory (its HOME and caches come from the env). */
  writable?: string[];
  /** Folders it may read (nothing else of the machine outside the system is visible), e.g. eval cases. */
  readable?: string[];
  /** `loopback`: only the forwarded addresses; `host`: the machine's network (a catalog's own deploy commands). */
  network?: 'loopback' | 'host';
  /** Hosts reachable through the egress proxy (see egress-proxy.ts), e.g. a registry; loopback network only. */
  allowHosts?: readonly string[];
  /** Loopback ports to relay besides those the environment names (e.g. a registry named in an .npmrc). */
  loopbackPorts?: readonly number[];
  /** Runtimes (a Node.js the repository asks for), readable by everyone, bound read-only as they are. */
  runtimes?: readonly string[];
}

/** `base` with what `more` adds: more to read, more hosts and ports to reach. */
export function widened(base: Confinement, more: Pick<Confinement, 'readable' | 'allowHosts' | 'loopbackPorts'>): Confinement {
  return {
    ...base,
    readable: [...(base.readable ?? []), ...(more.readable ?? [])],
    allowHosts: [...(base.allowHosts ?? []), ...(more.allowHosts ?? [])],
    loopbackPorts: [...(base.loopbackPorts ?? []), ...(more.loopbackPorts ?? [])],
  };
}

interface SandboxState {
  mode: SandboxMode;
  /** Why there is no sandbox, when there is none. */
  reason: string | null;
}

let state: SandboxState | null = null;

/** Chosen once per process: REPO_SANDBOX=off runs unconfined on purpose; otherwise bubblewrap must work. */
export function sandboxState(env: NodeJS.ProcessEnv = process.env): SandboxState {
  if (state) return state;
  if (env.REPO_SANDBOX === 'off') return (state = { mode: 'off', reason: 'REPO_SANDBOX=off' });
  const problem = bwrapProblem();
  if (problem) {
    throw new Error(`Repository commands cannot be confined: ${problem}. Install bubblewrap (Debian: apt-get install bubblewrap) on a kernel with user namespaces, or set REPO_SANDBOX=off to run repository code unconfined (every check result then says so).`);
  }
  return (state = { mode: 'bwrap', reason: null });
}

/** The unprivileged user bwrap runs as when the worker is root; null when the worker is not root. */
export function sandboxOwner(env: NodeJS.ProcessEnv = process.env): number | null {
  if (process.getuid?.() !== 0) return null;
  const uid = Number(env.REPO_SANDBOX_UID ?? DEFAULT_SANDBOX_UID);
  if (!Number.isInteger(uid) || uid <= 0 || uid > 4_294_967_294) throw new Error(`REPO_SANDBOX_UID must be a user id other than root, not "${env.REPO_SANDBOX_UID}"`);
  return uid;
}

const DEFAULT_SANDBOX_UID = 64000;
const execFileAsync = promisify(execFile);

/** `setpriv … bwrap` when the worker is root (bwrap then runs as the sandbox's owner), plain bwrap otherwise. */
function bwrapAs(owner: number | null, args: string[]): { file: string; args: string[] } {
  if (owner === null) return { file: 'bwrap', args };
  return { file: 'setpriv', args: [`--reuid=${owner}`, `--regid=${owner}`, '--clear-groups', '--', 'bwrap', ...args] };
}

function bwrapProblem(): string | null {
  try {
    const probe = bwrapAs(sandboxOwner(), ['--unshare-all', '--unshare-user', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', 'true']);
    execFileSync(probe.file, probe.args, { stdio: 'pipe', timeout: 10_000 });
    return null;
  } catch (error) {
    const text = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim();
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'bwrap (or setpriv, to run it unprivileged) is not installed' : `bwrap fails here (${text.split('\n')[0]})`;
  }
}

/** /etc files programs need (names, certificates, time zone); the rest of /etc stays out. */
const ETC = ['passwd', 'group', 'hosts', 'resolv.conf', 'nsswitch.conf', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'alternatives', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'mime.types', 'gitconfig'];
const ENV_FOLDERS = ['HOME', 'npm_config_cache', 'YARN_CACHE_FOLDER', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME'];
const FORWARDER = path.join(__dirname, 'sandbox-forwarder.js');

export interface SandboxedSpawn {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Ends the forwarding behind the command. */
  release(): Promise<void>;
}

/** How to spawn `sh -c command` confined; unconfined (as given) when the mode is off. */
export async function confine(command: string, cwd: string, env: NodeJS.ProcessEnv, confinement: Confinement = {}): Promise<SandboxedSpawn> {
  if (sandboxState().mode === 'off') return { file: 'sh', args: ['-c', command], env, release: async () => undefined };
  const writable = unique([cwd, ...ENV_FOLDERS.flatMap((name) => (env[name] && path.isAbsolute(env[name]!) ? [env[name]!] : [])), ...(confinement.writable ?? [])]);
  await Promise.all(writable.map((dir) => fs.mkdir(dir, { recursive: true })));
  const owner = sandboxOwner();
  if (owner !== null) await handOver(writable, owner);
  const readable = await readableBy(owner, confinement.readable ?? []);
  const args = ['--unshare-all', '--unshare-user', '--uid', '1000', '--gid', '1000', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
  if (confinement.network === 'host') args.push('--share-net');
  args.push('--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/sbin', '/sbin', '--symlink', 'usr/lib', '/lib');
  if (existsSync('/usr/lib64')) args.push('--symlink', 'usr/lib64', '/lib64');
  for (const name of ETC) if (existsSync(`/etc/${name}`)) args.push('--ro-bind', `/etc/${name}`, `/etc/${name}`);
  // Node (and npm beside it) when it is installed outside /usr, e.g. by nvm.
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  if (!process.execPath.startsWith('/usr/')) args.push('--ro-bind', nodePrefix, nodePrefix);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  for (const { from, at } of readable.binds) args.push('--ro-bind', from, at);
  if (confinement.runtimes?.length) {
    if (owner !== null) await makeReachable(confinement.runtimes);
    for (const dir of confinement.runtimes) args.push('--ro-bind', dir, dir);
  }
  for (const dir of writable) args.push('--bind', dir, dir);
  args.push('--chdir', cwd, '--clearenv');
  const ports = confinement.network === 'host' ? [] : [...new Set([...loopbackPortsIn(env), ...(confinement.loopbackPorts ?? [])])];
  // The egress proxy gets a loopback port of its own inside (any free one: the namespace is the command's).
  const proxyPort = confinement.network !== 'host' && (confinement.allowHosts?.length ?? 0) > 0 ? unusedPort(ports) : null;
  const inside: NodeJS.ProcessEnv = { ...env, TMPDIR: '/tmp', ...(proxyPort ? proxyEnvironment(`http://127.0.0.1:${proxyPort}`) : {}) };
  for (const [name, value] of Object.entries(inside)) if (value !== undefined) args.push('--setenv', name, value);

  // The root of the view (the folders leading to the binds) is read-only; only the binds and /tmp take writes.
  if (ports.length === 0 && proxyPort === null) return { ...bwrapAs(owner, [...args, '--remount-ro', '/', 'sh', '-c', command]), env: {}, release: readable.release };
  // Each allowed port gets a socket outside; the forwarder inside listens on the same loopback port.
  const relay = await relayPorts(ports, proxyPort === null ? null : { port: proxyPort, allowHosts: confinement.allowHosts ?? [] });
  ports.push(...(proxyPort === null ? [] : [proxyPort]));
  args.push('--ro-bind', FORWARDER, '/run/sandbox/forwarder.js', '--bind', relay.dir, '/run/sandbox/ports');
  if (owner !== null) await handOver([relay.dir], owner);
  const release = async () => (await relay.close(), await readable.release());
  return { ...bwrapAs(owner, [...args, '--remount-ro', '/', process.execPath, '/run/sandbox/forwarder.js', ports.join(','), command]), env: {}, release };
}

/** The loopback ports the command's environment points at (npm_config_registry, preview URLs, …). */
export function loopbackPortsIn(env: NodeJS.ProcessEnv): number[] {
  const ports = new Set<number>();
  for (const value of Object.values(env)) {
    for (const match of String(value ?? '').matchAll(/\bhttps?:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):(\d{2,5})\b/g)) ports.add(Number(match[1]));
  }
  return [...ports].sort((a, b) => a - b);
}

function unusedPort(taken: readonly number[]): number {
  let port = 3128;
  while (taken.includes(port)) port++;
  return port;
}

async function relayPorts(ports: number[], proxy: { port: number; allowHosts: readonly string[] } | null): Promise<{ dir: string; close(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-sandbox-'));
  const listen = (server: net.Server, port: number) =>
    new Promise<net.Server>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path.join(dir, String(port)), () => resolve(server));
    });
  const servers = await Promise.all([
    ...ports.map((port) => listen(net.createServer((inside) => splice(inside, net.connect({ host: '127.0.0.1', port }))), port)),
    ...(proxy ? [listen(createEgressProxy(proxy.allowHosts), proxy.port)] : []),
  ]);
  return {
    dir,
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              if (s instanceof http.Server) s.closeAllConnections(); // keep-alive proxy connections
            }),
        ),
      );
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

function unique(paths: string[]): string[] {
  return [...new Set(paths.map((p) => path.resolve(p)))];
}

/**
 * Gives the folders (and everything in them) to the sandbox's owner: the worker writes checkouts, restored
 * installs and tool edits as root between commands, and the command must be able to change them.
 */
async function handOver(folders: readonly string[], owner: number): Promise<void> {
  await execFileAsync('chown', ['-R', '--', `${owner}:${owner}`, ...folders]);
  await makeReachable(folders);
}

/**
 * bwrap, running as the sandbox's owner, must pass through every folder above what it binds. Private
 * folders on the way (mkdtemp makes 0700 ones) get the execute bit for others: passing through, not listing.
 */
async function makeReachable(paths: readonly string[]): Promise<void> {
  const parents = new Set<string>();
  for (const item of paths) for (let dir = path.dirname(path.resolve(item)); dir !== path.dirname(dir); dir = path.dirname(dir)) parents.add(dir);
  for (const dir of parents) {
    const { mode } = await fs.stat(dir);
    if ((mode & 0o001) === 0) await fs.chmod(dir, (mode & 0o7777) | 0o001);
  }
}

/**
 * What the command may read, bound at its own path. When bwrap runs as the sandbox's owner, folders it
 * cannot read (they belong to the worker) are copied for the command and handed over; the copy goes with it.
 */
async function readableBy(owner: number | null, folders: readonly string[]): Promise<{ binds: { from: string; at: string }[]; release(): Promise<void> }> {
  const at = folders.map((dir) => path.resolve(dir));
  if (owner === null || at.length === 0) return { binds: at.map((dir) => ({ from: dir, at: dir })), release: async () => undefined };
  const copies = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-sandbox-readable-'));
  const binds = await Promise.all(
    at.map(async (dir, index) => {
      const copy = path.join(copies, String(index));
      await fs.cp(dir, copy, { recursive: true, verbatimSymlinks: true });
      return { from: copy, at: dir };
    }),
  );
  await handOver([copies], owner);
  return { binds, release: () => fs.rm(copies, { recursive: true, force: true }) };
}
