// How activities reach the forge (GitHub, GitHub Enterprise, or the local forge): credentials for git
// over HTTPS and for the REST API, and how pull requests are opened.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';

/** Refused requests are explained per repository by pull-requests.ts; Octokit's own error lines only add noise. */
const QUIET_LOG = { debug: () => undefined, info: () => undefined, warn: console.warn, error: () => undefined };

export interface PullRequestSettings {
  draft: boolean;
  labels: string[];
}

export interface ForgeAccess {
  /** A token for git over HTTPS to `url` (sent as the Basic-auth password), if any is needed. */
  gitToken(url: string): Promise<string | undefined>;
  /** An authenticated REST client for an API base URL (https://api.github.com, https://ghe/api/v3 …). */
  octokit(apiUrl: string): Octokit;
  pullRequests: PullRequestSettings;
}

/** The credentials cannot be used for what was asked (a setting is wrong); trying again will not help. */
export class ForgeAccessError extends Error {
  override readonly name = 'ForgeAccessError';
}

const USER_AGENT = 'change-request-service';
const GITHUB_API = 'https://api.github.com';

/** A personal access token, a fine-grained token, or the local forge's token. */
export function tokenForgeAccess(token: string | undefined, pullRequests: PullRequestSettings = { draft: false, labels: [] }): ForgeAccess {
  return {
    gitToken: async () => token,
    octokit: (apiUrl) => new Octokit({ baseUrl: apiUrl, auth: token, userAgent: USER_AGENT, request: { retries: 0 }, log: QUIET_LOG }),
    pullRequests,
  };
}

export interface GitHubAppSettings {
  appId: number;
  /** The PEM GitHub issued (PKCS#1 or PKCS#8; `\n` escapes, as env files carry them, are accepted). */
  privateKey: string;
  installationId: number;
  pullRequests: PullRequestSettings;
  /** The API of the GitHub the App is registered on: https://api.github.com (default) or https://ghe/api/v3. */
  baseUrl?: string;
}

/**
 * A GitHub App installation: every REST call and every git push uses a short-lived installation token.
 * One client holds the App's auth, so the token is minted once and reused until it nears expiry (the
 * auth caches it), for the API and for git alike.
 */
export function githubAppForgeAccess(settings: GitHubAppSettings): ForgeAccess {
  const baseUrl = normalizedApiUrl(settings.baseUrl ?? GITHUB_API);
  const privateKey = readablePrivateKey(settings.privateKey);
  let client: Octokit | undefined;
  const appClient = () =>
    (client ??= new Octokit({
      baseUrl,
      userAgent: USER_AGENT,
      log: QUIET_LOG,
      authStrategy: createAppAuth,
      auth: { appId: settings.appId, privateKey, installationId: settings.installationId },
    }));
  return {
    async gitToken(url) {
      // An installation token is only good on the GitHub it came from; never hand it to another host.
      const host = new URL(url).host;
      if (host !== gitHostOf(baseUrl)) {
        throw new ForgeAccessError(`git host ${host} is not ${gitHostOf(baseUrl)}, where GitHub App ${settings.appId} is registered; point the catalog at that host or set GITHUB_API_URL`);
      }
      const auth = (await appClient().auth({ type: 'installation' })) as { token: string };
      return auth.token;
    },
    octokit(apiUrl) {
      if (normalizedApiUrl(apiUrl) !== baseUrl) {
        throw new ForgeAccessError(`GitHub App ${settings.appId} is registered on ${baseUrl}, not ${apiUrl}; point the catalog at that GitHub or set GITHUB_API_URL`);
      }
      return appClient();
    },
    pullRequests: settings.pullRequests,
  };
}

type Env = Record<string, string | undefined>;

const APP_SETTINGS = ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY', 'GITHUB_APP_PRIVATE_KEY_PATH', 'GITHUB_APP_INSTALLATION_ID'] as const;

