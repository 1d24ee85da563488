// The local forge: an embedded stand-in for GitHub so the service can be demonstrated and tested without one.
// It serves git smart HTTP through git's own http-backend (so clients meet a real git server), the slice of
// GitHub's REST API the service uses for pull requests (so Octokit works unchanged, as against GitHub
// Enterprise), and plain HTML pages where a person can look at the pull requests it has received.
// This file starts the HTTP server and sends each request to the module that answers it.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { listenOn } from '../activities/listen';
import { admit } from './auth';
import { isPullAction, servePullAction } from './pull-actions';
import { isGitEndpoint, serveGit } from './git-http';
import { DIFF_STYLESHEET_PATH, rawCompareDiff, renderBlobPage, renderComparePage, renderIndexPage, renderPullPage, renderRepoPage } from './pages';
import { PullStore } from './pulls-store';
import { createBareRepo, listRepos, repoAt, repoExists, withoutGitSuffix, type Repo } from './repos';
import { forgeWriteKey, guardRefs, writerEnv } from './ref-guard';
import { sendHtml, sendText } from './responses';
import { serveApi } from './rest-api';
import type { Site } from './site';
import type { WebhookTarget } from './webhooks';
import { decodeSegments, parsePullNumber } from './url-paths';

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
  /** Environment for the forge's own local git writes (seeding); any other ref update is refused (ref-guard.ts). */
  writerEnv: Record<string, string>;
  /** Delivers pull request changes to this address too, signed with the secret (as a GitHub webhook). */
  addWebhook(target: WebhookTarget): void;
}

export async function startForge(options: ForgeOptions): Promise<Forge> {
  if (options.token === '') throw new Error('forge token must not be empty (leave it unset for an open forge)');
  const reposDir = path.resolve(options.dataDir, 'repos');
  await fs.mkdir(reposDir, { recursive: true });
  const writeKey = await forgeWriteKey(path.resolve(options.dataDir));
  // Repositories made before the guard existed (or by an older forge) get it too.
  await Promise.all((await listRepos(reposDir)).map((repo) => guardRefs(repo.gitDir, writeKey)));
  const host = options.host ?? '127.0.0.1';

  const server = http.createServer();
  const { port } = await listenOn(server, options.port ?? 0, host);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const site: Site = { url, apiUrl: `${url}/api/v3`, reposDir, token: options.token, pulls: new PullStore(), writeKey, webhooks: [] };
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
    createBareRepo: (owner, name, defaultBranch = 'main') => createBareRepo(reposDir, owner, name, defaultBranch, writeKey),
    writerEnv: writerEnv(writeKey),
    addWebhook: (target) => void site.webhooks.push(target),
    async hasRepo(owner, name) {
      const repo = repoAt(reposDir, owner, name);
      return repo !== null && (await repoExists(repo));
    },
  };
}

