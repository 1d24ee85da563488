// The repository catalog: written by frontend engineers, read by the workflow as a snapshot.
// Pure module (no I/O) so the workflow, the worker and the client can all share it.
import { z } from 'zod';
import { validRange } from 'semver';
import { BudgetLimitsSchema } from './budget';
import { DurationMsSchema } from './duration';
import { PLATFORMS, PLATFORMS_WITH_PEOPLE, type PlatformWithPeople } from './platforms';

export const RepoIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use lowercase letters, digits, ".", "_" or "-" (at most 63 characters)');

export const PersonSchema = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');

/** A principal in `access`/`owners`: a person's handle, `group:<name>`, or `*` for everyone. */
const PrincipalSchema = z.string().trim().min(1).max(120);

export const RoleSchema = z.enum(['app', 'package', 'api']);
export type Role = z.infer<typeof RoleSchema>;

export const CommandSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9:_-]{0,40}$/, 'use a short lowercase name such as "test" or "lint"'),
  run: z.string().trim().min(1, 'must not be empty'),
  timeoutSeconds: z.number().int().positive().max(3600).default(300),
});
export type CatalogCommand = z.infer<typeof CommandSchema>;

/**
 * Environment for a preview's build, deploy or service: plain values, and `${preview:<repo>}`, which becomes
 * the address of that repository's preview in the same run (so an app's preview talks to the changed API).
 * A reference that cannot be resolved (no preview of that repository in this run) leaves the variable unset.
 */
const PreviewEnvSchema = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'use an environment variable name such as API_URL'), z.string().max(2000))
  .default({});

export const PreviewSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('static'),
    /** Builds the site; run in the checkout after install. */
    build: CommandSchema.optional(),
    /** Folder (inside the checkout) that the local preview server serves. */
    outputDir: z.string().min(1),
    env: PreviewEnvSchema,
  }),
  z.object({
    kind: z.literal('command'),
    /** Deploys the checkout; must print the preview URL as its last line of output. */
    deploy: CommandSchema,
    /** Takes a preview down (PREVIEW_URL in its environment); optional for platforms that expire them. */
    remove: CommandSchema.optional(),
    env: PreviewEnvSchema,
  }),
  z.object({
    kind: z.literal('service'),
    /** Optional build step after install (e.g. `npm run build`). */
    build: CommandSchema.optional(),
    /**
     * The long-running process, started in the checkout with PORT (and HOST) set; its timeoutSeconds is how
     * long it may take to answer `health`. It runs until the preview is removed, expires or the run ends.
     */
    start: CommandSchema,
    /** Path answered with a 2xx once the service is up, e.g. /healthz. */
    health: z.string().regex(/^\/[^\s]*$/, 'a path starting with "/", such as /healthz').default('/'),
    /** The page reviewers open and the screenshot shows, e.g. /api/products (default: the service's root). */
    open: z.string().regex(/^\/[^\s]*$/, 'a path starting with "/", such as /api/products').optional(),
    env: PreviewEnvSchema,
  }),
]);
export type PreviewSpec = z.infer<typeof PreviewSchema>;

/**
 * Which model (and how much effort) a kind of agent step uses. Unset fields fall back to the catalog
 * policy's entry for the step kind, then to the worker's model (ANTHROPIC_MODEL) and the model's own
 * default effort. Each step is priced by its own model.
 */
export const STEP_KINDS = ['propose', 'edit', 'fix', 'summarize', 'extract'] as const;
export type StepKind = (typeof STEP_KINDS)[number];
export const EffortSchema = z.enum(['low', 'medium', 'high', 'xhigh', 'max']);
export type Effort = z.infer<typeof EffortSchema>;
export const ModelChoiceSchema = z
  .object({
    model: z.string().regex(/^[a-z0-9][a-z0-9._:-]{1,99}$/, 'a model id such as claude-sonnet-5-5').optional(),
    effort: EffortSchema.optional(),
  })
  .strict();