/**
 * Chooses the forge credentials from the environment: a GitHub App when GITHUB_APP_ID, a private key
 * (GITHUB_APP_PRIVATE_KEY, or a file at GITHUB_APP_PRIVATE_KEY_PATH) and GITHUB_APP_INSTALLATION_ID are
 * set (GITHUB_API_URL for GitHub Enterprise); else FORGE_TOKEN or GITHUB_TOKEN; else no credentials.
 */
export function forgeAccessFromEnv(env: Env, pullRequests: PullRequestSettings): ForgeAccess {
  const set = (name: string) => nonEmpty(env[name]);
  if (APP_SETTINGS.some((name) => set(name) !== undefined)) {
    const missing: string[] = [];
    if (set('GITHUB_APP_ID') === undefined) missing.push('GITHUB_APP_ID');
    if (set('GITHUB_APP_PRIVATE_KEY') === undefined && set('GITHUB_APP_PRIVATE_KEY_PATH') === undefined) missing.push('GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH');
    if (set('GITHUB_APP_INSTALLATION_ID') === undefined) missing.push('GITHUB_APP_INSTALLATION_ID');
    if (missing.length > 0) {
      throw new Error(`GitHub App settings are incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing. Set all of them, or unset the GITHUB_APP_* variables to use FORGE_TOKEN or GITHUB_TOKEN.`);
    }
    if (set('GITHUB_APP_PRIVATE_KEY') !== undefined && set('GITHUB_APP_PRIVATE_KEY_PATH') !== undefined) {
      throw new Error('Both GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are set; keep one of them.');
    }
    return githubAppForgeAccess({
      appId: positiveInteger('GITHUB_APP_ID', set('GITHUB_APP_ID')!),
      privateKey: set('GITHUB_APP_PRIVATE_KEY') ?? readKeyFile(set('GITHUB_APP_PRIVATE_KEY_PATH')!),
      installationId: positiveInteger('GITHUB_APP_INSTALLATION_ID', set('GITHUB_APP_INSTALLATION_ID')!),
      baseUrl: set('GITHUB_API_URL'),
      pullRequests,
    });
  }
  return tokenForgeAccess(set('FORGE_TOKEN') ?? set('GITHUB_TOKEN'), pullRequests);
}

/** PR_DRAFT ("true" or "false", default false) and PR_LABELS (comma-separated, default none). */
export function pullRequestSettingsFromEnv(env: Env): PullRequestSettings {
  const draft = nonEmpty(env.PR_DRAFT)?.toLowerCase() ?? 'false';
  if (draft !== 'true' && draft !== 'false') throw new Error(`PR_DRAFT must be "true" or "false", not "${env.PR_DRAFT}"`);
  const labels = (env.PR_LABELS ?? '').split(',').map((label) => label.trim()).filter(Boolean);
  return { draft: draft === 'true', labels: [...new Set(labels)] };
}

/** Fails at start-up, not at the first pull request, when the key is not a private key. */
function readablePrivateKey(pem: string): string {
  const key = pem.replace(/\\n/g, '\n');
  try {
    createPrivateKey(key);
  } catch (error) {
    // The reason comes from OpenSSL and never quotes the key.
    throw new Error(`The GitHub App private key is not a PEM private key (${(error as Error).message}). Use the .pem file GitHub generated for the App.`);
  }
  return key;
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`GITHUB_APP_PRIVATE_KEY_PATH: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a number (GitHub shows it in the App's settings), not "${value}"`);
  return n;
}

/** api.github.com serves github.com; a GitHub Enterprise API lives on its own host. */
function gitHostOf(apiUrl: string): string {
  const { host } = new URL(apiUrl);
  return host === 'api.github.com' ? 'github.com' : host;
}

/** Comparable API base URLs: lower-case host, no trailing slash. */
function normalizedApiUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ForgeAccessError(`"${url}" is not a GitHub API URL such as https://api.github.com or https://ghe.example.com/api/v3`);
  }
  return parsed.href.replace(/\/+$/, '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value?.trim() ? value.trim() : undefined;
}
