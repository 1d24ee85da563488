// The preview store: one folder on disk that the preview server (previews/server.ts) serves as it is, and
// that the preview activities (activities/previews.ts) write. Its layout lives here and nowhere else:
//
//   <dir>/<runId>/<repoId>/                          a static preview: the repository's build output,
//                                                    served at <baseUrl>/<runId>/<repoId>/
//   <dir>/<runId>/_screenshots/<repoId>-r<round>.png the preview's screenshot in that round,
//                                                    served at <baseUrl>/<runId>/_screenshots/<repoId>-r<round>.png
//   <dir>/<runId>/.<repoId>.<random>.<stage>         a preview being swapped in or out; never served
//
// A preview's address is stable per run and repository: a redeploy (a later round) replaces the folder's
// content, so a link a reviewer already has keeps showing the latest round. Screenshots are kept per round.
// Run and repository ids are single path segments of letters, digits, ".", "_" and "-", never starting
// with a dot (that is how store-internal folders are kept apart); `_screenshots` cannot clash with a
// repository id because catalog ids start with a letter or a digit.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const SCREENSHOTS_FOLDER = '_screenshots';

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

export function previewUrl(baseUrl: string, runId: string, repoId: string): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/${storeId(repoId)}/`;
}

function screenshotName(repoId: string, round: number): string {
  return `${storeId(repoId)}-r${round}.png`;
}

export function screenshotFile(dir: string, runId: string, repoId: string, round: number): string {
  return path.join(dir, storeId(runId), SCREENSHOTS_FOLDER, screenshotName(repoId, round));
}

export function screenshotUrl(baseUrl: string, runId: string, repoId: string, round: number): string {
  return `${withoutTrailingSlash(baseUrl)}/${storeId(runId)}/${SCREENSHOTS_FOLDER}/${screenshotName(repoId, round)}`;
}

export interface Published {
  /** Symbolic links found in the build output and left out: the store serves regular files only. */
  skippedLinks: string[];
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
  const skippedLinks: string[] = [];
  try {
    await fs.cp(source, staging, {
      recursive: true,
      // A link could point anywhere on the worker (an absolute link to a secret, say): leave links out.
      filter: async (from) => {
        const isLink = (await fs.lstat(from)).isSymbolicLink();
        if (isLink) skippedLinks.push(path.relative(source, from));
        return !isLink;
      },
    });
    await fs.rename(target, retired).catch(ignoreMissing);
    await fs.rename(staging, target);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    await fs.rm(retired, { recursive: true, force: true });
  }
  return { skippedLinks };
}

/** Deletes the run's preview of the repository and its screenshots; nothing to delete is fine. */
export async function deleteStoredPreview(dir: string, runId: string, repoId: string): Promise<void> {
  const runFolder = path.dirname(previewFolder(dir, runId, repoId));
  await fs.rm(previewFolder(dir, runId, repoId), { recursive: true, force: true });
  // Folders left behind by a publish whose worker died half-way.
  const leftover = new RegExp(`^\\.${escaped(repoId)}\\.[0-9a-f]{12}\\.(incoming|outgoing)$`);
  for (const name of await fs.readdir(runFolder).catch(() => [] as string[])) {
    if (leftover.test(name)) await fs.rm(path.join(runFolder, name), { recursive: true, force: true });
  }
  const screenshots = path.join(runFolder, SCREENSHOTS_FOLDER);
  const ofThisRepo = new RegExp(`^${escaped(repoId)}-r\\d+\\.png$`);
  for (const name of await fs.readdir(screenshots).catch(() => [] as string[])) {
    if (ofThisRepo.test(name)) await fs.rm(path.join(screenshots, name), { force: true });
  }
  // Tidy up a run nothing is left of; a folder that still holds something stays.
  await fs.rmdir(screenshots).catch(() => undefined);
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
