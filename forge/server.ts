// The local forge: an embedded stand-in for GitHub so the service can be demonstrated and tested without one.
// It serves git smart HTTP through git's own http-backend (so clients meet a real git server), the slice of
// GitHub's REST API the service uses for pull requests (so Octokit works unchanged, as against GitHub
// Enterprise), and plain HTML pages where a person can look at the pull requests it has received.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { z } from 'zod';

export interface ForgeOptions {
  dataDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** When set, every request must carry it: as the HTTP Basic password, or as `token <t>` / `Bearer <t>`. */
  token?: string;
}

export interface Forge {
  /** e.g. http://127.0.0.1:PORT; repositories clone from `${url}/<owner>/<name>.git`. */
  url: string;
  /** `${url}/api/v3`, the base URL for Octokit. */
  apiUrl: string;
  /** `<dataDir>/repos`, holding `<owner>/<name>.git` bare repositories and their `<name>.pulls.json`. */
  reposDir: string;
  close(): Promise<void>;
  /** Creates an empty bare repository and returns its path; fails if it already exists. */
  createBareRepo(owner: string, name: string, defaultBranch?: string): Promise<string>;
  hasRepo(owner: string, name: string): Promise<boolean>;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const GIT_ENDPOINTS = new Set(['info/refs', 'git-upload-pack', 'git-receive-pack']);
const MAX_JSON_BYTES = 1024 * 1024;
const MAX_CGI_HEADER_BYTES = 64 * 1024;
const PULLS_DOCS = 'https://docs.github.com/rest/pulls/pulls';
const BOT_USER = { login: 'change-request-bot' };

const execFileAsync = promisify(execFile);

interface Site {
  url: string;
  apiUrl: string;
  reposDir: string;
  token: string | undefined;
  pulls: PullStore;
}

interface Repo {
  owner: string;
  name: string;
  fullName: string;
  gitDir: string;
}

export async function startForge(options: ForgeOptions): Promise<Forge> {
  if (options.token === '') throw new Error('forge token must not be empty (leave it unset for an open forge)');
  const reposDir = path.resolve(options.dataDir, 'repos');
  await fs.mkdir(reposDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';

  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const site: Site = { url, apiUrl: `${url}/api/v3`, reposDir, token: options.token, pulls: new PullStore(reposDir) };
  // Registered after listening, which is safe: no request can be parsed before this continuation runs.
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    handleRequest(req, res, site).catch((error: unknown) => failUnexpectedly(res, error));
  });

  return {
    url,
    apiUrl: site.apiUrl,
    reposDir,
    async close() {
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // In-flight git requests end with their connections; their CGI processes are killed on close.
        server.closeAllConnections();
      });
      await site.pulls.settled();
    },
    async createBareRepo(owner, name, defaultBranch = 'main') {
      const repo = repoAt(reposDir, owner, name);
      if (!repo) throw new Error(`invalid repository name "${owner}/${name}"`);
      if (await repoExists(repo)) throw new Error(`${repo.fullName} already exists`);
      await fs.mkdir(path.dirname(repo.gitDir), { recursive: true });
      await execFileAsync('git', ['init', '--quiet', '--bare', `--initial-branch=${defaultBranch}`, repo.gitDir]);
      return repo.gitDir;
    },
    async hasRepo(owner, name) {
      const repo = repoAt(reposDir, owner, name);
      return repo !== null && (await repoExists(repo));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Routing and authentication

async function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, site: Site): Promise<void> {
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt + 1);
  const isApi = rawPath === '/api/v3' || rawPath.startsWith('/api/v3/');

  const caller = presentedCredentials(req.headers.authorization);
  if (site.token !== undefined && !(caller && sameSecret(caller.token, site.token))) {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="forge"', 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ message: isApi ? 'Bad credentials' : 'Authentication required' }));
    return;
  }

  // Segments are split before decoding so an encoded "/" or ".." can never reach a file system path.
  const segments = decodeSegments(rawPath);
  if (!segments) return sendText(res, 400, 'Bad request path\n');
  if (isApi) return serveApi(req, res, site, segments.slice(2), query);
  if (segments.length === 0) return sendHtml(req, res, 200, await renderIndexPage(site));
  if (segments.length < 2) return sendText(res, 404, 'Not found\n');

  const [owner = '', second = '', ...rest] = segments;
  const isGit = second.endsWith('.git') && rest.length > 0;
  const repo = repoAt(site.reposDir, owner, isGit ? second.slice(0, -'.git'.length) : second);
  if (!repo) return sendText(res, 400, 'Invalid repository name\n');
  if (!(await repoExists(repo))) return sendText(res, 404, 'Repository not found\n');

  if (isGit) {
    const endpoint = rest.join('/');
    if (!GIT_ENDPOINTS.has(endpoint)) return sendText(res, 404, 'Not found\n');
    return serveGit(req, res, site, repo, endpoint, query, site.token === undefined ? undefined : caller?.user);
  }
  if (rest.length === 0) return sendHtml(req, res, 200, await renderRepoPage(site, repo));
  const [kind, number] = rest;
  if (rest.length === 2 && kind === 'pull' && number !== undefined && /^[1-9]\d{0,8}$/.test(number)) {
    const page = await renderPullPage(site, repo, Number(number));
    return page === null ? sendText(res, 404, 'Pull request not found\n') : sendHtml(req, res, 200, page);
  }
  return sendText(res, 404, 'Not found\n');
}

