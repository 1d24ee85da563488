// Calls the preview server's control API (previews/control-api.ts) from the deploy activities and tests.
// node:http rather than fetch: a start waits for the service's health for as long as its timeout allows,
// which may pass fetch's fixed five-minute wait for response headers. The token goes in the request header
// only, never into an error message.
import http from 'node:http';
import https from 'node:https';
import type { ServiceRequest } from './control-api';
import type { ServiceView } from './services';

export interface PreviewHost {
  /** The preview server's address, e.g. http://127.0.0.1:8741. */
  url: string;
  token: string;
}

export interface ServiceAnswer {
  status: 'ready' | 'failed';
  /** The address on the preview server (its listening address, not necessarily the public base URL). */
  url: string;
  output: string;
}

/** The control API answered, but not with a success: a 4xx says the request was wrong (or the token). */
export class PreviewHostRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PreviewHostRefusal';
  }
}

export async function startServiceOnHost(host: PreviewHost, runId: string, repo: string, body: ServiceRequest, signal?: AbortSignal): Promise<ServiceAnswer> {
  return (await call(host, 'PUT', servicePath(runId, repo), body, signal)) as ServiceAnswer;
}

/** Stops the service and deletes its folder; true when something was running. Stopping nothing is fine. */
export async function stopServiceOnHost(host: PreviewHost, runId: string, repo: string, signal?: AbortSignal): Promise<boolean> {
  return ((await call(host, 'DELETE', servicePath(runId, repo), undefined, signal)) as { stopped: boolean }).stopped;
}

export async function listServicesOnHost(host: PreviewHost, signal?: AbortSignal): Promise<ServiceView[]> {
  return ((await call(host, 'GET', '/.host/services', undefined, signal)) as { services: ServiceView[] }).services;
}

function servicePath(runId: string, repo: string): string {
  return `/.host/services/${encodeURIComponent(runId)}/${encodeURIComponent(repo)}`;
}

function call(host: PreviewHost, method: string, requestPath: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const url = new URL(requestPath, host.url.replace(/\/+$/, '') + '/');
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const headers: http.OutgoingHttpHeaders = { Authorization: `Bearer ${host.token}`, Accept: 'application/json' };
  if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': payload.length });
  const where = `${method} ${url.origin}${url.pathname}`;
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not the control API (a proxy in between, say): the status says enough.
        }
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300 && parsed !== null) return resolve(parsed);
        const reason = (parsed as { error?: string } | null)?.error ?? text.slice(0, 300);
        reject(new PreviewHostRefusal(status, `the preview server refused ${where}: HTTP ${status} ${reason}`.trim()));
      });
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      reject(signal?.aborted ? error : new Error(`the preview server's control API is unreachable (${where}): ${error.code ?? error.message}`));
    });
    request.end(payload);
  });
}
