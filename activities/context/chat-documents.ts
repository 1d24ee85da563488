// Files and documents that live in a chat platform rather than at a public address: a file attached to a
// Slack message, a file sent in a Lark chat, a Lark doc linked in a message. They are read with the app's
// own token through the platform's API (never fetched like a link, and the token never leaves for another
// host), by a reader the platform's folder provides (im-adapters/<platform>/documents.ts). The adapters
// put a reference to the file in the thread's text ("Attached spec.yaml: slack-file:F0123"), so the run
// reads it as it reads any link: by a pass of context intake, stored by hash, retried from the store.
import { pageKindOfType, type FetchedPage, type FetchLimits, type PageKind } from './fetch-page';

export interface ChatDocumentReader {
  /** As notes name it ("Slack"). */
  platform: string;
  /** Whether this reader reads this reference or link. */
  reads(reference: string): boolean;
  /** The document as text; throws UnreadableLinkError saying why it cannot be read. */
  read(reference: string, limits: FetchLimits, signal?: AbortSignal): Promise<FetchedPage>;
}

/** A file in a chat, as the adapters write it into the thread's text: `<platform>-file:<id>`. */
export function chatFileReference(platform: string, id: string): string {
  return `${platform}-file:${id}`;
}

/** The platform a chat file reference names ("slack" for slack-file:F0123), or null for anything else. */
export function chatFilePlatform(reference: string): string | null {
  return /^([a-z]+)-file:/.exec(reference)?.[1] ?? null;
}

/** A thread line announcing an attached file (the same words as the web chat's). */
export function attachedLine(name: string, reference: string): string {
  return `Attached ${name.replace(/[\r\n:]+/g, ' ').trim() || 'file'}: ${reference}`;
}

const BY_EXTENSION: [RegExp, PageKind][] = [
  [/\.(ya?ml)$/i, 'yaml'],
  [/\.json$/i, 'json'],
  [/\.(md|markdown)$/i, 'markdown'],
  [/\.(txt|text|csv|log)$/i, 'text'],
  [/\.html?$/i, 'html'],
];

/**
 * What a file is, by its name first (chat platforms label YAML and Markdown files text/plain or
 * application/octet-stream), then by its type; null for anything this service does not read.
 */
export function fileKind(name: string, contentType: string): PageKind | null {
  const byName = BY_EXTENSION.find(([pattern]) => pattern.test(name))?.[1];
  if (byName) return byName;
  return pageKindOfType(contentType);
}

/** Reads at most `maxBytes` of a body; the rest is left unread. */
export async function readCapped(body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<{ bytes: Buffer; truncatedAt?: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const room = maxBytes - size;
    if (chunk.length > room) {
      chunks.push(Buffer.from(chunk.subarray(0, room)));
      return { bytes: Buffer.concat(chunks), truncatedAt: maxBytes };
    }
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks) };
}

/** The bytes as text, or null for a binary file (a NUL byte); a multi-byte character cut at the end is dropped. */
export function textOf(bytes: Buffer): string | null {
  if (bytes.includes(0)) return null;
  return bytes.toString('utf8').replace(/\uFFFD$/, '');
}
