// The worker's reader of Feishu/Lark files and docs (activities/context/chat-documents.ts), through the open
// API with the app's tenant token:
// - a file sent in a run's thread (`lark-file:<message_id>/<file_key>`, written by the adapter): the
//   message resource download (scope im:resource);
// - a Lark doc linked in a message (https://<tenant>.feishu.cn/docx/<id>, or larksuite.com): its title and
//   its plain text from the docx raw-content API (scope docx:document:readonly; the doc must be shared with
//   the app). Such a link is never fetched as a web page: the page needs a person's sign-in.
import type { Client } from '@larksuiteoapi/node-sdk';
import type { Readable } from 'node:stream';
import { attachedLine, chatFileReference, fileKind, readCapped, textOf, type ChatDocumentReader } from '../../activities/context/chat-documents';
import { UnreadableLinkError, type FetchedPage, type FetchLimits } from '../../activities/context/fetch-page';
import { callLark, larkClient, toLarkApiError, type LarkAppOptions } from './lark-api';

const FILE_REFERENCE = /^lark-file:(om_[A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)$/;
const DOC_LINK = /^https:\/\/[a-z0-9-]+\.(feishu\.cn|larksuite\.com)\/docx\/([A-Za-z0-9]+)\/?(?:[?#].*)?$/;
const WIKI_LINK = /^https:\/\/[a-z0-9-]+\.(feishu\.cn|larksuite\.com)\/wiki\//;

/** The line the Lark adapter writes into the thread for a file sent in it. */
export function larkAttachedLine(messageId: string, file: { fileKey: string; fileName?: string | undefined }): string {
  return attachedLine(file.fileName || file.fileKey, chatFileReference('lark', `${messageId}/${file.fileKey}`));
}

export class LarkDocuments implements ChatDocumentReader {
  readonly platform = 'Feishu/Lark';
  private readonly client: Client;

  constructor(options: LarkAppOptions) {
    this.client = larkClient(options);
  }

  reads(reference: string): boolean {
    return FILE_REFERENCE.test(reference) || DOC_LINK.test(reference) || WIKI_LINK.test(reference);
  }

  read(reference: string, limits: FetchLimits, signal?: AbortSignal): Promise<FetchedPage> {
    const file = FILE_REFERENCE.exec(reference);
    if (file) return this.messageFile(reference, file[1]!, file[2]!, limits, signal);
    const doc = DOC_LINK.exec(reference);
    if (doc) return this.doc(reference, doc[2]!, limits);
    return Promise.reject(new UnreadableLinkError(reference, 'Lark wiki pages are not read yet; link the doc itself (its /docx/ address, from "Copy link" in the doc)'));
  }

  private async messageFile(reference: string, messageId: string, fileKey: string, limits: FetchLimits, signal?: AbortSignal): Promise<FetchedPage> {
    const resource = await withinTime(this.client.im.v1.messageResource.get({ path: { message_id: messageId, file_key: fileKey }, params: { type: 'file' } }), limits.timeoutMs).catch((error: unknown) => {
      throw new UnreadableLinkError(reference, toLarkApiError('im.messageResource.get', error).message);
    });
    const headers = (resource.headers ?? {}) as Record<string, string | undefined>;
    const name = fileNameOf(headers['content-disposition']) ?? fileKey;
    const kind = fileKind(name, headers['content-type'] ?? '');
    const stream: Readable = resource.getReadableStream();
    if (!kind) {
      stream.destroy();
      throw new UnreadableLinkError(reference, `${name} is ${headers['content-type'] || 'of an unknown type'}, not a document this service reads (HTML, Markdown, text, JSON or YAML)`);
    }
    signal?.addEventListener('abort', () => stream.destroy(), { once: true });
    const { bytes, truncatedAt } = await readCapped(stream, limits.maxBytes);
    stream.destroy();
    const body = textOf(bytes);
    if (body === null) throw new UnreadableLinkError(reference, `${name} is a binary file`);
    return { url: reference, finalUrl: reference, kind, body, title: name, ...(truncatedAt !== undefined ? { truncatedAt } : {}) };
  }

  private async doc(link: string, documentId: string, limits: FetchLimits): Promise<FetchedPage> {
    try {
      const info = await callLark('docx.document.get', () => withinTime(this.client.docx.v1.document.get({ path: { document_id: documentId } }), limits.timeoutMs));
      const raw = await callLark('docx.document.rawContent', () => withinTime(this.client.docx.v1.document.rawContent({ path: { document_id: documentId }, params: { lang: 0 } }), limits.timeoutMs));
      const content = raw.data?.content ?? '';
      // The API gives the whole text at once; it is cut at the same limit as any page.
      const bytes = Buffer.from(content, 'utf8');
      const cut = bytes.length > limits.maxBytes;
      const body = cut ? bytes.subarray(0, limits.maxBytes).toString('utf8').replace(/\uFFFD$/, '') : content;
      return { url: link, finalUrl: link, kind: 'text', body, title: info.data?.document?.title?.trim() || `Lark doc ${documentId}`, ...(cut ? { truncatedAt: limits.maxBytes } : {}) };
    } catch (error) {
      throw new UnreadableLinkError(link, error instanceof Error ? error.message : String(error));
    }
  }
}

/** The SDK's calls take no timeout: the read gives up on them after the fetch limit's time. */
function withinTime<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Lark gave no answer within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}

/** The file name in a Content-Disposition header (RFC 6266: filename* first). */
function fileNameOf(disposition: string | undefined): string | null {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition)?.[1];
  if (extended) {
    try {
      return decodeURIComponent(extended.trim());
    } catch {
      // fall through to the plain name
    }
  }
  return /filename\s*=\s*"?([^";]+)"?/.exec(disposition)?.[1]?.trim() ?? null;
}