function decodeSegments(rawPath: string): string[] | null {
  if (!rawPath.startsWith('/')) return null;
  if (rawPath === '/') return [];
  try {
    return rawPath.slice(1).split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
}

function repoAt(reposDir: string, owner: string, name: string): Repo | null {
  if (!NAME_PATTERN.test(owner) || !NAME_PATTERN.test(name)) return null;
  return { owner, name, fullName: `${owner}/${name}`, gitDir: path.join(reposDir, owner, `${name}.git`) };
}

async function repoExists(repo: Repo): Promise<boolean> {
  return fs.stat(path.join(repo.gitDir, 'HEAD')).then((s) => s.isFile(), () => false);
}

/** HTTP Basic (any username, token as password) as git clients send it, or `token`/`Bearer` as Octokit does. */
function presentedCredentials(header: string | undefined): { user: string; token: string } | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  if (space === -1) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'token' || scheme === 'bearer') return { user: 'token', token: value };
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  // The username becomes REMOTE_USER, which git writes into reflogs: keep it to plain characters, never empty.
  const user = decoded.slice(0, colon).replace(/[^A-Za-z0-9._@-]/g, '').slice(0, 64);
  return { user: user || 'token', token: decoded.slice(colon + 1) };
}

/** Compares digests so the time taken says nothing about how much of the token was right. */
function sameSecret(presented: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

// ---------------------------------------------------------------------------------------------------------
// Git smart HTTP through `git http-backend` (CGI)

function serveGit(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  site: Site,
  repo: Repo,
  endpoint: string,
  query: string,
  remoteUser: string | undefined,
): void {
  // A minimal environment: the forge's own secrets (and any GIT_DIR of the host process) stay out of git.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GIT_PROJECT_ROOT: site.reposDir,
    GIT_HTTP_EXPORT_ALL: '1',
    // The forge's own check above decides who may push, so receive-pack is on for every repository, even for
    // anonymous callers of a forge without a token (http-backend would otherwise demand REMOTE_USER).
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'true',
    PATH_INFO: `/${repo.owner}/${repo.name}.git/${endpoint}`,
    REQUEST_METHOD: req.method ?? 'GET',
    QUERY_STRING: query,
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
  };
  if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  const protocol = req.headers['git-protocol'];
  if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;
  if (remoteUser !== undefined) env.REMOTE_USER = remoteUser;

  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  // http-backend may stop reading early (it answered with an error); that status is what the client needs.
  child.stdin.on('error', () => {});
  req.pipe(child.stdin);
  res.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child.stdout.resume(); // drain, so the child's 'close' still comes
  });

  let settled = false;
  let relaying = false;
  const finish = (problem: string | null) => {
    if (settled) return;
    settled = true;
    if (problem === null && relaying) return void res.end();
    const why = problem ?? 'no CGI header block';
    // Once body bytes are out the status cannot change; cutting the connection tells the client it is incomplete.
    if (res.headersSent) return void res.destroy();
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const detail = stderr.trim().split('\n')[0]?.slice(0, 200);
    sendText(res, 500, `git http-backend failed: ${why}${detail ? ` (${detail})` : ''}\n`);
  };
  child.once('error', (error) => finish(error.message));
  child.once('close', (code, signal) => finish(code === 0 ? null : `exit ${code ?? signal}`));

  readCgiHead(child.stdout).then(
    (head) => {
      if (head === null || settled) return;
      const { status, headers } = parseCgiHead(head);
      // Only staged: they go out with the first body byte, so a CGI that fails before any body still gets a 500.
      for (const [name, value] of headers) res.appendHeader(name, value);
      res.statusCode = status;
      relaying = true;
      child.stdout.pipe(res, { end: false });
    },
    (error: Error) => {
      finish(error.message);
      child.kill('SIGKILL');
      child.stdout.resume();
    },
  );
}

