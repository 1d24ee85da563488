// Custom search attributes, so operators can find runs in the Temporal UI and `temporal workflow list`
// by requester, phase, repository, autonomy preset and money spent.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_REQUESTER = defineSearchAttributeKey('CrRequester', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('CrPhase', SearchAttributeType.KEYWORD);
export const SA_REPOS = defineSearchAttributeKey('CrRepos', SearchAttributeType.KEYWORD_LIST);
export const SA_AUTONOMY = defineSearchAttributeKey('CrAutonomy', SearchAttributeType.KEYWORD);
export const SA_COST_USD = defineSearchAttributeKey('CrCostUsd', SearchAttributeType.DOUBLE);

export const ALL_SEARCH_ATTRIBUTES = [SA_REQUESTER, SA_PHASE, SA_REPOS, SA_AUTONOMY, SA_COST_USD];
