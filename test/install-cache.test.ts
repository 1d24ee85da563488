// The install cache stays under its cap: entries are sized when saved, marked when restored, and the ones
// used longest ago go first (never the one just saved). Real installs (shell commands, confined), real files.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandEnvironment } from '../activities/commands';
import { evictBeyond, install, listInstallCache } from '../activities/install-cache';
import { CatalogRepoSchema } from '../domain/catalog-schema';

jest.setTimeout(60_000);

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'install-cache-'));
});
afterAll(async () => fs.rm(root, { recursive: true, force: true }));

const MIB = 1024 * 1024;
// An install that writes one MiB into node_modules, like a small real one.
const repo = CatalogRepoSchema.parse({
  id: 'web-app',
  url: 'http://127.0.0.1:1/demo/web-app.git',
  role: 'app',
  description: 'for the install cache test',
  owners: ['fiona'],
  install: [{ name: 'install', run: 'mkdir -p node_modules && head -c 1048576 /dev/zero > node_modules/blob', timeoutSeconds: 30 }],
});

async function checkoutWithLock(name: string, lock: string): Promise<string> {
  const dir = path.join(root, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'package-lock.json'), lock);
  return dir;
}

test('past its cap the cache drops the entries used longest ago, and says what it holds', async () => {
  const cacheDir = path.join(root, 'cache');
  const context = (home: string) => ({ cacheDir, maxBytes: 2.5 * MIB, env: commandEnvironment(home) });
  const a = await checkoutWithLock('a', '{"lock":"a"}');
  const b = await checkoutWithLock('b', '{"lock":"b"}');
  expect((await install(repo, a, context(path.join(root, 'home-a'))))[0]).toMatchObject({ status: 'passed' });
  expect((await install(repo, b, context(path.join(root, 'home-b'))))[0]).toMatchObject({ status: 'passed' });
  expect((await listInstallCache(cacheDir)).map((e) => e.bytes)).toEqual([MIB, MIB]);

  // a is used again (restored from the cache), so b is now the one used longest ago.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const again = await checkoutWithLock('a-again', '{"lock":"a"}');
  expect((await install(repo, again, context(path.join(root, 'home-a2'))))[0]).toMatchObject({ fromCache: true });
  const [newest] = await listInstallCache(cacheDir);

  // A third entry passes the cap of 2.5 MiB: b goes, a and the new one stay.
  const c = await checkoutWithLock('c', '{"lock":"c"}');
  await install(repo, c, context(path.join(root, 'home-c')));
  const left = await listInstallCache(cacheDir);
  expect(left).toHaveLength(2);
  expect(left.map((e) => e.key)).toContain(newest!.key);
  expect(left.reduce((sum, e) => sum + e.bytes, 0)).toBeLessThanOrEqual(2.5 * MIB);
  const bAgain = await checkoutWithLock('b-again', '{"lock":"b"}');
  expect((await install(repo, bAgain, context(path.join(root, 'home-b2'))))[0]!.fromCache).toBeUndefined();

  // A lower cap applied by hand (the operator CLI's --trim) keeps only what fits.
  const evicted = await evictBeyond(cacheDir, 1.5 * MIB);
  expect(evicted.length).toBeGreaterThanOrEqual(1);
  expect((await listInstallCache(cacheDir)).reduce((sum, e) => sum + e.bytes, 0)).toBeLessThanOrEqual(1.5 * MIB);
});
