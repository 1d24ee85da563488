// Reading an API request's JSON body and checking it against a schema.
import type http from 'node:http';
import type { z } from 'zod';
import { tooLarge, unparsableJson, validationFailed } from './api-errors';

const MAX_JSON_BYTES = 1024 * 1024;

/** The parsed body; `{}` when it is empty. */
export function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
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
        reject(unparsableJson());
      }
    });
  });
}

/** `input` as `schema` reads it, or a 422 naming the first problem. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, resource = 'PullRequest'): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw validationFailed(issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid request body', resource);
}
