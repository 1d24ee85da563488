// The places a change request can come from, one line each. A new chat platform is a folder under
// im-adapters/ and a line here; nothing else (the workflow least of all) names a platform.
export const PLATFORMS = {
  /** The command line: people follow a run with `show` and `watch`; they say who they are (`--as`). */
  cli: { postsCards: false, personId: null },
  /** The built-in web chat: the page draws the state itself; people pick who they are. */
  web: { postsCards: false, personId: null },
  /** The worker posts and updates the run's card in the thread (im-adapters/slack/channel.ts). */
  slack: { postsCards: true, personId: 'Slack member id, e.g. U024BE7LH' },
  /** As Slack (im-adapters/lark/channel.ts). */
  lark: { postsCards: true, personId: 'Lark/Feishu open_id, e.g. ou_7d8a6e6df7621556ce0d21922b676706ccs' },
} as const satisfies Record<string, { postsCards: boolean; personId: string | null }>;

export type Platform = keyof typeof PLATFORMS;
export const PLATFORM_NAMES = Object.keys(PLATFORMS) as [Platform, ...Platform[]];

/** Platforms whose users the catalog maps to people (`people.<handle>.<platform>`: what `personId` says). */
export type PlatformWithPeople = { [P in Platform]: (typeof PLATFORMS)[P]['personId'] extends null ? never : P }[Platform];
export const PLATFORMS_WITH_PEOPLE = PLATFORM_NAMES.filter((name) => PLATFORMS[name].personId !== null) as PlatformWithPeople[];

/** Whether the service posts the run's card in the conversation (else the platform draws the state itself). */
export function postsCards(platform: Platform): boolean {
  return PLATFORMS[platform].postsCards;
}
