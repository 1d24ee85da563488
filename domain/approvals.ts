// Separation of duties (`policy.deciders: owners-not-requester`): publishing needs, for each changed
// repository, an approval from one of its owners who is not the person who asked for the change. The
// rules are pure, so the workflow's input judge and the card read the same ones.
import { isOwner, ownerHandles, type Catalog } from './catalog-schema';
import type { ApprovalsNeeded, RunState } from './contracts';

/** What a review needs under the policy: each changed repository, and the owners who may approve it. */
export function approvalsNeeded(state: RunState, catalog: Catalog): ApprovalsNeeded {
  const changed = state.confirmed.filter((id) => (state.repos[id]?.commits.length ?? 0) > 0);
  return {
    needed: changed.map((repo) => ({ repo, owners: ownerHandles(catalog, repo).filter((p) => p !== state.request.requester) })),
    given: [],
  };
}

/** The repositories still waiting for an approval. */
export function stillNeeded(approvals: ApprovalsNeeded): ApprovalsNeeded['needed'] {
  const approved = new Set(approvals.given.flatMap((g) => g.repos));
  return approvals.needed.filter((n) => !approved.has(n.repo));
}

/** "an owner of ui-kit (frank) and of web-app (bob)", or who is missing when nobody may approve one. */
export function whoMayApprove(needed: ApprovalsNeeded['needed'], requester: string): string {
  const parts = needed.map((n) => (n.owners.length ? `${n.repo} (${n.owners.join(' or ')})` : `${n.repo} (no owner other than ${requester}: ask for an owner to be added in the catalog)`));
  return parts.length ? `an owner of ${parts.join(' and of ')}` : 'nobody: every repository is approved';
}

/** Why `by` may not approve now, or the repositories their approval covers. */
export function judgeApproval(by: string, state: RunState, catalog: Catalog): { refused: string } | { covers: string[] } {
  const approvals = state.approvals;
  if (!approvals) return { covers: [] };
  const open = stillNeeded(approvals);
  const requester = state.request.requester;
  if (by === requester) return { refused: `${by} asked for this change, so another person must approve it (policy owners-not-requester): ${whoMayApprove(open, requester)}` };
  const covers = open.filter((n) => isOwner(catalog, by, n.repo)).map((n) => n.repo);
  if (covers.length) return { covers };
  const alreadyApproved = approvals.needed.filter((n) => isOwner(catalog, by, n.repo)).map((n) => n.repo);
  return {
    refused: alreadyApproved.length
      ? `${alreadyApproved.join(', ')} ${alreadyApproved.length > 1 ? 'are' : 'is'} already approved; still needed: ${whoMayApprove(open, requester)}`
      : `${by} owns none of the changed repositories; an approval must come from ${whoMayApprove(open, requester)}`,
  };
}
