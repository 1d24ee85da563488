// Where each step runs. The workflow worker only decides; the steps run on activity workers of three
// kinds, each polling its own task queue with its own concurrency, so a chat post never waits behind an
// npm install and an agent's model calls never starve a check. Each kind scales on its own: start more
// processes of a role, on any machine (README: Scaling). Imported by workflow code, so nothing here may
// touch Node.
import type { Activities } from '../activities';

export const WORKER_ROLES = ['workflows', 'agent', 'work', 'quick'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];
export type ActivityRole = Exclude<WorkerRole, 'workflows'>;

/** Every step's role. The mapped type makes a new activity without a role a compile error. */
export const ACTIVITY_ROLES: { readonly [Name in keyof Activities]: ActivityRole } = {
  gatherContext: 'agent',
  proposeRepositories: 'agent',
  editRepository: 'agent',
  writeNarrative: 'agent',
  readApiShapes: 'work',
  runChecks: 'work',
  publishPackage: 'work',
  bumpDependencyRanges: 'work',
  deployPreview: 'work',
  removePreviews: 'work',
  loadCatalog: 'quick',
  openPullRequest: 'quick',
  linkPullRequests: 'quick',
  readPullRequests: 'quick',
  readReviewFeedback: 'quick',
  findRelease: 'quick',
  notifyConversation: 'quick',
  publishCard: 'quick',
};

/** The runs poll the base queue (the one a run is started on); each activity role polls base-role. */
export function taskQueueFor(base: string, role: WorkerRole): string {
  return role === 'workflows' ? base : `${base}-${role}`;
}
