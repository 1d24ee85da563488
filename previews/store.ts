// The preview store: one folder on disk that the preview server (previews/server.ts) serves as it is, and
// that the preview activities (activities/previews.ts) write. Its layout lives here and nowhere else:
//
//   <dir>/<runId>/<repoId>/                          a static preview: the repository's build output,
//                                                    served at <baseUrl>/<runId>/<repoId>/
//   <dir>/<runId>/_screenshots/<repoId>-r<round>.png the preview's screenshot in that round,
//                                                    served at <baseUrl>/<runId>/_screenshots/<repoId>-r<round>.png;
//                                                    kept when the preview is removed (PR bodies show it)
//   <dir>/<runId>/.<repoId>.<random>.<stage>         a preview being swapped in or out; never served
//   <dir>/<runId>/.meta/<repoId>.json                the latest preview record of the repository (any kind) with
//                                                    its branch, written by the deploy; the change-set page at
//                                                    <baseUrl>/<runId>/ lists the run from these; never served
//   <dir>/.services/<runId>/<repoId>/                a service preview, owned by the preview server (previews/services.ts);
//                                                    never served as files (a dot folder), proxied at <baseUrl>/<runId>/<repoId>/:
//       <deployId>/                                  a checkout the deploy moved here (a fresh one per deploy);
//                                                    the service runs in it
//       <deployId>.home/                             the service's HOME
//       <deployId>.log                               its stdout and stderr, served at <baseUrl>/<runId>/_logs/<repoId>.log
//                                                    while it is the service the address shows
//       service.json                                 the manifest: which deploy runs, how it starts, its pid; the
//                                                    preview server restarts what was running from it
//
// A preview's address is stable per run and repository: a redeploy (a later round) replaces the folder's
// content, so a link a reviewer already has keeps showing the latest round. Screenshots are kept per round.
// Run and repository ids are single path segments of letters, digits, ".", "_" and "-", never starting
// with a dot (that is how store-internal folders are kept apart); `_screenshots` and `_logs` cannot clash
// with a repository id because catalog ids start with a letter or a digit. `.host` (the preview server's
// control API) cannot be a run id for the same reason.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PreviewRecord } from '../domain/contracts';

export const SCREENSHOTS_FOLDER = '_screenshots';
/** Not a folder: the path segment under which a run's service logs are served. */
export const LOGS_SEGMENT = '_logs';
const META_FOLDER = '.meta';
const SERVICES_FOLDER = '.services';
const SERVICE_MANIFEST = 'service.json';
/** `<first 12 characters of the sha>-<12 hex digits>`: fresh per deploy, so a retry never reuses a folder. */
const SERVICE_DEPLOY_ID = /^[A-Za-z0-9]{1,12}-[0-9a-f]{12}$/;

const STORE_ID = /^[A-Za-z0-9._-]+$/;

/** True when `segment` may name a run or repository folder in the store. */
export function isStoreId(segment: string): boolean {
  return STORE_ID.test(segment) && !segment.startsWith('.');
}

/** Every path helper goes through this, so no id can point outside the store. */
function storeId(segment: string): string {
  if (!isStoreId(segment)) {
    throw new Error(`"${segment}" cannot name a folder in the preview store: use letters, digits, ".", "_" or "-", not starting with "."`);
  }
  return segment;
}

function withoutTrailingSlash(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

export function previewFolder(dir: string, runId: string, repoId: string): string {
  return path.join(dir, storeId(runId), storeId(repoId));
}

/** The change-set page: every preview of the run, with what each runs (previews/change-set-page.ts). */
export function changeSetUrl(baseUrl: string, runId: string): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/`;
}

export function previewUrl(baseUrl: string, runId: string, repoId: string): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/${storeId(repoId)}/`;
}

function screenshotName(repoId: string, round: number): string {
  return `${storeId(repoId)}-r${round}.png`;
}

export function screenshotFile(dir: string, runId: string, repoId: string, round: number): string {
  return path.join(dir, storeId(runId), SCREENSHOTS_FOLDER, screenshotName(repoId, round));
}

// ---- a preview on its own origin ----
//
// http://<repo>--<run>.localhost:<port>/ serves the same preview as <baseUrl>/<run>/<repo>/, at the root of
// its own origin, so a single-page app's absolute paths (/assets/index.js) work unchanged. Browsers resolve
// every *.localhost name to loopback; the label is the repository and run ids made DNS-safe.

