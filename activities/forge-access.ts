// How activities reach the forge (GitHub, GitHub Enterprise, or the local forge): credentials for git
// over HTTPS and for the REST API, and how pull requests are opened.
import { Octokit } from '@octokit/rest';

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

/** A personal access token, a fine-grained token, or the local forge's token. */
export function tokenForgeAccess(token: string | undefined, pullRequests: PullRequestSettings = { draft: false, labels: [] }): ForgeAccess {
  return {
    gitToken: async () => token,
    octokit: (apiUrl) => new Octokit({ baseUrl: apiUrl, auth: token, userAgent: 'change-request-service', request: { retries: 0 } }),
    pullRequests,
  };
}
