// A per-worker cache of checkouts, one per remote repository, so an activity that needs a workspace at a
// given commit copies a local checkout and fetches only what changed, instead of cloning again.
//
// An entry is a shallow isomorphic-git clone with its work tree, and a manifest written last. The cache
// is only ever a speed-up: before every use the entry is verified (manifest, HEAD, every pack's SHA-1
// trailer, a work tree whose files match the index by their stats) and any doubt rebuilds it from the remote. Commits are addressed by SHA,
// so a verified entry holding the requested commit cannot be stale; one lacking it fetches it.
// Entries are locked per remote (in process, and across processes sharing the folder), so concurrent
// activities on one repository wait for each other while other repositories proceed.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import lockfile from 'proper-lockfile';
import { z } from 'zod';
import { firstChangedFile } from './index-stats';
import { ensureCommit, gitAuth, type Remote } from './repository';

const execFileAsync = promisify(execFile);

const MANIFEST_VERSION = 1;
const ManifestSchema = z.object({ version: z.literal(MANIFEST_VERSION), url: z.string(), head: z.string().regex(/^[0-9a-f]{40}$/) });
type Manifest = z.infer<typeof ManifestSchema>;

export interface CheckoutRequest {
  remote: Remote;
  /** The branch the commit is on; the workspace gets a local branch of this name at `sha`. */
  branch: string;
  sha: string;
  /** History wanted below `sha` when it has to be fetched (the edit activity reads recent commits). */
  depth: number;
  /** Where the workspace goes; must not exist yet (or be empty). */
  dir: string;
}

export interface CheckoutReport {
  /**
   * cold: cloned (no entry); warm: from the entry; rebuilt: the entry was unusable and was cloned again;
   * bypassed: the entry was busy with another activity of this worker, so the workspace was cloned directly.
   */
  entry: 'cold' | 'warm' | 'rebuilt' | 'bypassed';
  /** What was wrong with the entry, when it was rebuilt. */
  rebuiltBecause?: string;
  /** Whether the remote was contacted. */
  fetched: boolean;
}

export class CloneCache {
  private readonly inProcess = new Map<string, Promise<unknown>>();

  constructor(readonly root: string) {}

  /** Puts a work tree of `sha` (on local branch `branch`) in `dir`, from the cache where it can. */
  async checkout(request: CheckoutRequest): Promise<CheckoutReport> {
    const key = cacheKey(request.remote.url);
    // One entry serves one checkout at a time. When many activities of this worker want the same
    // repository at once, waiting in line would cost more than cloning: the others clone directly.
    if (this.inProcess.has(key)) {
      await cloneDirectly(request);
      return { entry: 'bypassed', fetched: true };
    }
    return this.exclusively(key, async () => {
      const entry = path.join(this.root, key);
      const problem = await verifyEntry(entry, request.remote.url);
      let report: CheckoutReport;
      if (problem === 'missing') {
        report = { entry: 'cold', fetched: true };
        await cloneEntry(entry, request);
      } else if (problem) {
        report = { entry: 'rebuilt', rebuiltBecause: problem, fetched: true };
        await fs.rm(entry, { recursive: true, force: true });
        await cloneEntry(entry, request);
      } else {
        report = { entry: 'warm', fetched: await updateEntry(entry, request) };
      }
      await copyTree(entry, request.dir);
      await checkOutBranch(request.dir, request.branch, request.sha);
      return report;
    });
  }

  /**
   * Takes commits made and pushed from a workspace this cache prepared into the entry, so the next
   * activity (checks, previews) finds them without fetching. Skipped whenever the workspace's history
   * boundary differs from the entry's (it fetched on its own): objects are only added when the entry
   * already holds everything below them.
   */
  async adoptPushed(remote: Remote, workspace: string, branch: string, sha: string): Promise<boolean> {
    const key = cacheKey(remote.url);
    return this.exclusively(key, async () => {
      const entry = path.join(this.root, key);
      // Adding objects cannot harm an entry, so a full verification is left to the next checkout.
      const manifest = await readManifest(entry);
      if (typeof manifest === 'string' || manifest.url !== remote.url) return false;
      const [ours, theirs] = await Promise.all([readShallow(entry), readShallow(workspace)]);
      if (ours !== theirs) return false;
      await addMissingObjects(path.join(workspace, '.git', 'objects'), path.join(entry, '.git', 'objects'));
      await git.writeRef({ fs, dir: entry, ref: `refs/remotes/origin/${branch}`, value: sha, force: true });
      return true;
    });
  }