/** Reads the CGI header block off `stdout`, leaving the body unread; null when output ends before one. */
function readCgiHead(stdout: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const stop = () => {
      stdout.off('data', onData);
      stdout.off('end', onEnd);
      stdout.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const end = headBlockEnd(seen);
      if (end === null) {
        if (seen.length > MAX_CGI_HEADER_BYTES) {
          stop();
          reject(new Error('CGI header block too large'));
        }
        return;
      }
      stop();
      stdout.pause();
      if (end.body < seen.length) stdout.unshift(seen.subarray(end.body));
      resolve(seen.subarray(0, end.head));
    };
    const onEnd = () => {
      stop();
      resolve(null);
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    stdout.on('data', onData);
    stdout.on('end', onEnd);
    stdout.on('error', onError);
  });
}

/** CGI allows bare LF line ends as well as CRLF; whichever blank line comes first ends the head. */
function headBlockEnd(buffer: Buffer): { head: number; body: number } | null {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return null;
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return { head: crlf, body: crlf + 4 };
  return { head: lf, body: lf + 2 };
}

function parseCgiHead(head: Buffer): { status: number; headers: [string, string][] } {
  let status = 200;
  const headers: [string, string][] = [];
  for (const line of head.toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers.push([name, value]);
  }
  return { status, headers };
}

// ---------------------------------------------------------------------------------------------------------
// Reading the bare repositories

