// A broken catalog is refused with the file, the field and the reason; a good one is read as written.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CatalogError, loadCatalog, parseCatalog } from '../domain/catalog-loader';
import { mayTarget, reposInScope } from '../domain/catalog-schema';
import { PROJECT_ROOT } from './helpers/world';

const GOOD = `
groups:
  frontend: [fiona]
policy:
  remindToConfirmAfter: 90s
repositories:
  - id: ui-kit
    url: \${FORGE_URL}/demo/ui-kit.git
    role: package
    description: Shared UI helpers.
    owners: [group:frontend]
    checks:
      - { name: test, run: node --test }
  - id: web-app
    url: https://github.com/acme/web-app.git
    role: app
    description: The shop.
    dependsOn: [ui-kit]
    owners: [fiona]
    access: [group:frontend]
`;

function problemsOf(text: string): string[] {
  try {
    parseCatalog(text, 'catalog.yaml', { FORGE_URL: 'http://forge.test' });
  } catch (error) {
    expect(error).toBeInstanceOf(CatalogError);
    return (error as CatalogError).problems;
  }
  throw new Error('the catalog was accepted');
}

test('a valid catalog is read with defaults, substituted URLs and durations in milliseconds', () => {
  const catalog = parseCatalog(GOOD, 'catalog.yaml', { FORGE_URL: 'http://forge.test' });
  expect(catalog.repositories[0]!.url).toBe('http://forge.test/demo/ui-kit.git');
  expect(catalog.repositories[0]!.defaultBranch).toBe('main');
  expect(catalog.repositories[0]!.checks[0]!.timeoutSeconds).toBe(300);
  expect(catalog.policy.remindToConfirmAfter).toBe(90_000);
  expect(catalog.policy.maxFixRounds).toBe(2);
  expect(reposInScope(catalog, 'pam')).toEqual(['ui-kit']);
  expect(mayTarget(catalog, 'fiona', 'web-app')).toBe(true);
});

test('each kind of mistake names the repository, the field and the reason', () => {
  expect(problemsOf(GOOD.replace('https://github.com/acme/web-app.git', 'not a url'))).toEqual([
    'repositories[1] (web-app).url: must be a clone URL such as https://github.com/acme/web-app.git',
  ]);
  expect(problemsOf(GOOD.replace('dependsOn: [ui-kit]', 'dependsOn: [ui-kt]'))).toEqual([
    'repositories[1] (web-app).dependsOn[0]: "ui-kt" is not a repository in this catalog',
  ]);
  expect(problemsOf(GOOD.replace('access: [group:frontend]', 'access: [group:designers]'))[0]).toMatch(/web-app\)\.access: group "designers" is not defined/);
  expect(problemsOf(GOOD.replace('role: app', 'role: website'))[0]).toMatch(/^repositories\[1\] \(web-app\)\.role: /);
  expect(problemsOf(GOOD.replace('remindToConfirmAfter: 90s', 'remindToConfirmAfter: soon'))[0]).toMatch(/policy\.remindToConfirmAfter: must be a duration/);
  expect(problemsOf(GOOD.replace('  - id: web-app', '  - id: ui-kit'))[0]).toMatch(/"ui-kit" is listed twice/);
  expect(problemsOf(GOOD.replace('    dependsOn: [ui-kit]\n', '    dependsOn: [ui-kit]\n').replace("description: Shared UI helpers.", 'description: Shared UI helpers.\n    dependsOn: [web-app]'))[0]).toMatch(/dependsOn has a cycle: (ui-kit -> web-app -> ui-kit|web-app -> ui-kit -> web-app)/);
  for (const path of ['../secrets.yaml', '/etc/openapi.yaml', 'docs/openapi.txt']) {
    expect(problemsOf(GOOD.replace('    owners: [fiona]', `    openapi: ${path}\n    owners: [fiona]`))).toEqual([
      'repositories[1] (web-app).openapi: a relative path inside the repository to a .yaml, .yml or .json file, e.g. openapi.yaml',
    ]);
  }
  expect(parseCatalog(GOOD.replace('    owners: [fiona]', '    openapi: docs/api/openapi.yml\n    owners: [fiona]'), 'catalog.yaml', { FORGE_URL: 'http://forge.test' }).repositories[1]!.openapi).toBe('docs/api/openapi.yml');
  expect(problemsOf('repositories: [')[0]).toMatch(/^YAML syntax: /);
  expect(() => parseCatalog(GOOD, 'catalog.yaml', {})).toThrow(/environment variable FORGE_URL is used but not set/);
});

test('the worker refuses to start on a broken catalog, naming file, field and reason', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-catalog-'));
  const file = path.join(dir, 'broken.yaml');
  await fs.writeFile(file, GOOD.replace('role: app', 'role: website'));
  const run = promisify(execFile);
  const failure = await run(process.execPath, [require.resolve('tsx/cli'), path.join(PROJECT_ROOT, 'worker', 'main.ts')], {
    env: { ...process.env, CATALOG_PATH: file, FORGE_URL: 'http://forge.test', TEMPORAL_ADDRESS: '127.0.0.1:1' },
  }).then(() => null, (error: { code: number; stderr: string }) => error);
  expect(failure?.code).toBe(1);
  expect(failure?.stderr).toContain(`The repository catalog ${file} is not valid`);
  expect(failure?.stderr).toMatch(/repositories\[1\] \(web-app\)\.role: /);
  await fs.rm(dir, { recursive: true, force: true });
});

test('the bundled demo catalog is valid', async () => {
  const catalog = await loadCatalog(path.join(PROJECT_ROOT, 'demo', 'catalog.yaml'), { FORGE_URL: 'http://127.0.0.1:8740' });
  expect(catalog.repositories.map((r) => r.id).sort()).toEqual(['bff-api', 'ui-kit', 'web-app']);
});
