// Slack as one of the service's chat platforms (im-adapters/chat-platforms.ts): its settings and both halves.
import type { ChatPlatformModule } from '../chat-platforms';
import { portFrom } from '../core/settings';
import { startSlackAdapter } from './adapter';
import { SlackChannel } from './channel';
import { SlackFiles } from './documents';

const DEFAULT_PORT = 8743;

export const slackPlatform: ChatPlatformModule = {
  platform: 'slack',
  label: 'Slack',
  settingNames: ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET'],
  configure(env) {
    const botToken = env.SLACK_BOT_TOKEN || undefined;
    if (!botToken) return undefined;
    const socketMode = env.SLACK_SOCKET_MODE === 'true';
    if (env.SLACK_SOCKET_MODE && !['true', 'false'].includes(env.SLACK_SOCKET_MODE)) throw new Error(`Configuration error: SLACK_SOCKET_MODE must be true or false, not "${env.SLACK_SOCKET_MODE}"`);
    const appToken = env.SLACK_APP_TOKEN || undefined;
    const signingSecret = env.SLACK_SIGNING_SECRET || undefined;
    if (socketMode && !appToken) throw new Error('Configuration error: SLACK_SOCKET_MODE=true needs SLACK_APP_TOKEN (an app-level token with connections:write)');
    if (!socketMode && !signingSecret) throw new Error('Configuration error: SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not (needed to verify Slack requests)');
    const port = portFrom(env.SLACK_PORT, 'SLACK_PORT', DEFAULT_PORT);
    return {
      channel: () => new SlackChannel({ token: botToken }),
      documents: () => new SlackFiles({ token: botToken }),
      startAdapter: (deps) => startSlackAdapter({ ...deps, botToken, signingSecret: signingSecret ?? '', port, ...(socketMode ? { socketMode: { appToken: appToken! } } : {}) }),
    };
  },
};