async function gitIn(repo: Repo, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', ['--git-dir', repo.gitDir, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Branch name → commit, read in one go so a response shows one consistent view of the repository. */
async function branchHeads(repo: Repo): Promise<Map<string, string>> {
  const out = await gitIn(repo, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/']);
  const heads = new Map<string, string>();
  for (const line of out.split('\n')) {
    const space = line.indexOf(' ');
    if (space !== -1) heads.set(line.slice(space + 1).replace(/^refs\/heads\//, ''), line.slice(0, space));
  }
  return heads;
}

async function defaultBranch(repo: Repo): Promise<string> {
  const head = await fs.readFile(path.join(repo.gitDir, 'HEAD'), 'utf8');
  return /^ref: refs\/heads\/(.+)$/m.exec(head)?.[1]?.trim() ?? 'main';
}

async function commitsBetween(repo: Repo, baseSha: string, headSha: string): Promise<number> {
  return Number((await gitIn(repo, ['rev-list', '--count', `${baseSha}..${headSha}`])).trim());
}

async function listRepos(reposDir: string): Promise<Repo[]> {
  const repos: Repo[] = [];
  const subdirs = async (dir: string) =>
    (await fs.readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const owner of await subdirs(reposDir)) {
    for (const entry of await subdirs(path.join(reposDir, owner))) {
      const repo = entry.endsWith('.git') ? repoAt(reposDir, owner, entry.slice(0, -'.git'.length)) : null;
      if (repo && (await repoExists(repo))) repos.push(repo);
    }
  }
  return repos;
}

// ---------------------------------------------------------------------------------------------------------
// Pull request records: <owner>/<name>.pulls.json beside the bare repository

const PullRecordSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullable(),
  state: z.enum(['open', 'closed']),
  draft: z.boolean(),
  head: z.string(),
  base: z.string(),
  // The commits last seen by the forge, still shown after a branch is deleted (as GitHub keeps showing them).
  headSha: z.string(),
  baseSha: z.string(),
  labels: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  closedAt: z.string().nullable(),
});
type PullRecord = z.infer<typeof PullRecordSchema>;

const PullsFileSchema = z.object({ repository: z.string(), pulls: z.array(PullRecordSchema) });

class PullStore {
  /** Per file, the tail of the queue of changes, so read-modify-write cycles never interleave. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(private readonly reposDir: string) {}

  private fileOf(repo: Repo): string {
    return path.join(this.reposDir, repo.owner, `${repo.name}.pulls.json`);
  }

  async read(repo: Repo): Promise<PullRecord[]> {
    let text: string;
    try {
      text = await fs.readFile(this.fileOf(repo), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return PullsFileSchema.parse(JSON.parse(text)).pulls;
  }

  /** Runs `change` on the current records and saves them, one change per repository at a time. A throw saves nothing. */
  mutate<T>(repo: Repo, change: (pulls: PullRecord[]) => Promise<T>): Promise<T> {
    const file = this.fileOf(repo);
    const run = (this.queues.get(file) ?? Promise.resolve()).then(async () => {
      const pulls = await this.read(repo);
      const result = await change(pulls);
      await writeAtomically(file, `${JSON.stringify({ repository: repo.fullName, pulls }, null, 2)}\n`);
      return result;
    });
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(file, tail);
    void tail.then(() => {
      if (this.queues.get(file) === tail) this.queues.delete(file);
    });
    return run;
  }

  async settled(): Promise<void> {
    await Promise.all(this.queues.values());
  }
}

/** Readers never see a half-written file: they get the old one or the new one. */
async function writeAtomically(file: string, content: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(temp, content);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The GitHub-shaped REST API

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: object,
    readonly headers: Record<string, string> = {},
  ) {
    super(`forge API ${status}`);
  }
}

const notFound = () => new ApiError(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });

function validationFailed(message: string, resource = 'PullRequest'): ApiError {
  return new ApiError(422, { message: 'Validation Failed', errors: [{ resource, code: 'custom', message }], documentation_url: PULLS_DOCS });
}

interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

async function serveApi(req: http.IncomingMessage, res: http.ServerResponse, site: Site, segments: string[], query: string): Promise<void> {
  try {
    const answer = await routeApi(req, site, segments, query);
    sendJson(res, answer.status, answer.body, answer.headers);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    sendJson(res, error.status, error.body, error.headers);
  }
}

async function routeApi(req: http.IncomingMessage, site: Site, segments: string[], query: string): Promise<ApiResponse> {
  const [root, owner, name, collection, number, subresource] = segments;
  if (root !== 'repos' || owner === undefined || name === undefined) throw notFound();
  const repo = repoAt(site.reposDir, owner, name);
  if (!repo) throw new ApiError(400, { message: 'Invalid repository name' });
  if (!(await repoExists(repo))) throw notFound();

  const method = req.method ?? 'GET';
  const pullNumber = number !== undefined && /^[1-9]\d{0,8}$/.test(number) ? Number(number) : null;
  if (segments.length === 3 && method === 'GET') return { status: 200, body: await repositoryJson(site, repo) };
  if (collection === 'pulls' && segments.length === 4) {
    if (method === 'GET') return listPulls(site, repo, new URLSearchParams(query));
    if (method === 'POST') return { status: 201, body: await createPull(site, repo, await readJsonBody(req)) };
  }
  if (collection === 'pulls' && segments.length === 5 && pullNumber !== null) {
    if (method === 'GET') return { status: 200, body: await getPull(site, repo, pullNumber) };
    if (method === 'PATCH') return { status: 200, body: await updatePull(site, repo, pullNumber, await readJsonBody(req)) };
  }
  if (collection === 'issues' && subresource === 'labels' && segments.length === 6 && pullNumber !== null && method === 'POST') {
    return { status: 200, body: await addLabels(site, repo, pullNumber, await readJsonBody(req)) };
  }
  throw notFound();
}

