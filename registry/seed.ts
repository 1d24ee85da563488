// Puts a package's released version into a registry, as its maintainers would have published it, so
// dependents install the real thing (the embedded registry starts empty and has no uplink by default).
// Idempotent: a version the registry already has is left alone.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packFolder, publishTarball, readPackument, type RegistryTarget } from '../activities/packages/npm';

export interface SeedOutcome {
  name: string;
  version: string;
  /** False when the registry already had this version. */
  published: boolean;
}

/** Publishes `packageDir` as it is (its own version, dist-tag latest) unless that version is already there. */
export async function publishReleased(registry: RegistryTarget, packageDir: string): Promise<SeedOutcome> {
  const manifest = JSON.parse(await fs.readFile(path.join(packageDir, 'package.json'), 'utf8')) as { name?: string; version?: string; private?: boolean };
  const { name, version } = manifest;
  if (!name || !version) throw new Error(`${packageDir}/package.json needs a name and a version to be published`);
  if (manifest.private) throw new Error(`${name} is marked "private": true in ${packageDir}/package.json, so npm will not publish it`);
  if (await hasVersion(registry, name, version)) return { name, version, published: false };

  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-seed-'));
  try {
    const tarball = await packFolder(packageDir, path.join(scratch, 'out'), scratch);
    const outcome = await publishTarball(registry, tarball.file, 'latest', scratch);
    if (outcome.ok) return { name, version, published: true };
    // Someone else published it between the check and now: what we wanted is there.
    if (outcome.refusal.code === 'E409' && (await hasVersion(registry, name, version))) return { name, version, published: false };
    throw new Error(`publishing ${name}@${version} was refused (${outcome.refusal.code}): ${outcome.refusal.message}`);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function hasVersion(registry: RegistryTarget, name: string, version: string): Promise<boolean> {
  const packument = await readPackument(registry, name);
  return Boolean(packument?.versions[version]);
}
