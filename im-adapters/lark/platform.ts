// Feishu/Lark as one of the service's chat platforms (im-adapters/chat-platforms.ts): its settings and both halves.
import type { ChatPlatformModule } from '../chat-platforms';
import { portFrom } from '../core/settings';
import { startLarkAdapter } from './adapter';
import { LarkChannel } from './channel';
import { LarkDocuments } from './documents';

const DEFAULT_PORT = 8744;
const REQUIRED = ['LARK_APP_ID', 'LARK_APP_SECRET', 'LARK_VERIFICATION_TOKEN', 'LARK_ENCRYPT_KEY'] as const;

export const larkPlatform: ChatPlatformModule = {
  platform: 'lark',
  label: 'Feishu/Lark',
  settingNames: [...REQUIRED],
  configure(env) {
    const given = REQUIRED.map((name) => env[name] || undefined);
    if (given.every((value) => value === undefined)) return undefined;
    const missing = REQUIRED.filter((_, i) => given[i] === undefined);
    if (missing.length) throw new Error(`Configuration error: Feishu/Lark settings are incomplete: ${missing.join(', ')} missing`);
    const [appId, appSecret, verificationToken, encryptKey] = given as string[];
    const domain = env.LARK_DOMAIN || undefined;
    if (domain !== undefined && !URL.canParse(domain)) throw new Error(`Configuration error: LARK_DOMAIN must be a URL such as https://open.larksuite.com, not "${domain}"`);
    const port = portFrom(env.LARK_PORT, 'LARK_PORT', DEFAULT_PORT);
    return {
      channel: () => new LarkChannel({ appId: appId!, appSecret: appSecret!, ...(domain ? { domain } : {}) }),
      documents: () => new LarkDocuments({ appId: appId!, appSecret: appSecret!, ...(domain ? { domain } : {}) }),
      startAdapter: (deps) => startLarkAdapter({ ...deps, appId: appId!, appSecret: appSecret!, verificationToken: verificationToken!, encryptKey: encryptKey!, port, ...(domain ? { domain } : {}) }),
    };
  },
};
