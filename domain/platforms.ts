// The places a change request can come from, one line each. A new chat platform is a folder under
// im-adapters/ and a line here; nothing else (the workflow least of all) names a platform.
export const PLATFORMS = {
  /** The command line: people follow a run with `show` and `watch`. */
  cli: { postsCards: false },
  /** The built-in web chat: the page draws the state itself. */
  web: { postsCards: false },
  /** The worker posts and updates the run's card in the thread (im-adapters/slack/channel.ts). */
  slack: { postsCards: true },
  /** As Slack (im-adapters/lark/channel.ts). */
  lark: { postsCards: true },
} as const satisfies Record<string, { postsCards: boolean }>;

export type Platform = keyof typeof PLATFORMS;
export const PLATFORM_NAMES = Object.keys(PLATFORMS) as [Platform, ...Platform[]];

/** Whether the service posts the run's card in the conversation (else the platform draws the state itself). */
export function postsCards(platform: Platform): boolean {
  return PLATFORMS[platform].postsCards;
}