  /** One operation per entry at a time: first among this process's callers, then across processes. */
  private async exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.inProcess.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(async () => {
      await fs.mkdir(this.root, { recursive: true });
      const release = await lockfile.lock(path.join(this.root, key), {
        lockfilePath: path.join(this.root, `${key}.lock`),
        realpath: false,
        // A worker killed while holding the lock stops refreshing it; after this long it is taken over.
        stale: 15_000,
        retries: { retries: 600, minTimeout: 25, maxTimeout: 250 },
      });
      try {
        return await work();
      } finally {
        await release().catch(() => undefined);
      }
    });
    this.inProcess.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.inProcess.get(key) === mine) this.inProcess.delete(key);
    }
  }
}

/** Links (or copies) object files the entry lacks; the ones it has are the same files already. */
async function addMissingObjects(from: string, to: string): Promise<void> {
  for (const item of await fs.readdir(from, { recursive: true, withFileTypes: true })) {
    if (!item.isFile()) continue;
    const relative = path.relative(from, path.join(item.parentPath, item.name));
    const target = path.join(to, relative);
    if (await fs.stat(target).then(() => true, () => false)) continue;
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.link(path.join(from, relative), target).catch(() => fs.copyFile(path.join(from, relative), target));
  }
}

/** One entry per remote URL; credentials are never part of the URL, so never part of the key. */
function cacheKey(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 24);
}

/** A shallow clone straight into the workspace, as if there were no cache. */
async function cloneDirectly(request: CheckoutRequest): Promise<void> {
  const { remote, dir, branch, sha } = request;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await git.clone({ fs, http, dir, url: remote.url, ref: branch, singleBranch: true, depth: request.depth, noTags: true, noCheckout: true, onAuth: gitAuth(remote) });
  if (!(await ensureCommit(remote, dir, branch, sha))) throw new Error(`commit ${sha} is not on ${branch} of ${remote.url}`);
  await git.checkout({ fs, dir, ref: sha, force: true });
  await checkOutBranch(dir, branch, sha);
}

async function cloneEntry(entry: string, request: CheckoutRequest): Promise<void> {
  await fs.mkdir(entry, { recursive: true });
  await git.clone({ fs, http, dir: entry, url: request.remote.url, ref: request.branch, singleBranch: true, depth: request.depth, noTags: true, noCheckout: true, onAuth: gitAuth(request.remote) });
  await moveTo(entry, request);
}

/** Brings a verified entry to `sha`; true when it had to ask the remote. */
async function updateEntry(entry: string, request: CheckoutRequest): Promise<boolean> {
  let fetched = false;
  if (!(await hasCommit(entry, request.sha))) {
    fetched = true;
    // Knowing the branch's previous tip, the server sends only what is new since; a branch new to the
    // entry is fetched shallow, so an unrelated history can never turn into a download of everything.
    const known = await git.resolveRef({ fs, dir: entry, ref: `refs/remotes/origin/${request.branch}` }).catch(() => null);
    await git.fetch({ fs, http, dir: entry, url: request.remote.url, remote: 'origin', ref: request.branch, singleBranch: true, tags: false, ...(known ? {} : { depth: request.depth }), onAuth: gitAuth(request.remote) });
  }
  await moveTo(entry, request);
  return fetched;
}

