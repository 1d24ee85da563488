import type { PullStore } from './pulls-store';
import type { WebhookTarget } from './webhooks';

/** The running forge, as the request handlers see it. */
export interface Site {
  url: string;
  apiUrl: string;
  reposDir: string;
  token: string | undefined;
  pulls: PullStore;
  /** Lets the git processes the forge runs update refs (ref-guard.ts). */
  writeKey: string;
  /** Where pull request changes are delivered (webhooks.ts). */
  webhooks: WebhookTarget[];
}