export type ModelChoice = z.infer<typeof ModelChoiceSchema>;
export const StepModelsSchema = z.object(Object.fromEntries(STEP_KINDS.map((kind) => [kind, ModelChoiceSchema.optional()])) as Record<StepKind, z.ZodOptional<typeof ModelChoiceSchema>>).strict();
export type StepModels = z.infer<typeof StepModelsSchema>;

export const ReleaseBumpSchema = z.enum(['major', 'minor', 'patch']);
export type ReleaseBump = z.infer<typeof ReleaseBumpSchema>;

/**
 * A repository consumed as an npm package by others in the catalog. Each round that commits to it is
 * published to the registry as a prerelease of this run, and the repositories that depend on it are
 * installed, checked and previewed against that prerelease instead of the released version.
 */
export const PublishSchema = z
  .object({
    /** The package name; default: `name` in the package.json of `directory`. */
    name: z.string().regex(/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/, 'an npm package name such as @acme/ui-kit').optional(),
    /** Builds what is published (after install), e.g. `npm run build`; none by default. */
    build: CommandSchema.optional(),
    /** The folder (inside the checkout) whose package.json is published; default the checkout itself. */
    directory: z.string().min(1).default('.'),
    /** The release the package's pull request plans once merged: the next minor by default. */
    release: ReleaseBumpSchema.default('minor'),
  })
  .strict();
export type PublishSpec = z.infer<typeof PublishSchema>;

/** `registry.npmjs.org`, `*.example.com`, optionally with `:port` (default 443 and 80). */
const HostPatternSchema = z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/, 'a host name such as registry.npmjs.org or *.example.com, optionally with :port');

/**
 * A registry an install needs a token for. The token is read from the worker's environment variable
 * `tokenEnv` and reaches install commands only, in an .npmrc written for the install and removed after it.
 */
export const InstallCredentialSchema = z
  .object({
    registry: z.string().url('the registry URL, e.g. https://npm.pkg.github.com/'),
    /** The package scope served by that registry, e.g. @acme (default: the registry serves every package). */
    scope: z.string().regex(/^@[a-z0-9][a-z0-9._~-]*$/, 'a scope such as @acme').optional(),
    tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as NPM_TOKEN'),
  })
  .strict();
export type InstallCredential = z.infer<typeof InstallCredentialSchema>;

export const CatalogRepoSchema = z.object({
  id: RepoIdSchema,
  url: z.string().url('must be a clone URL such as https://github.com/acme/web-app.git'),
  defaultBranch: z.string().min(1).default('main'),
  role: RoleSchema,
  description: z.string().trim().min(1, 'say in a sentence what lives in this repository'),
  /**
   * Guidance for the editing agent beside the repository's own AGENTS.md (how to add a component, where
   * tests go, what not to touch). Repository content, not orders: it never overrides the service's rules.
   */
  instructions: z.string().trim().max(4000, 'at most 4,000 characters; longer guidance belongs in the repository\'s AGENTS.md').optional(),
  dependsOn: z.array(RepoIdSchema).default([]),
  install: z.array(CommandSchema).default([]),
  /**
   * What install produces and what decides whether it is still valid: after a successful install the
   * `paths` are kept per worker, keyed by the install commands and the `keyFiles`' contents, and restored
   * instead of installing again.
   */
  /** Registries whose tokens the install needs (see InstallCredentialSchema); their hosts are reachable during installs. */
  installCredentials: z.array(InstallCredentialSchema).optional(),
  /**
   * Hosts this repository's commands may reach besides the service's registry and previews (everything
   * else is refused by the sandbox), e.g. registry.npmjs.org when installs fetch public packages directly.
   */
  allowHosts: z.array(HostPatternSchema).optional(),
  /**
   * The Node.js version its installs, checks and previews run on, as a semver range ("22", ">=22.12", "^20.19").
   * Unset: the repository's own .nvmrc, .node-version or package.json engines.node; none of those: the worker's Node.
   */
  node: z
    .string()
    .trim()
    .refine((range) => validRange(range.replace(/^v/, '')) !== null, 'a Node.js version or semver range, e.g. "22", ">=22.12" or "^20.19.0"')
    .optional(),
  installCache: z
    .object({
      keyFiles: z.array(z.string().min(1)).default(['package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml']),
      paths: z.array(z.string().min(1)).default(['node_modules']),
    })
    .default({ keyFiles: ['package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml'], paths: ['node_modules'] }),
  checks: z.array(CommandSchema).default([]),
  preview: PreviewSchema.optional(),
  /** Set when this repository is consumed as an npm package by repositories that depend on it. */
  publish: PublishSchema.optional(),
  /**
   * The repository's own API definition (OpenAPI 3.x or Swagger 2.0, YAML or JSON), as a path inside it:
   * read as a source of every requirement brief, and re-read from the run's branch when the run edits it,
   * so the repositories that call this API are given the shapes as changed.
   */
  openapi: z
    .string()
    .trim()
    .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[^\0]+\.(ya?ml|json)$/i, 'a relative path inside the repository to a .yaml, .yml or .json file, e.g. openapi.yaml')
    .optional(),
  /** Models for this repository's steps (edit, fix), over the policy's: e.g. a cheaper one for an API layer. */
  models: StepModelsSchema.optional(),
  owners: z.array(PrincipalSchema).min(1, 'name at least one owner'),
  /** Who may target this repository in a change request. */
  access: z.array(PrincipalSchema).default(['*']),
});
export type CatalogRepo = z.infer<typeof CatalogRepoSchema>;

