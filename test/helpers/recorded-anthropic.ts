// Serves recorded Messages API exchanges over local HTTP, in order, so the real Anthropic adapter (the
// SDK with its retries, headers and parsing) runs against them; records every request it receives.
// Before serving, it holds each request to the documented rules (see messages-api-rules.ts) and answers a
// broken one as the API does, with a 400, without using up an exchange.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { brokenRule, ServedTurns } from './messages-api-rules';

export interface RecordedExchange {
  /** Shown in failures: which step of the recording this is. */
  note?: string;
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  /** Answer nothing for this long (a model API that hangs), then close the connection. */
  hangMs?: number;
}

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: {
    model: string;
    max_tokens: number;
    thinking?: { type: string; display?: string };
    output_config?: { effort?: string };
    system: { type: string; text: string; cache_control?: unknown }[];
    tools: { name: string; cache_control?: unknown }[];
    messages: { role: string; content: { type: string; cache_control?: unknown; is_error?: boolean; content?: string; text?: string; thinking?: string; signature?: string; data?: string }[] }[];
  };
}

export interface RecordedAnthropic {
  baseURL: string;
  received: ReceivedRequest[];
  /** Requests answered with a 400 because they broke a documented rule, and which rule. */
  refused: { request: ReceivedRequest; rule: string }[];
  /** Exchanges not served yet. */
  pending(): number;
  /** Serves these next (the API recovering, or failing again). */
  replace(exchanges: RecordedExchange[]): void;
  close(): Promise<void>;
}

export async function loadRecording(name: string): Promise<RecordedExchange[]> {
  return JSON.parse(await fs.readFile(path.join(__dirname, '..', 'fixtures', 'anthropic', `${name}.json`), 'utf8')) as RecordedExchange[];
}

export async function serveRecording(exchanges: RecordedExchange[]): Promise<RecordedAnthropic> {
  const queue = [...exchanges];
  const received: ReceivedRequest[] = [];
  const refused: RecordedAnthropic['refused'] = [];
  const served = new ServedTurns();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ReceivedRequest = { path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') };
      received.push(request);
      const rule = brokenRule(request.body, served);
      if (rule) {
        refused.push({ request, rule });
        res.writeHead(400, { 'content-type': 'application/json', 'request-id': `req_refused_${received.length}` });
        res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: rule } }));
        return;
      }
      const next = queue.shift();
      if (!next) {
        res.writeHead(500, { 'content-type': 'application/json', 'x-should-retry': 'false' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'the recording has no more exchanges' } }));
        return;
      }
      if (next.hangMs) {
        setTimeout(() => res.destroy(), next.hangMs);
        return;
      }
      if (next.status === 200) served.remember(request.body, (next.body as { content: unknown[] }).content);
      res.writeHead(next.status, { 'content-type': 'application/json', 'request-id': `req_recorded_${received.length}`, ...next.headers });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    received,
    refused,
    pending: () => queue.length,
    replace: (next) => queue.splice(0, queue.length, ...next),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