/** Makes the entry's work tree and HEAD show `sha`, rewriting only the files that differ. */
async function moveTo(entry: string, request: CheckoutRequest): Promise<void> {
  // Fetching only adds objects (an unfinished pack fails its checksum), so the entry stays valid until
  // its work tree is touched.
  if (!(await ensureCommit(request.remote, entry, request.branch, request.sha))) {
    throw new Error(`commit ${request.sha} is not on ${request.branch} of ${request.remote.url}`);
  }
  await unwriteManifest(entry);
  const current = await git.resolveRef({ fs, dir: entry, ref: 'HEAD' }).catch(() => null);
  if (current === request.sha && (await readManifest(entry)) !== 'missing') return;
  const hasWorkTree = current !== null && (await fs.stat(path.join(entry, '.git', 'index')).then(() => true, () => false));
  if (!hasWorkTree) {
    await git.checkout({ fs, dir: entry, ref: request.sha, force: true });
  } else if (current !== request.sha) {
    const filepaths = await differingPaths(entry, current, request.sha);
    if (filepaths.length > 0) await git.checkout({ fs, dir: entry, ref: request.sha, filepaths, force: true });
    await git.writeRef({ fs, dir: entry, ref: 'HEAD', value: request.sha, force: true });
  }
  await writeManifest(entry, { version: MANIFEST_VERSION, url: request.remote.url, head: request.sha });
}

/**
 * Points a local branch at `sha` and HEAD at the branch, in a workspace just copied from the entry. Loose
 * ref files, as git writes them (a loose ref wins over packed-refs); isomorphic-git's branch() reads the
 * whole ref store first, which costs more than the rest of a warm checkout.
 */
async function checkOutBranch(dir: string, branch: string, sha: string): Promise<void> {
  // The name becomes a path: only what git itself accepts, and nothing that could leave refs/heads.
  const invalid = branch.split('/').some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock')) || /\.\.|[\x00-\x20~^:?*[\\]|@\{/.test(branch);
  if (invalid) throw new Error(`not a valid branch name: ${branch}`);
  const refFile = path.join(dir, '.git', 'refs', 'heads', ...branch.split('/'));
  await fs.mkdir(path.dirname(refFile), { recursive: true });
  await fs.writeFile(refFile, `${sha}\n`);
  await fs.writeFile(path.join(dir, '.git', 'HEAD'), `ref: refs/heads/${branch}\n`);
}

/** Paths whose blobs differ between two commits; subtrees with equal ids are skipped without reading them. */
async function differingPaths(dir: string, from: string, to: string): Promise<string[]> {
  const paths = await git.walk({
    fs,
    dir,
    trees: [git.TREE({ ref: from }), git.TREE({ ref: to })],
    map: async (filepath, [a, b]) => {
      if (filepath === '.') return undefined;
      const [aOid, bOid] = await Promise.all([a?.oid(), b?.oid()]);
      if (aOid === bOid && (await a?.mode()) === (await b?.mode())) return null;
      const [aType, bType] = await Promise.all([a?.type(), b?.type()]);
      if (aType === 'tree' && bType === 'tree') return undefined;
      return filepath;
    },
  });
  return paths as string[];
}

/** Why an entry cannot be used ('missing' when there is none), or null when it can. */
export async function verifyEntry(entry: string, url: string): Promise<string | null> {
  const manifest = await readManifest(entry);
  if (manifest === 'missing') return (await fs.stat(entry).then(() => true, () => false)) ? 'it has no manifest (an earlier update did not finish)' : 'missing';
  if (manifest === 'invalid') return 'its manifest is unreadable';
  if (manifest.url !== url) return `it belongs to ${manifest.url}`;
  const head = await git.resolveRef({ fs, dir: entry, ref: 'HEAD' }).catch(() => null);
  if (head !== manifest.head) return `HEAD is ${head ?? 'unreadable'}, the manifest says ${manifest.head}`;
  const packProblem = await damagedPack(path.join(entry, '.git', 'objects', 'pack'));
  if (packProblem) return packProblem;
  const dirty = await firstChangedFile(entry);
  if (dirty) return `its work tree was changed (${dirty})`;
  return null;
}