async function repositoryJson(site: Site, repo: Repo) {
  return {
    id: numericId(repo.fullName),
    name: repo.name,
    full_name: repo.fullName,
    owner: { login: repo.owner },
    default_branch: await defaultBranch(repo),
    archived: false,
    private: true,
    html_url: `${site.url}/${repo.fullName}`,
    clone_url: `${site.url}/${repo.fullName}.git`,
    permissions: { admin: true, push: true, pull: true },
  };
}

async function listPulls(site: Site, repo: Repo, params: URLSearchParams): Promise<ApiResponse> {
  const state = params.get('state') ?? 'open';
  if (state !== 'open' && state !== 'closed' && state !== 'all') throw validationFailed(`state "${state}" is not one of open, closed, all`);
  const head = params.get('head');
  const base = params.get('base');
  // Like GitHub, `head` is "owner:branch" or just "owner"; other forks do not exist here.
  const [headOwner, headBranch] = head === null ? [null, null] : head.includes(':') ? splitOnce(head, ':') : [head, null];
  const matching = (await site.pulls.read(repo))
    .filter((p) => state === 'all' || p.state === state)
    .filter((p) => headOwner === null || (headOwner === repo.owner && (headBranch === null || p.head === headBranch)))
    .filter((p) => base === null || p.base === base)
    .sort((a, b) => b.number - a.number);

  const perPage = clamp(Number(params.get('per_page') ?? 30) || 30, 1, 100);
  const page = Math.max(1, Math.floor(Number(params.get('page') ?? 1)) || 1);
  const lastPage = Math.max(1, Math.ceil(matching.length / perPage));
  const branches = await branchHeads(repo);
  const body = matching.slice((page - 1) * perPage, page * perPage).map((p) => pullJson(site, repo, p, branches));
  if (page >= lastPage) return { status: 200, body };
  // Octokit's paginate() follows these links.
  const pageUrl = (n: number) => {
    const next = new URLSearchParams(params);
    next.set('page', String(n));
    return `<${site.apiUrl}/repos/${repo.fullName}/pulls?${next.toString()}>`;
  };
  return { status: 200, body, headers: { Link: `${pageUrl(page + 1)}; rel="next", ${pageUrl(lastPage)}; rel="last"` } };
}

const CreatePullSchema = z.object({
  title: z.string().trim().min(1),
  head: z.string().min(1),
  base: z.string().min(1),
  body: z.string().nullish(),
  draft: z.boolean().optional(),
});

async function createPull(site: Site, repo: Repo, input: unknown) {
  const request = parseInput(CreatePullSchema, input);
  const [headOwner, head] = request.head.includes(':') ? splitOnce(request.head, ':') : [repo.owner, request.head];
  return site.pulls.mutate(repo, async (pulls) => {
    const branches = await branchHeads(repo);
    const headSha = headOwner === repo.owner ? branches.get(head) : undefined;
    if (headSha === undefined) throw validationFailed(`The head branch "${request.head}" is invalid: it does not exist in ${repo.fullName}.`);
    const baseSha = branches.get(request.base);
    if (baseSha === undefined) throw validationFailed(`The base branch "${request.base}" is invalid: it does not exist in ${repo.fullName}.`);
    if (pulls.some((p) => p.state === 'open' && p.head === head && p.base === request.base)) {
      throw validationFailed(`A pull request already exists for ${repo.owner}:${head}.`);
    }
    if ((await commitsBetween(repo, baseSha, headSha)) === 0) throw validationFailed(`No commits between ${request.base} and ${head}`);
    const now = timestamp();
    const record: PullRecord = {
      number: Math.max(0, ...pulls.map((p) => p.number)) + 1,
      title: request.title,
      body: request.body ?? null,
      state: 'open',
      draft: request.draft ?? false,
      head,
      base: request.base,
      headSha,
      baseSha,
      labels: [],
      createdAt: now,
      updatedAt: now,
      closedAt: null,
    };
    pulls.push(record);
    return pullJson(site, repo, record, branches);
  });
}