const MAX_DNS_LABEL = 63;

/** `web-app--cr-web-0123abcd` for a run and repository; null when it would not fit in one DNS label. */
export function originLabel(runId: string, repoId: string): string | null {
  const safe = (id: string) => id.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const label = `${safe(storeId(repoId))}--${safe(storeId(runId))}`;
  return label.length <= MAX_DNS_LABEL && /^[a-z0-9]/.test(label) && !label.endsWith('-') ? label : null;
}

/** The preview's own origin, when the preview server is this machine's (a loopback base address). */
export function previewOriginUrl(baseUrl: string, runId: string, repoId: string): string | null {
  const base = new URL(baseUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(base.hostname)) return null;
  const label = originLabel(runId, repoId);
  return label ? `${base.protocol}//${label}.localhost${base.port ? `:${base.port}` : ''}/` : null;
}

/** The label of a `<label>.localhost` Host header, or null for any other host. */
export function originLabelOfHost(host: string | undefined): string | null {
  const match = /^([a-z0-9-]{1,63})\.localhost(?::\d+)?$/i.exec(host ?? '');
  return match && match[1]!.includes('--') ? match[1]!.toLowerCase() : null;
}

export function screenshotUrl(baseUrl: string, runId: string, repoId: string, round: number): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/${SCREENSHOTS_FOLDER}/${screenshotName(repoId, round)}`;
}

// ---- per-repository metadata for the change-set page ----

/** What the change-set page shows of one repository: its latest preview record and the branch it came from. */
export type PreviewMeta = PreviewRecord & { branch: string };

export function previewMetaFile(dir: string, runId: string, repoId: string): string {
  return path.join(dir, storeId(runId), META_FOLDER, `${storeId(repoId)}.json`);
}

/** Written whole (renamed into place), so the page never reads half a record. */
export async function writePreviewMeta(dir: string, runId: string, meta: PreviewMeta): Promise<void> {
  const file = previewMetaFile(dir, runId, meta.repo);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.incoming`);
  try {
    await fs.writeFile(temporary, `${JSON.stringify(meta, null, 2)}\n`);
    await fs.rename(temporary, file);
  } finally {
    await fs.rm(temporary, { force: true });
  }
}

/** Every repository's metadata of the run, by repository id; unreadable files are left out. */
export async function readPreviewMetas(dir: string, runId: string): Promise<PreviewMeta[]> {
  const folder = path.join(dir, storeId(runId), META_FOLDER);
  const names = (await fs.readdir(folder).catch(() => [] as string[])).filter((name) => name.endsWith('.json') && isStoreId(name.slice(0, -'.json'.length))).sort();
  const metas: PreviewMeta[] = [];
  for (const name of names) {
    const text = await fs.readFile(path.join(folder, name), 'utf8').catch(() => null);
    if (text === null) continue;
    try {
      metas.push(JSON.parse(text) as PreviewMeta);
    } catch {
      // A file someone edited by hand; the page shows the others.
    }
  }
  return metas;
}

// ---- service previews ----

/** The folder under which the preview server keeps every service preview; never served as files. */
export function servicesRoot(dir: string): string {
  return path.join(dir, SERVICES_FOLDER);
}

export function serviceFolder(dir: string, runId: string, repoId: string): string {
  return path.join(servicesRoot(dir), storeId(runId), storeId(repoId));
}