export const PolicySchema = z.object({
  defaultAutonomy: z.enum(['fixed', 'guided', 'free']).default('guided'),
  remindToConfirmAfter: DurationMsSchema.default(4 * 3600_000),
  expireUnconfirmedAfter: DurationMsSchema.default(3 * 86_400_000),
  remindToReviewAfter: DurationMsSchema.default(24 * 3600_000),
  expireUnreviewedAfter: DurationMsSchema.default(14 * 86_400_000),
  maxFixRounds: z.number().int().min(0).max(10).default(2),
  editConcurrency: z.number().int().min(1).max(32).default(3),
  /** What one step (a proposal, or one repository's edit round) and a whole run may spend. */
  budget: z
    .object({
      perStep: BudgetLimitsSchema.default({ turns: 40, inputTokens: 1_500_000, outputTokens: 60_000, costUsd: 3, wallTime: 20 * 60_000 }),
      perRun: BudgetLimitsSchema.default({ turns: 300, inputTokens: 8_000_000, outputTokens: 300_000, costUsd: 20, wallTime: 2 * 3_600_000 }),
    })
    .default({
      perStep: { turns: 40, inputTokens: 1_500_000, outputTokens: 60_000, costUsd: 3, wallTime: 20 * 60_000 },
      perRun: { turns: 300, inputTokens: 8_000_000, outputTokens: 300_000, costUsd: 20, wallTime: 2 * 3_600_000 },
    }),
  /** How long a preview deployment lives at most; it also goes when its pull request is merged or closed. */
  previewLifetime: DurationMsSchema.default(3 * 86_400_000),
  /** How often open pull requests are looked at, at first and after each change they show. */
  trackPullRequestsEvery: DurationMsSchema.default(2 * 60_000),
  /** While nothing changes, the wait doubles up to this (GitHub's rate limits are per hour). */
  trackPullRequestsAtMostEvery: DurationMsSchema.default(30 * 60_000),
  /** How long pull requests are followed before the run ends anyway (people merge them on the forge). */
  trackPullRequestsFor: DurationMsSchema.default(30 * 86_400_000),
  /** A worker that stops heartbeating for this long is presumed dead; its step is retried elsewhere. */
  activityHeartbeatTimeout: DurationMsSchema.default(20_000),
  /** Continue-as-new once history passes this many events (Temporal's own suggestion also counts). */
  continueAsNewAfterEvents: z.number().int().min(50).max(50_000).default(10_000),
  /**
   * Whether a repository is installed, checked and previewed against the in-flight changes of the packages
   * it depends on (published as prereleases of the run), or against their released versions.
   */
  integrateChangeSets: z.boolean().default(true),
  /** The model and effort per kind of agent step (propose, edit, fix, summarize, extract). */
  models: StepModelsSchema.default({}),
  /** Who may confirm, approve and cancel besides the requester. */
  /**
   * Who decides: `requester`; `requester-and-owners` (either); `owners-not-requester` (separation of
   * duties: the requester may confirm, feedback and cancel, but publishing needs an approval from an owner of
   * each changed repository who is not the requester).
   */
  deciders: z.enum(['requester', 'requester-and-owners', 'owners-not-requester']).default('requester-and-owners'),
});
export type Policy = z.infer<typeof PolicySchema>;

