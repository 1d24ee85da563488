// The rules of a change set that code, not the model, decides: prerelease names, what each repository is
// installed against, the release plan, and that nothing of the run is left pinned in a committed package.json.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { revertRunPins } from '../activities/change-set-guard';
import { CatalogSchema, type Catalog } from '../domain/catalog-schema';
import { changeSetOf, planReleases, plannedRelease, prereleaseVersion, shortRunId, upstreamVersionsOf } from '../domain/change-set';
import type { PublishRecord, RepoProgress, RunState } from '../domain/contracts';
import { emptyInbox, judgeInput } from '../workflows/human-inputs';

const RUN = 'cr-20261203-0a1b2c3d';

function catalog(integrateChangeSets = true): Catalog {
  const repo = (id: string, role: string, dependsOn: string[] = [], publish?: object) => ({ id, url: `http://forge.test/demo/${id}.git`, role, description: `${id} repository`, dependsOn, owners: ['fiona'], ...(publish ? { publish } : {}) });
  return CatalogSchema.parse({
    policy: { integrateChangeSets },
    repositories: [
      repo('tokens', 'package', [], { name: '@acme/tokens', release: 'patch' }),
      repo('ui-kit', 'package', ['tokens'], { name: '@acme/ui-kit' }),
      repo('bff-api', 'api'),
      repo('web-app', 'app', ['ui-kit', 'bff-api']),
    ],
  });
}

function published(repo: string, round: number, overrides: Partial<PublishRecord> = {}): PublishRecord {
  const name = repo === 'tokens' ? '@acme/tokens' : '@acme/ui-kit';
  return { repo, round, sha: `${repo}-sha-${round}`, name, version: prereleaseVersion('1.4.0', RUN, round), distTag: `cr-${shortRunId(RUN)}`, releasedVersion: '1.4.0', headVersion: '1.4.0', status: 'published', reused: false, output: '', at: 0, ...overrides };
}

function progress(publishes: PublishRecord[] = [], commits = 1): RepoProgress {
  return { publishes, commits: Array.from({ length: commits }, (_, i) => ({ round: i + 1, sha: `c${i}`, message: 'm', files: [] })) } as unknown as RepoProgress;
}

test('prerelease versions and dist-tags are valid semver and name the run and the round', () => {
  expect(shortRunId(RUN)).toBe('0a1b2c3d');
  expect(shortRunId('cr-20261203-01234567')).toBe('r01234567'); // all digits with a leading zero: not a valid identifier
  expect(prereleaseVersion('1.4.0', RUN, 2)).toBe('1.4.0-cr.0a1b2c3d.2');
  expect(prereleaseVersion('2.0.0-beta.1', RUN, 1)).toBe('2.0.0-cr.0a1b2c3d.1');
});

test("each repository is installed against every upstream package's newest prerelease of the run, transitively", () => {
  const state = { repos: { tokens: progress([published('tokens', 1)]), 'ui-kit': progress([published('ui-kit', 1), published('ui-kit', 2)]) } };
  expect(changeSetOf(state, catalog(), 'web-app').map((p) => [p.name, p.version])).toEqual([
    ['@acme/ui-kit', '1.4.0-cr.0a1b2c3d.2'],
    ['@acme/tokens', '1.4.0-cr.0a1b2c3d.1'],
  ]);
  // A failed later round falls back to the last published one, and says so.
  const failed = { repos: { 'ui-kit': progress([published('ui-kit', 1), published('ui-kit', 2, { status: 'failed', version: null })]) } };
  expect(upstreamVersionsOf(failed, catalog(), 'web-app')).toContainEqual({ repo: 'ui-kit', name: '@acme/ui-kit', source: 'run', version: '1.4.0-cr.0a1b2c3d.1', note: "round 2 could not be published, so round 1's prerelease is used" });
  // Switched off: released versions, with the reason.
  expect(upstreamVersionsOf(state, catalog(false), 'web-app')).toContainEqual({ repo: 'ui-kit', name: '@acme/ui-kit', source: 'released', version: null, note: 'change sets are switched off (policy.integrateChangeSets)' });
  expect(changeSetOf(state, catalog(false), 'web-app')).toEqual([]);
});