export function newServiceDeployId(sha: string): string {
  const prefix = sha.replace(/[^A-Za-z0-9]/g, '').slice(0, 12) || 'deploy';
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export function isServiceDeployId(segment: string): boolean {
  return SERVICE_DEPLOY_ID.test(segment);
}

function serviceDeployId(segment: string): string {
  if (!isServiceDeployId(segment)) throw new Error(`"${segment}" is not a service deploy id`);
  return segment;
}

/** The checkout a service runs in: the deploy moves it here, the preview server starts it. */
export function serviceDeployFolder(dir: string, runId: string, repoId: string, deployId: string): string {
  return path.join(serviceFolder(dir, runId, repoId), serviceDeployId(deployId));
}

export function serviceHomeFolder(dir: string, runId: string, repoId: string, deployId: string): string {
  return `${serviceDeployFolder(dir, runId, repoId, deployId)}.home`;
}

export function serviceLogFile(dir: string, runId: string, repoId: string, deployId: string): string {
  return `${serviceDeployFolder(dir, runId, repoId, deployId)}.log`;
}

export function serviceManifestFile(dir: string, runId: string, repoId: string): string {
  return path.join(serviceFolder(dir, runId, repoId), SERVICE_MANIFEST);
}

export function serviceLogUrl(baseUrl: string, runId: string, repoId: string): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/${LOGS_SEGMENT}/${storeId(repoId)}.log`;
}

/** Deletes a deploy's checkout, home and log; nothing to delete is fine. */
export async function deleteServiceDeploy(dir: string, runId: string, repoId: string, deployId: string): Promise<void> {
  await fs.rm(serviceDeployFolder(dir, runId, repoId, deployId), { recursive: true, force: true });
  await fs.rm(serviceHomeFolder(dir, runId, repoId, deployId), { recursive: true, force: true });
  await fs.rm(serviceLogFile(dir, runId, repoId, deployId), { force: true });
}

/** Deletes everything of the run's service preview of the repository (every deploy, the manifest). */
export async function deleteServiceFolder(dir: string, runId: string, repoId: string): Promise<void> {
  const folder = serviceFolder(dir, runId, repoId);
  await fs.rm(folder, { recursive: true, force: true });
  await fs.rmdir(path.dirname(folder)).catch(() => undefined);
}

export interface Published {
  /** What the build output held besides folders and regular files (links, hard links, devices), left out. */
  leftOut: string[];
}

/**
 * Copies a build output into the store as the run's preview of the repository, replacing an earlier one.
 * The copy goes to a folder beside the preview and is renamed into place, so nobody is served a half-copied
 * preview. A folder cannot be renamed over a non-empty one, so the old preview is first renamed aside: for
 * the instant between the two renames its address answers 404.
 */
export async function publishStaticPreview(dir: string, runId: string, repoId: string, source: string): Promise<Published> {
  const target = previewFolder(dir, runId, repoId);
  const staging = sibling(target, 'incoming');
  const retired = sibling(target, 'outgoing');
  const leftOut: string[] = [];
  try {
    await fs.cp(source, staging, {
      recursive: true,
      // Folders and regular files only. A symbolic link could point anywhere on the worker (an absolute
      // link to a secret, say), a hard link is another name for a file that may live outside the build,
      // and devices, FIFOs and sockets are no content: all are left out and named.
      filter: async (from) => {
        const stat = await fs.lstat(from);
        const kept = stat.isDirectory() || (stat.isFile() && stat.nlink === 1);
        if (!kept) leftOut.push(path.relative(source, from));
        return kept;
      },
    });
    await fs.rename(target, retired).catch(ignoreMissing);
    await fs.rename(staging, target);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    await fs.rm(retired, { recursive: true, force: true });
  }
  return { leftOut };
}

/**
 * Deletes the run's preview of the repository and its metadata; nothing to delete is fine. Its screenshots
 * stay: pull request bodies show them, also after the preview is gone (they are small, one per round).
 * A service preview's process and folder belong to the preview server: it deletes them when asked to stop.
 */
export async function deleteStoredPreview(dir: string, runId: string, repoId: string): Promise<void> {
  const runFolder = path.dirname(previewFolder(dir, runId, repoId));
  await fs.rm(previewFolder(dir, runId, repoId), { recursive: true, force: true });
  const meta = previewMetaFile(dir, runId, repoId);
  await fs.rm(meta, { force: true });
  await fs.rmdir(path.dirname(meta)).catch(() => undefined);
  // Folders left behind by a publish whose worker died half-way.
  const leftover = new RegExp(`^\\.${escaped(repoId)}\\.[0-9a-f]{12}\\.(incoming|outgoing)$`);
  for (const name of await fs.readdir(runFolder).catch(() => [] as string[])) {
    if (leftover.test(name)) await fs.rm(path.join(runFolder, name), { recursive: true, force: true });
  }
  // Tidy up a run nothing is left of; a folder that still holds something (screenshots) stays.
  await fs.rmdir(runFolder).catch(() => undefined);
}

function sibling(folder: string, stage: string): string {
  return path.join(path.dirname(folder), `.${path.basename(folder)}.${randomBytes(6).toString('hex')}.${stage}`);
}

/** Ids hold no regular-expression characters but ".". */
function escaped(id: string): string {
  return id.replace(/\./g, '\\.');
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