async function getPull(site: Site, repo: Repo, number: number) {
  const record = (await site.pulls.read(repo)).find((p) => p.number === number);
  if (!record) throw notFound();
  return pullJson(site, repo, record, await branchHeads(repo));
}

const UpdatePullSchema = z.object({
  title: z.string().trim().min(1).optional(),
  body: z.string().nullish(),
  state: z.enum(['open', 'closed']).optional(),
  base: z.string().min(1).optional(),
});

async function updatePull(site: Site, repo: Repo, number: number, input: unknown) {
  const update = parseInput(UpdatePullSchema, input);
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pulls.find((p) => p.number === number);
    if (!record) throw notFound();
    const branches = await branchHeads(repo);
    const base = update.base ?? record.base;
    if (!branches.has(base)) throw validationFailed(`The base branch "${base}" is invalid: it does not exist in ${repo.fullName}.`);
    const state = update.state ?? record.state;
    if (state === 'open' && pulls.some((p) => p !== record && p.state === 'open' && p.head === record.head && p.base === base)) {
      throw validationFailed(`A pull request already exists for ${repo.owner}:${record.head}.`);
    }
    const now = timestamp();
    if (update.title !== undefined) record.title = update.title;
    if (update.body !== undefined) record.body = update.body;
    if (state !== record.state) record.closedAt = state === 'closed' ? now : null;
    record.state = state;
    record.base = base;
    record.baseSha = branches.get(base) ?? record.baseSha;
    record.headSha = branches.get(record.head) ?? record.headSha;
    record.updatedAt = now;
    return pullJson(site, repo, record, branches);
  });
}

const LabelsSchema = z.object({
  labels: z.array(z.union([z.string(), z.object({ name: z.string() })]).transform((l) => (typeof l === 'string' ? l : l.name).trim())),
});

async function addLabels(site: Site, repo: Repo, number: number, input: unknown) {
  const { labels } = parseInput(LabelsSchema, input, 'Label');
  if (labels.some((l) => l === '')) throw validationFailed('Label names must not be empty.', 'Label');
  return site.pulls.mutate(repo, async (pulls) => {
    const record = pulls.find((p) => p.number === number);
    if (!record) throw notFound();
    record.labels = [...new Set([...record.labels, ...labels])];
    record.updatedAt = timestamp();
    return record.labels.map((name) => ({ name }));
  });
}

function pullJson(site: Site, repo: Repo, record: PullRecord, branches: Map<string, string>) {
  const side = (ref: string, sha: string) => ({ ref, sha, label: `${repo.owner}:${ref}`, repo: { full_name: repo.fullName } });
  return {
    id: numericId(`${repo.fullName}#${record.number}`),
    number: record.number,
    state: record.state,
    title: record.title,
    body: record.body,
    draft: record.draft,
    merged: false,
    merged_at: null,
    closed_at: record.closedAt,
    html_url: `${site.url}/${repo.fullName}/pull/${record.number}`,
    url: `${site.apiUrl}/repos/${repo.fullName}/pulls/${record.number}`,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    user: BOT_USER,
    labels: record.labels.map((name) => ({ name })),
    head: side(record.head, branches.get(record.head) ?? record.headSha),
    base: side(record.base, branches.get(record.base) ?? record.baseSha),
  };
}

function parseInput<S extends z.ZodType>(schema: S, input: unknown, resource = 'PullRequest'): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw validationFailed(issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid request body', resource);
}

