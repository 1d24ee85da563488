// Git smart HTTP through git's own `git http-backend` (CGI), so clients meet a real git server.
import { spawn } from 'node:child_process';
import { writerEnv } from './ref-guard';
import type http from 'node:http';
import type { Readable } from 'node:stream';
import type { Repo } from './repos';
import { sendText } from './responses';

const GIT_ENDPOINTS = new Set(['info/refs', 'git-upload-pack', 'git-receive-pack']);
const MAX_CGI_HEADER_BYTES = 64 * 1024;

export interface GitRequest {
  reposDir: string;
  repo: Repo;
  /** The path after `<name>.git/`, e.g. `info/refs`. */
  endpoint: string;
  query: string;
  remoteUser: string | undefined;
  /** The forge's ref write key (ref-guard.ts): a push that passed auth.ts may update refs. */
  writeKey: string;
}

export function isGitEndpoint(endpoint: string): boolean {
  return GIT_ENDPOINTS.has(endpoint);
}

export function serveGit(req: http.IncomingMessage, res: http.ServerResponse, git: GitRequest): void {
  // A minimal environment: the forge's own secrets (and any GIT_DIR of the host process) stay out of git.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GIT_PROJECT_ROOT: git.reposDir,
    GIT_HTTP_EXPORT_ALL: '1',
    // The forge's token check (auth.ts) decides who may push, so receive-pack is on for every repository, even for
    // anonymous callers of a forge without a token (http-backend would otherwise demand REMOTE_USER).
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'true',
    PATH_INFO: `/${git.repo.owner}/${git.repo.name}.git/${git.endpoint}`,
    REQUEST_METHOD: req.method ?? 'GET',
    QUERY_STRING: git.query,
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    ...writerEnv(git.writeKey),
  };
  if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  const protocol = req.headers['git-protocol'];
  if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;
  if (git.remoteUser !== undefined) env.REMOTE_USER = git.remoteUser;

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
