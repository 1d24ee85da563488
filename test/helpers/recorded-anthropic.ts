// Serves recorded Messages API exchanges over local HTTP, in order, so the real Anthropic adapter (the
// SDK with its retries, headers and parsing) runs against them; records every request it receives.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

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
    system: { type: string; text: string; cache_control?: unknown }[];
    tools: { name: string; cache_control?: unknown }[];
    messages: { role: string; content: { type: string; cache_control?: unknown; is_error?: boolean; content?: string; text?: string }[] }[];
  };
}

export interface RecordedAnthropic {
  baseURL: string;
  received: ReceivedRequest[];
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
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') });
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
      res.writeHead(next.status, { 'content-type': 'application/json', 'request-id': `req_recorded_${received.length}`, ...next.headers });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    received,
    pending: () => queue.length,
    replace: (next) => queue.splice(0, queue.length, ...next),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