/** Reading the pages a requirement links: where from, and what the extraction may spend per run. */
export const ContextIntakeSchema = z
  .object({
    /**
     * Hosts whose pages a requirement may link (besides the service's own forge and demo pages), as in a
     * repository's allowHosts: "docs.example.com", "*.notion.site", "wiki.internal:8443". Nothing else is read.
     */
    allowHosts: z.array(HostPatternSchema).default([]),
    /** What reading and extracting may spend over the whole run (all its passes), within the run's budget. */
    budget: BudgetLimitsSchema.default({ turns: 24, inputTokens: 600_000, outputTokens: 24_000, costUsd: 1, wallTime: 10 * 60_000 }),
    /** Most further links the model may open from the pages in one pass. */
    maxOpenedLinks: z.number().int().min(0).max(20).default(5),
  })
  .strict();

const PersonIdsSchema = z.object({
  name: z.string().optional(),
  ...(Object.fromEntries(PLATFORMS_WITH_PEOPLE.map((platform) => [platform, z.string().optional().describe(PLATFORMS[platform].personId)])) as Record<PlatformWithPeople, z.ZodOptional<z.ZodString>>),
});

export const CatalogSchema = z
  .object({
    groups: z.record(z.string(), z.array(PersonSchema)).default({}),
    /** Who people are on each chat platform (domain/platforms.ts), so a Slack or Lark user maps to a handle used above. */
    people: z.record(PersonSchema, PersonIdsSchema).default({}),
    policy: PolicySchema.default(PolicySchema.parse({})),
    context: ContextIntakeSchema.default(ContextIntakeSchema.parse({})),
    repositories: z.array(CatalogRepoSchema).min(1, 'list at least one repository'),
  })
  .superRefine((catalog, ctx) => {
    const ids = new Set<string>();
    catalog.repositories.forEach((repo, index) => {
      if (ids.has(repo.id)) {
        ctx.addIssue({ code: 'custom', path: ['repositories', index, 'id'], message: `"${repo.id}" is listed twice` });
      }
      ids.add(repo.id);
    });
    catalog.repositories.forEach((repo, index) => {
      repo.dependsOn.forEach((dep, depIndex) => {
        if (!catalog.repositories.some((r) => r.id === dep)) {
          ctx.addIssue({
            code: 'custom',
            path: ['repositories', index, 'dependsOn', depIndex],
            message: `"${dep}" is not a repository in this catalog`,
          });
        }
      });
      for (const [name, value] of Object.entries(repo.preview?.env ?? {})) {
        for (const ref of previewReferences(value)) {
          if (!catalog.repositories.some((r) => r.id === ref)) {
            ctx.addIssue({ code: 'custom', path: ['repositories', index, 'preview', 'env', name], message: `\${preview:${ref}}: "${ref}" is not a repository in this catalog` });
          } else if (ref === repo.id) {
            ctx.addIssue({ code: 'custom', path: ['repositories', index, 'preview', 'env', name], message: `\${preview:${ref}} refers to the repository's own preview` });
          }
        }
      }
      for (const principal of [...repo.owners, ...repo.access]) {
        const group = principal.startsWith('group:') ? principal.slice('group:'.length) : undefined;
        if (group !== undefined && !(group in catalog.groups)) {
          ctx.addIssue({
            code: 'custom',
            path: ['repositories', index, repo.owners.includes(principal) ? 'owners' : 'access'],
            message: `group "${group}" is not defined under "groups"`,
          });
        }
      }
    });
    const cycle = findDependencyCycle(catalog.repositories);
    if (cycle) {
      ctx.addIssue({ code: 'custom', path: ['repositories'], message: `dependsOn has a cycle: ${cycle.join(' -> ')}` });
    }
  });