async function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, site: Site): Promise<void> {
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt + 1);
  const isApi = rawPath === '/api/v3' || rawPath.startsWith('/api/v3/');

  const segments = decodeSegments(rawPath);
  if (!segments) return sendText(res, 400, 'Bad request path\n');
  const isGit = !isApi && segments.length >= 3 && withoutGitSuffix(segments[1]!) !== null;
  // Pages are for people, who have no token: open to this machine. Git and the API always need the token;
  // a page's form (merge, close) asks for it in the form.
  const isPageForm = !isApi && !isGit && req.method === 'POST' && segments.length === 5 && segments[2] === 'pull' && isPullAction(segments[4]);
  const fromThisMachine = isReadFromThisMachine(req) || (isPageForm && isLoopbackHost(req));
  const admission = !isApi && !isGit && fromThisMachine ? { remoteUser: undefined } : admit(req, res, site.token, isApi);
  if (!admission) return;

  if (isApi) return serveApi(req, res, site, segments.slice(2), query, admission.remoteUser);
  if (segments.length === 0) return sendHtml(req, res, await renderIndexPage(site));
  if (rawPath === DIFF_STYLESHEET_PATH) return sendStylesheet(req, res);
  if (segments.length < 2) return sendText(res, 404, 'Not found\n');

  // `<owner>/<name>.git/<endpoint>` is git; `<owner>/<name>[/pull/<number>]` is a page.
  const [owner = '', second = '', ...rest] = segments;
  const gitRepoName = rest.length > 0 ? withoutGitSuffix(second) : null;
  const repo = repoAt(site.reposDir, owner, gitRepoName ?? second);
  if (!repo) return sendText(res, 400, 'Invalid repository name\n');
  if (!(await repoExists(repo))) return sendText(res, 404, 'Repository not found\n');

  if (gitRepoName !== null) {
    const endpoint = rest.join('/');
    if (!isGitEndpoint(endpoint)) return sendText(res, 404, 'Not found\n');
    return serveGit(req, res, { reposDir: site.reposDir, repo, endpoint, query, remoteUser: admission.remoteUser, writeKey: site.writeKey });
  }
  if (rest.length === 0) return sendHtml(req, res, await renderRepoPage(site, repo));
  const [kind, number] = rest;
  if (kind === 'compare' && rest.length >= 2) return serveCompare(req, res, repo, rest.slice(1).join('/'));
  if (kind === 'blob' && rest.length >= 3) {
    const page = await blobPage(repo, rest.slice(1));
    return page === null ? sendText(res, 404, 'File not found at that ref\n') : sendHtml(req, res, page);
  }
  const pullNumber = parsePullNumber(number);
  if (rest.length === 3 && kind === 'pull' && pullNumber !== null && isPullAction(rest[2])) return servePullAction(req, res, site, repo, pullNumber, rest[2]);
  if (rest.length === 2 && kind === 'pull' && pullNumber !== null) {
    const page = await renderPullPage(site, repo, pullNumber);
    return page === null ? sendText(res, 404, 'Pull request not found\n') : sendHtml(req, res, page);
  }
  return sendText(res, 404, 'Not found\n');
}

/**
 * A read of a page from this machine: GET or HEAD, addressed by a loopback name. The Host check keeps a
 * DNS-rebinding page elsewhere from reading repository pages through a visitor's browser.
 */
function isReadFromThisMachine(req: http.IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && isLoopbackHost(req);
}

function isLoopbackHost(req: http.IncomingMessage): boolean {
  const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host.endsWith('.localhost');
}

/** `<base>...<head>` (refs may hold "/"), as a page, or as the raw diff with `.diff` (as GitHub's). */
async function serveCompare(req: http.IncomingMessage, res: http.ServerResponse, repo: Repo, spec: string): Promise<void> {
  const raw = spec.endsWith('.diff');
  const [base, head, ...more] = (raw ? spec.slice(0, -'.diff'.length) : spec).split('...');
  if (!base || !head || more.length > 0) return sendText(res, 404, 'Compare two refs as <base>...<head>\n');
  if (!raw) {
    const page = await renderComparePage(repo, base, head);
    return page === null ? sendText(res, 404, 'No such refs to compare\n') : sendHtml(req, res, page);
  }
  const diff = await rawCompareDiff(repo, base, head);
  if (diff === null) return sendText(res, 404, 'No such refs to compare\n');
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(req.method === 'HEAD' ? undefined : diff);
}

/** `blob/<ref>/<path>` where the ref may itself hold "/": the shortest prefix that names a commit is the ref. */
async function blobPage(repo: Repo, segments: string[]): Promise<string | null> {
  for (let split = 1; split < segments.length; split++) {
    const page = await renderBlobPage(repo, segments.slice(0, split).join('/'), segments.slice(split).join('/'));
    if (page !== null) return page;
  }
  return null;
}

let stylesheet: Promise<string> | null = null;

function sendStylesheet(req: http.IncomingMessage, res: http.ServerResponse): void {
  stylesheet ??= fs.readFile(require.resolve('diff2html/bundles/css/diff2html.min.css'), 'utf8');
  stylesheet.then(
    (css) => {
      res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'max-age=3600' });
      res.end(req.method === 'HEAD' ? undefined : css);
    },
    (error: unknown) => failUnexpectedly(res, error),
  );
}

function failUnexpectedly(res: http.ServerResponse, error: unknown): void {
  console.error(`forge: ${error instanceof Error ? error.message : String(error)}`);
  if (res.headersSent) return void res.destroy();
  sendText(res, 500, 'Internal forge error\n');
}
