// The chat platforms the service connects to, one entry each. A platform is its folder (adapter, channel,
// cards) and its `platform.ts`, which reads its own settings and knows how to start both halves; adding one
// means that folder, a line in domain/platforms.ts and a line here. The worker and `npm start` only walk
// this list.
import type { ChatDocumentReader } from '../activities/context/chat-documents';
import type { ConversationChannel } from '../activities/notify';
import type { PlatformWithPeople } from '../domain/platforms';
import type { InboundDeps } from './core/router';
import { larkPlatform } from './lark/platform';
import { slackPlatform } from './slack/platform';

export interface RunningAdapter {
  /** Where the platform sends its requests (absent when it connects out, e.g. Slack's Socket Mode). */
  url?: string;
  close(): Promise<void>;
}

/** A platform whose settings were found: the worker's channel, and the adapter `npm start` runs. */
export interface ConfiguredPlatform {
  channel(): ConversationChannel;
  /** The worker's reader of the platform's files and docs, for context intake. */
  documents(): ChatDocumentReader;
  startAdapter(deps: InboundDeps): Promise<RunningAdapter>;
}

export interface ChatPlatformModule {
  platform: PlatformWithPeople;
  /** As the start-up banner names it. */
  label: string;
  /** What to set, for the banner of a service without it. */
  settingNames: string[];
  /** Its settings from the environment: undefined when none is set; throws, saying what is missing, when some are. */
  configure(env: NodeJS.ProcessEnv): ConfiguredPlatform | undefined;
}

export const CHAT_PLATFORMS: readonly ChatPlatformModule[] = [slackPlatform, larkPlatform];

/** The platforms this environment configures, with their modules. */
export function configuredPlatforms(env: NodeJS.ProcessEnv = process.env): { module: ChatPlatformModule; configured: ConfiguredPlatform }[] {
  return CHAT_PLATFORMS.flatMap((module) => {
    const configured = module.configure(env);
    return configured ? [{ module, configured }] : [];
  });
}
