// The activities a worker registers, bound to their dependencies. The workflow sees only these names.
import { maskCommandOutputWith } from './commands';
import { ApplicationFailure } from '@temporalio/activity';
import { CatalogError } from '../domain/catalog-loader';
import type { Catalog } from '../domain/catalog-schema';
import { ModelUnavailableError } from './agent/model';
import type { ActivityDeps } from './deps';
import { BranchMovedError } from './git/repository';
import { whileHeartbeating } from './heartbeat';
import { editRepository } from './edit-repository';
import { notifyConversation, publishCard } from './notify';
import { proposeRepositories } from './propose-repositories';
import { linkPullRequests, openPullRequest } from './pull-requests';
import { readPullRequests, readReviewFeedback } from './track-pull-requests';
import { findRelease } from './packages/find-release';
import { runChecks } from './run-checks';
import { bumpDependencyRanges } from './packages/bump-ranges';
import { publishPackage } from './packages/publish-package';
import { gatherContext } from './context/gather-context';
import { readApiShapes } from './context/repository-spec';
import type { GatherRequest, RepoSpecRequest } from '../domain/activity-contracts';
import type { BumpRangesRequest, CheckRequest, EditRequest, LinkRequest, NarrativeRequest, NotifyRequest, PreviewRequest, PublishCardRequest, ProposeRequest, PublishRequest, PullRequestRequest, RemovePreviewsRequest, ReleaseRequest, TrackRequest } from '../domain/activity-contracts';
import { deployPreview, removePreviews } from './previews';
import { writeNarrative } from './write-narrative';

/** Errors that no retry can fix become non-retryable failures with the same readable message. */
async function unretryable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ModelUnavailableError || error instanceof CatalogError || error instanceof BranchMovedError) {
      throw ApplicationFailure.nonRetryable(error.message, error.name);
    }
    throw error;
  }
}

export function createActivities(deps: ActivityDeps) {
  // Whatever a repository command prints is masked before anything stores or sends it.
  maskCommandOutputWith(deps.redact);
  return {
    loadCatalog: (): Promise<Catalog> => unretryable(() => deps.loadCatalog()),
    gatherContext: (request: GatherRequest) => unretryable(() => whileHeartbeating(() => gatherContext(deps, request))),
    readApiShapes: (request: RepoSpecRequest) => whileHeartbeating(() => readApiShapes(deps, request)),
    proposeRepositories: (request: ProposeRequest) => unretryable(() => whileHeartbeating(() => proposeRepositories(deps, request))),
    // Agent steps beat throughout: a slow clone, commit or push under load must not look like a dead worker.
    editRepository: (request: EditRequest) => unretryable(() => whileHeartbeating(() => editRepository(deps, request))),
    runChecks: (request: CheckRequest) => runChecks(deps, request),
    publishPackage: (request: PublishRequest) => publishPackage(deps, request),
    bumpDependencyRanges: (request: BumpRangesRequest) => bumpDependencyRanges(deps, request),
    openPullRequest: (request: PullRequestRequest) => whileHeartbeating(() => openPullRequest(deps, request)),
    linkPullRequests: (request: LinkRequest) => whileHeartbeating(() => linkPullRequests(deps, request)),
    readPullRequests: (request: TrackRequest) => whileHeartbeating(() => readPullRequests(deps, request)),
    findRelease: (request: ReleaseRequest) => findRelease(deps, request),
    readReviewFeedback: (request: TrackRequest) => whileHeartbeating(() => readReviewFeedback(deps, request)),
    writeNarrative: (request: NarrativeRequest) => writeNarrative(deps, request),
    deployPreview: (request: PreviewRequest) => deployPreview(deps, request),
    removePreviews: (request: RemovePreviewsRequest) => removePreviews(deps, request),
    notifyConversation: (request: NotifyRequest) => notifyConversation(deps.conversations, request),
    publishCard: (request: PublishCardRequest) => publishCard(deps.conversations, request),
  };
}

export type Activities = ReturnType<typeof createActivities>;
