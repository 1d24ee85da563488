// The worker's reader of files attached in Slack (activities/context/chat-documents.ts): `files.info` for
// the file's name, type, size and private download address, then the download with the bot token (Slack's
// files are private to the workspace; the app needs the files:read scope). The token goes only to Slack's
// own hosts: a download address anywhere else is refused, not followed.
import { webApi } from '@slack/bolt';
import { attachedLine, chatFileReference, fileKind, readCapped, textOf, type ChatDocumentReader } from '../../activities/context/chat-documents';
import { UnreadableLinkError, type FetchedPage, type FetchLimits } from '../../activities/context/fetch-page';
import { callSlack, SlackApiError } from './slack-errors';

export interface SlackFilesOptions {
  /** The bot token (xoxb-…), with files:read. */
  token: string;
  /** Where the Web API is; Slack's own unless a test or proxy says otherwise (its origin may serve downloads too). */
  slackApiUrl?: string;
}

const REFERENCE = /^slack-file:(F[A-Z0-9]{2,})$/;
/** Where Slack serves private files. */
const SLACK_FILE_ORIGINS = ['https://files.slack.com'];

/** The line a Slack adapter writes into the thread for an attached file. */
export function slackAttachedLine(file: { id: string; name?: string | null; title?: string | null }): string {
  return attachedLine(file.name || file.title || file.id, chatFileReference('slack', file.id));
}

export class SlackFiles implements ChatDocumentReader {
  readonly platform = 'Slack';
  private readonly client: InstanceType<typeof webApi.WebClient>;
  private readonly downloadOrigins: string[];

  constructor(private readonly options: SlackFilesOptions) {
    this.client = new webApi.WebClient(options.token, {
      ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl.endsWith('/') ? options.slackApiUrl : `${options.slackApiUrl}/` } : {}),
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logLevel: webApi.LogLevel.ERROR,
    });
    this.downloadOrigins = [...SLACK_FILE_ORIGINS, ...(options.slackApiUrl ? [new URL(options.slackApiUrl).origin] : [])];
  }

  reads(reference: string): boolean {
    return REFERENCE.test(reference);
  }

  async read(reference: string, limits: FetchLimits, signal?: AbortSignal): Promise<FetchedPage> {
    const id = REFERENCE.exec(reference)![1]!;
    const info = await callSlack('files.info', () => this.client.files.info({ file: id })).catch((error: unknown) => {
      throw new UnreadableLinkError(reference, error instanceof SlackApiError ? error.message : String(error));
    });
    const file = info.file;
    if (!file) throw new UnreadableLinkError(reference, 'Slack answered files.info without the file');
    const name = file.name || file.title || id;
    const kind = fileKind(name, file.mimetype ?? '');
    if (!kind) throw new UnreadableLinkError(reference, `${name} is ${file.pretty_type || file.mimetype || 'of an unknown type'}, not a document this service reads (HTML, Markdown, text, JSON or YAML)`);
    const address = file.url_private_download || file.url_private;
    if (!address) throw new UnreadableLinkError(reference, `Slack gave no download address for ${name} (is it an external file?)`);
    if (!this.downloadOrigins.includes(safeOrigin(address))) throw new UnreadableLinkError(reference, `Slack's download address for ${name} is not on a Slack file host; it is not fetched with the bot token`);

    const response = await fetch(address, {
      headers: { authorization: `Bearer ${this.options.token}` },
      // A redirect is Slack sending a sign-in page (no files:read) or another host: neither gets the token.
      redirect: 'manual',
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(limits.timeoutMs)]) : AbortSignal.timeout(limits.timeoutMs),
    }).catch((error: unknown) => {
      throw new UnreadableLinkError(reference, `downloading ${name} from Slack failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    if (response.status >= 300 && response.status < 400) throw new UnreadableLinkError(reference, `Slack redirected the download of ${name}; the app needs the files:read scope`);
    if (response.status !== 200 || !response.body) throw new UnreadableLinkError(reference, `Slack answered the download of ${name} with HTTP ${response.status}`);
    if (kind !== 'html' && /^text\/html/i.test(response.headers.get('content-type') ?? '')) {
      await response.body.cancel();
      throw new UnreadableLinkError(reference, `Slack answered the download of ${name} with a sign-in page; the app needs the files:read scope`);
    }
    const { bytes, truncatedAt } = await readCapped(response.body as AsyncIterable<Uint8Array>, limits.maxBytes);
    const body = textOf(bytes);
    if (body === null) throw new UnreadableLinkError(reference, `${name} is a binary file`);
    return { url: reference, finalUrl: file.permalink || reference, kind, body, title: name, ...(truncatedAt !== undefined ? { truncatedAt } : {}) };
  }
}

function safeOrigin(address: string): string {
  return URL.canParse(address) ? new URL(address).origin : '';
}
