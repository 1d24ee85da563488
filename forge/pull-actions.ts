// The pull request page's own buttons: merge and close, as a person does them on GitHub. The pages are
// open to this machine, so the form asks for the forge's token (FORGE_TOKEN; `.data/forge-token` under
// `npm start`), and only a loopback address may post it. What they do is the REST API's own merge and update.
import type http from 'node:http';
import { ApiError } from './api-errors';
import { isForgeToken } from './auth';
import type { Repo } from './repos';
import { mergePull, updatePull } from './rest-api';
import { sendText } from './responses';
import type { Site } from './site';

const MAX_FORM_BYTES = 4096;

export type PullAction = 'merge' | 'close';

export function isPullAction(segment: string | undefined): segment is PullAction {
  return segment === 'merge' || segment === 'close';
}

export async function servePullAction(req: http.IncomingMessage, res: http.ServerResponse, site: Site, repo: Repo, number: number, action: PullAction): Promise<void> {
  if (req.method !== 'POST') {
    res.writeHead(405, { Allow: 'POST' });
    return void res.end();
  }
  const form = await readForm(req);
  if (form === null) return sendText(res, 413, 'The form is too large\n');
  if (!isForgeToken(form.get('token') ?? '', site.token)) return sendText(res, 401, "That is not the forge's token: use FORGE_TOKEN, or under npm start the contents of .data/forge-token\n");
  try {
    if (action === 'merge') await mergePull(site, repo, number, {});
    else await updatePull(site, repo, number, { state: 'closed' });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const body = error.body as { message?: string; errors?: { message?: string }[] };
    return sendText(res, error.status, `${[body.message, ...(body.errors ?? []).map((e) => e.message)].filter(Boolean).join(': ')}\n`);
  }
  // Back to the page, which shows the new state.
  res.writeHead(303, { Location: `/${repo.fullName}/pull/${number}` });
  res.end();
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