/** Every pack ends with the SHA-1 of its content, and its index repeats it: both are checked. */
async function damagedPack(packDir: string): Promise<string | null> {
  const names = await fs.readdir(packDir).catch(() => [] as string[]);
  const orphanIndex = names.find((n) => n.endsWith('.idx') && !names.includes(n.replace(/\.idx$/, '.pack')));
  if (orphanIndex) return `index ${orphanIndex} has no pack`;
  for (const name of names.filter((n) => n.endsWith('.pack'))) {
    const file = path.join(packDir, name);
    const { size } = await fs.stat(file);
    if (size < 32) return `pack ${name} is truncated`;
    const computed = await sha1Of(file, size - 20);
    const handle = await fs.open(file, 'r');
    const trailer = Buffer.alloc(20);
    try {
      await handle.read(trailer, 0, 20, size - 20);
    } finally {
      await handle.close();
    }
    if (!trailer.equals(computed)) return `pack ${name} fails its checksum`;
    const index = await fs.readFile(file.replace(/\.pack$/, '.idx')).catch(() => null);
    if (!index || index.length < 40 || !index.subarray(index.length - 40, index.length - 20).equals(computed)) return `the index of pack ${name} is missing or does not match it`;
  }
  return null;
}

function sha1Of(file: string, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    const stream = length > 0 ? createReadStream(file, { start: 0, end: length - 1 }) : null;
    if (!stream) return resolve(hash.digest());
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(hash.digest()));
  });
}

async function hasCommit(dir: string, sha: string): Promise<boolean> {
  return git.readCommit({ fs, dir, oid: sha }).then(() => true, () => false);
}

function manifestPath(entry: string): string {
  return `${entry}.json`;
}

async function readManifest(entry: string): Promise<Manifest | 'missing' | 'invalid'> {
  const text = await fs.readFile(manifestPath(entry), 'utf8').catch(() => null);
  if (text === null) return 'missing';
  try {
    const parsed = ManifestSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : 'invalid';
  } catch {
    return 'invalid';
  }
}

/** Written last, after the entry is complete; removed before any change, so an interrupted update shows. */
async function writeManifest(entry: string, manifest: Manifest): Promise<void> {
  const temporary = `${manifestPath(entry)}.${process.pid}.tmp`;
  await fs.writeFile(temporary, JSON.stringify(manifest));
  await fs.rename(temporary, manifestPath(entry));
}

async function unwriteManifest(entry: string): Promise<void> {
  await fs.rm(manifestPath(entry), { force: true });
}

async function readShallow(dir: string): Promise<string> {
  const text = await fs.readFile(path.join(dir, '.git', 'shallow'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).sort().join('\n');
}

/**
 * Copies the entry to a workspace. Object files are content-addressed and never rewritten, so they are
 * hard-linked (a workspace's fetches and commits only add files); everything else, the work tree above
 * all, is copied, since commands in a workspace may rewrite files in place. `cp` is several times faster
 * than fs.cp on a tree of many small files; fs.cp is used where there is no cp.
 */
async function copyTree(from: string, to: string): Promise<void> {
  await fs.rm(to, { recursive: true, force: true });
  await fs.mkdir(path.join(to, '.git'), { recursive: true });
  const top = (await fs.readdir(from)).filter((name) => name !== '.git');
  const gitItems = (await fs.readdir(path.join(from, '.git'))).filter((name) => name !== 'objects');
  try {
    await Promise.all([
      top.length ? execFileAsync('cp', ['-a', ...top.map((name) => path.join(from, name)), `${to}/`]) : null,
      gitItems.length ? execFileAsync('cp', ['-a', ...gitItems.map((name) => path.join(from, '.git', name)), `${to}/.git/`]) : null,
      execFileAsync('cp', ['-al', path.join(from, '.git', 'objects'), `${to}/.git/`]),
    ]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await fs.rm(to, { recursive: true, force: true });
    await fs.cp(from, to, { recursive: true, preserveTimestamps: true });
  }
}