function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_JSON_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_JSON_BYTES) return void chunks.push(chunk);
      // Stop collecting but keep the socket intact so the 413 can still be sent.
      req.off('data', onData);
      req.resume();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.once('error', reject);
    req.once('end', () => {
      if (size > MAX_JSON_BYTES) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new ApiError(400, { message: 'Problems parsing JSON', documentation_url: 'https://docs.github.com/rest' }));
      }
    });
  });
}

const tooLarge = () => new ApiError(413, { message: 'Request body too large' }, { Connection: 'close' });

// ---------------------------------------------------------------------------------------------------------
// Pages for people

async function renderIndexPage(site: Site): Promise<string> {
  const repos = await listRepos(site.reposDir);
  const sections = await Promise.all(repos.map((repo) => renderRepoSection(site, repo)));
  return htmlPage('Forge', `<h1>Repositories</h1>${sections.join('') || '<p>No repositories yet.</p>'}`);
}

async function renderRepoPage(site: Site, repo: Repo): Promise<string> {
  return htmlPage(repo.fullName, `<p><a href="/">All repositories</a></p>${await renderRepoSection(site, repo)}`);
}

async function renderRepoSection(site: Site, repo: Repo): Promise<string> {
  const pulls = (await site.pulls.read(repo)).sort((a, b) => b.number - a.number);
  const items = pulls.map(
    (p) =>
      `<li><a href="/${repo.fullName}/pull/${p.number}">#${p.number} ${escapeHtml(p.title)}</a> ` +
      `<span class="state">${p.state}</span> <code>${escapeHtml(p.head)}</code> → <code>${escapeHtml(p.base)}</code></li>`,
  );
  return (
    `<section><h2><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></h2>` +
    `<p>Clone: <code>${escapeHtml(`${site.url}/${repo.fullName}.git`)}</code> · default branch <code>${escapeHtml(await defaultBranch(repo))}</code></p>` +
    (items.length ? `<ul>${items.join('')}</ul>` : '<p>No pull requests.</p>') +
    `</section>`
  );
}

async function renderPullPage(site: Site, repo: Repo, number: number): Promise<string | null> {
  const pull = (await site.pulls.read(repo)).find((p) => p.number === number);
  if (!pull) return null;
  const labels = pull.labels.map((l) => `<span class="label">${escapeHtml(l)}</span>`).join(' ');
  return htmlPage(
    `${pull.title} · ${repo.fullName}#${number}`,
    `<p><a href="/${repo.fullName}">${escapeHtml(repo.fullName)}</a></p>` +
      `<h1>${escapeHtml(pull.title)} <span class="number">#${number}</span></h1>` +
      `<p><span class="state">${pull.draft ? 'draft' : pull.state}</span> <code>${escapeHtml(pull.head)}</code> → <code>${escapeHtml(pull.base)}</code></p>` +
      (labels ? `<p>${labels}</p>` : '') +
      `<pre class="body">${escapeHtml(pull.body ?? '')}</pre>`,
  );
}

function htmlPage(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>` +
    'body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}' +
    '.state,.label{border-radius:1em;padding:0 .6em;background:#ddf4e4}.label{background:#e6e6fa}.number{color:#777}' +
    'pre.body{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:6px}' +
    `</style></head><body>${body}</body></html>`
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}

function sendHtml(req: http.IncomingMessage, res: http.ServerResponse, status: number, html: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' });
    return void res.end();
  }
  // Titles and bodies come from pull requests; even if escaping failed somewhere, no script may run.
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
  res.end(req.method === 'HEAD' ? undefined : html);
}

function failUnexpectedly(res: http.ServerResponse, error: unknown): void {
  console.error(`forge: ${error instanceof Error ? error.message : String(error)}`);
  if (res.headersSent) return void res.destroy();
  sendText(res, 500, 'Internal forge error\n');
}

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return [text.slice(0, at), text.slice(at + separator.length)];
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.floor(value)));
}

/** GitHub-like numeric ids that stay the same across restarts. */
function numericId(key: string): number {
  return createHash('sha256').update(key).digest().readUIntBE(0, 6);
}

/** GitHub's timestamp format: ISO 8601 in UTC, whole seconds. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