export type Catalog = z.infer<typeof CatalogSchema>;

const PREVIEW_REFERENCE = /\$\{preview:([^}]*)\}/g;

/** Repository ids named by `${preview:<repo>}` in a preview environment value. */
export function previewReferences(value: string): string[] {
  return [...value.matchAll(PREVIEW_REFERENCE)].map((m) => m[1]!.trim());
}

/**
 * A preview environment with every `${preview:<repo>}` replaced by that repository's preview address;
 * variables whose references cannot all be resolved are left out and named in `unresolved`.
 */
export function resolvePreviewEnv(env: Record<string, string>, previewUrlOf: (repo: string) => string | null): { env: Record<string, string>; unresolved: string[] } {
  const resolved: Record<string, string> = {};
  const unresolved: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    let missing = false;
    const text = value.replace(PREVIEW_REFERENCE, (_, ref: string) => {
      const url = previewUrlOf(ref.trim());
      if (url === null) missing = true;
      return url ?? '';
    });
    if (missing) unresolved.push(`${name} (${value})`);
    else resolved[name] = text;
  }
  return { env: resolved, unresolved };
}

function findDependencyCycle(repos: readonly { id: string; dependsOn: readonly string[] }[]): string[] | undefined {
  const byId = new Map(repos.map((r) => [r.id, r]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const repo of repos) {
    const found = visit(repo.id);
    if (found) return found;
  }
  return undefined;
}

function principalMatches(principal: string, person: string, groups: Catalog['groups']): boolean {
  if (principal === '*') return true;
  if (principal.startsWith('group:')) return (groups[principal.slice('group:'.length)] ?? []).includes(person);
  return principal === person;
}

export function mayTarget(catalog: Catalog, person: string, repoId: string): boolean {
  const repo = catalog.repositories.find((r) => r.id === repoId);
  return repo !== undefined && repo.access.some((p) => principalMatches(p, person, catalog.groups));
}

/** Repositories the person may target in a change request. */
export function reposInScope(catalog: Catalog, person: string): string[] {
  return catalog.repositories.filter((repo) => mayTarget(catalog, person, repo.id)).map((repo) => repo.id);
}

/** The people a repository's owners name (groups resolved; `*` stays as it is). */
export function ownerHandles(catalog: Catalog, repoId: string): string[] {
  const repo = catalog.repositories.find((r) => r.id === repoId);
  if (!repo) return [];
  return [...new Set(repo.owners.flatMap((p) => (p.startsWith('group:') ? catalog.groups[p.slice('group:'.length)] ?? [] : [p])))];
}

export function isOwner(catalog: Catalog, person: string, repoId: string): boolean {
  const repo = catalog.repositories.find((r) => r.id === repoId);
  return repo !== undefined && repo.owners.some((p) => principalMatches(p, person, catalog.groups));
}

/** The model choice of one step: the repository's entry for the kind, over the policy's (fields merge). */
export function modelChoiceFor(catalog: Pick<Catalog, 'policy' | 'repositories'>, kind: StepKind, repoId: string | null): ModelChoice {
  const policy = catalog.policy.models?.[kind] ?? {};
  const repo = repoId ? (catalog.repositories.find((r) => r.id === repoId)?.models?.[kind] ?? {}) : {};
  return { ...policy, ...repo };
}

/** Every model the catalog names, so a worker can refuse to start with one it cannot price. */
export function modelsNamedIn(catalog: Pick<Catalog, 'policy' | 'repositories'>): string[] {
  const choices = [...Object.values(catalog.policy.models ?? {}), ...catalog.repositories.flatMap((r) => Object.values(r.models ?? {}))];
  return [...new Set(choices.flatMap((c) => (c?.model ? [c.model] : [])))].sort();
}

export function findRepo(catalog: Catalog, repoId: string): CatalogRepo | undefined {
  return catalog.repositories.find((r) => r.id === repoId);
}