test('the release plan: each changed package released by its bump, dependents on ^release, an owner choice and a committed bump respected', () => {
  const state = {
    repos: { tokens: progress([published('tokens', 1)]), 'ui-kit': progress([published('ui-kit', 1)]), 'web-app': progress([]) },
    releaseChoices: { 'ui-kit': { bump: 'major' as const, by: 'fiona' } },
  };
  expect(planReleases(state, catalog(), ['tokens', 'ui-kit', 'web-app'])).toEqual([
    { repo: 'tokens', release: { name: '@acme/tokens', version: '1.4.1', bump: 'patch', from: '1.4.0', by: null }, needs: [] },
    { repo: 'ui-kit', release: { name: '@acme/ui-kit', version: '2.0.0', bump: 'major', from: '1.4.0', by: 'fiona' }, needs: [{ repo: 'tokens', name: '@acme/tokens', range: '^1.4.1' }] },
    { repo: 'web-app', release: null, needs: [{ repo: 'ui-kit', name: '@acme/ui-kit', range: '^2.0.0' }, { repo: 'tokens', name: '@acme/tokens', range: '^1.4.1' }] },
  ]);
  // A branch that already raised its version is released as committed.
  expect(plannedRelease({ releasedVersion: '1.4.0', headVersion: '1.6.0' }, 'minor')).toEqual({ version: '1.6.0', bump: 'as-committed' });
  expect(plannedRelease({ releasedVersion: null, headVersion: null }, 'minor')).toBeNull();
});

test("a package.json the agent pointed at the run's prerelease, dist-tag or branch is put back before the commit", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-pins-'));
  try {
    const original = { name: '@acme/web-app', dependencies: { '@acme/ui-kit': '^1.4.0', react: '^18.3.0' } };
    await fs.writeFile(path.join(dir, 'package.json'), `${JSON.stringify(original, null, 4)}\n`);
    await git.init({ fs, dir, defaultBranch: 'main' });
    await git.add({ fs, dir, filepath: 'package.json' });
    await git.commit({ fs, dir, message: 'init', author: { name: 't', email: 't@example.com' } });
    const pinned = {
      ...original,
      dependencies: { '@acme/ui-kit': `1.4.0-cr.${shortRunId(RUN)}.1`, react: '^18.3.1', '@acme/tokens': `cr-${shortRunId(RUN)}` },
      devDependencies: { '@acme/api-client': `git+http://forge.test/demo/api.git#change-request/${RUN}` },
    };
    await fs.writeFile(path.join(dir, 'package.json'), `${JSON.stringify(pinned, null, 4)}\n`);

    const reverted = await revertRunPins(dir, { runId: RUN, branch: `change-request/${RUN}` });
    expect(reverted).toEqual([
      `package.json: dependencies.@acme/ui-kit "1.4.0-cr.${shortRunId(RUN)}.1" → "^1.4.0"`,
      `package.json: dependencies.@acme/tokens "cr-${shortRunId(RUN)}" → removed`,
      `package.json: devDependencies.@acme/api-client "git+http://forge.test/demo/api.git#change-request/${RUN}" → removed`,
    ]);
    const text = await fs.readFile(path.join(dir, 'package.json'), 'utf8');
    // The agent's other change stays, the file keeps its four-space indentation.
    expect(JSON.parse(text)).toEqual({ ...original, dependencies: { '@acme/ui-kit': '^1.4.0', react: '^18.3.1' }, devDependencies: {} });
    expect(text).toContain('\n    "name"');
    expect(await revertRunPins(dir, { runId: RUN, branch: `change-request/${RUN}` })).toEqual([]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a package's release may be chosen on approval by one of its owners only, for a package of the change", () => {
  const cat = CatalogSchema.parse({
    groups: { frontend: ['fiona'] },
    repositories: [
      { id: 'ui-kit', url: 'http://forge.test/demo/ui-kit.git', role: 'package', description: 'ui', owners: ['group:frontend'], publish: {} },
      { id: 'web-app', url: 'http://forge.test/demo/web-app.git', role: 'app', description: 'app', dependsOn: ['ui-kit'], owners: ['fiona'] },
      { id: 'bff-api', url: 'http://forge.test/demo/bff-api.git', role: 'api', description: 'api', owners: ['bob'] },
    ],
  });
  const state = { phase: 'awaiting_review', cardVersion: 3, confirmed: ['ui-kit', 'web-app'], proposal: null, scope: ['ui-kit', 'web-app', 'bff-api'], request: { requester: 'pam' } } as unknown as RunState;
  const approve = (by: string, releases: Record<string, string>) => judgeInput('approve', { by, key: `k-${by}`, releases }, { state, catalog: cat, inbox: emptyInbox(), now: 0 });
  expect(approve('pam', { 'ui-kit': 'major' })).toEqual({ outcome: 'refused', reason: "pam may not choose ui-kit's release: only its owners may" });
  expect(approve('fiona', { 'web-app': 'major' })).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('web-app is not published as a package') });
  expect(approve('fiona', { 'bff-api': 'major' })).toMatchObject({ outcome: 'refused', reason: 'bff-api is not part of this change, so no release can be chosen for it' });
  expect(approve('fiona', { 'ui-kit': 'huge' })).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('malformed approve') });
  expect(approve('fiona', { 'ui-kit': 'major' })).toMatchObject({ outcome: 'accepted' });
});
