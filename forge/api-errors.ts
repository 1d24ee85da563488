// The REST API's error answers, shaped like GitHub's so Octokit reports them the same way.
const REST_DOCS = 'https://docs.github.com/rest';
const PULLS_DOCS = 'https://docs.github.com/rest/pulls/pulls';

/** Thrown by a route to answer with `status` and `body` instead of a result. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: object,
    readonly headers: Record<string, string> = {},
  ) {
    super(`forge API ${status}`);
  }
}

export const notFound = () => new ApiError(404, { message: 'Not Found', documentation_url: REST_DOCS });

export const unparsableJson = () => new ApiError(400, { message: 'Problems parsing JSON', documentation_url: REST_DOCS });

export const tooLarge = () => new ApiError(413, { message: 'Request body too large' }, { Connection: 'close' });

export function validationFailed(message: string, resource = 'PullRequest'): ApiError {
  return new ApiError(422, { message: 'Validation Failed', errors: [{ resource, code: 'custom', message }], documentation_url: PULLS_DOCS });
}
