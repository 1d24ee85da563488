// A run's state as one card with the buttons that make sense in its phase. Platform-neutral: the web chat,
// Slack (Block Kit) and Lark (interactive cards) each draw this model their own way. Pure.
import { stillNeeded, whoMayApprove } from './approvals';
import type { ButtonValue, CardAction, CardButton } from './buttons';
import { buttonsFor, openQuestions } from './human-inputs';
import { describeReleaseFollowUp, describeReleasePlan, describeSpend, describeStep, describeUpstream, oneLine } from './summary';
import { isDegraded, previewAddress, TERMINAL_PHASES, type PullRequestRef, type RunState } from './contracts';
import { briefShort } from './brief';
import { diffRangesOf } from './compare';

export { ButtonValueSchema, CARD_ACTIONS, type ButtonValue, type CardAction, type CardButton } from './buttons';

export interface CardChoice {
  repo: string;
  role: string;
  reason: string;
  confidence: number | null;
  selected: boolean;
  toggle: CardButton;
}

export interface CardSection {
  heading: string;
  lines: string[];
  image?: { url: string; alt: string };
}

export interface Card {
  runId: string;
  cardVersion: number;
  title: string;
  status: string;
  sections: CardSection[];
  choices: CardChoice[];
  buttons: CardButton[];
  links: { label: string; url: string }[];
  /** Shown under the buttons: how to give feedback or add context by replying in the thread. */
  hint: string | null;
}

const STATUS: Record<RunState['phase'], string> = {
  intake: 'Starting…',
  gathering: 'Reading the linked pages…',
  proposing: 'Looking for the repositories this touches…',
  awaiting_confirmation: 'Please confirm which repositories to change.',
  editing: 'Editing…',
  awaiting_budget: 'The agent ran out of budget. Extend it, or review what was done?',
  checking: 'Running checks…',
  previewing: 'Deploying previews…',
  awaiting_review: 'Ready for review.',
  publishing: 'Opening pull requests…',
  tracking: 'Pull requests are open: following them until each is merged or closed.',
  done: 'Done.',
  cancelled: 'Cancelled.',
  failed: 'Failed.',
};

/** `web-app #7: open · CI passing · changes requested · 2 review comments` */
function describePullRequest(repo: string, pr: PullRequestRef): string {
  const parts: string[] = [pr.state];
  if (pr.state === 'open') {
    if (pr.ci) parts.push(pr.ci === 'success' ? 'CI passing' : pr.ci === 'failure' ? 'CI FAILING' : 'CI running');
    if (pr.review) parts.push(pr.review === 'approved' ? 'approved' : 'changes requested');
    if (pr.reviewComments) parts.push(`${pr.reviewComments} review comment${pr.reviewComments === 1 ? '' : 's'}`);
    if (pr.trackingError) parts.push(`could not be read: ${pr.trackingError}`);
  }
  return `${repo} #${pr.number}: ${parts.join(' · ')}`;
}

function trackingLine(state: RunState): string[] {
  const tracking = state.tracking;
  if (!tracking || state.phase !== 'tracking') return [];
  const next = tracking.nextLookAt ? `; next look at ${new Date(tracking.nextLookAt).toISOString().slice(11, 16)} UTC` : '';
  return [`Followed until ${new Date(tracking.until).toISOString().slice(0, 10)}${next}.`];
}

/** The repositories ticked on a confirmation card: the proposal's, unless someone toggled them. */
export function defaultSelection(state: RunState): string[] {
  return state.proposal?.repos.map((r) => r.id) ?? [];
}

export function cardFor(state: RunState, selection: readonly string[] = defaultSelection(state)): Card {
  const button = (label: string, action: CardAction, style: CardButton['style'] = 'default', extra: Partial<ButtonValue> = {}): CardButton => ({
    label,
    style,
    value: { runId: state.runId, action, cardVersion: state.cardVersion, ...extra },
  });
  const sections: CardSection[] = [];
  const choices: CardChoice[] = [];
  // The buttons are the inputs this phase takes (domain/human-inputs.ts), primary first and danger last.
  const buttons: CardButton[] = buttonsFor(state.phase, selection, state).map(({ label, style, action, carries }) => button(label, action, style, carries));
  const links: Card['links'] = [];
  let hint: string | null = null;

  switch (state.phase) {
    case 'awaiting_confirmation': {
      const proposed = new Map(state.proposal?.repos.map((r) => [r.id, r]) ?? []);
      for (const repo of state.catalogRepos.filter((r) => state.scope.includes(r.id))) {
        const proposal = proposed.get(repo.id);
        const selected = selection.includes(repo.id);
        const next = selected ? selection.filter((id) => id !== repo.id) : [...selection, repo.id];
        choices.push({
          repo: repo.id,
          role: repo.role,
          reason: proposal?.reason ?? `Not proposed. ${repo.description}`,
          confidence: proposal?.confidence ?? null,
          selected,
          toggle: button(selected ? 'Remove' : 'Add', 'toggle', 'default', { repo: repo.id, selection: next }),
        });
      }
      // Runs from before questions were kept show the proposal's; the open ones are shown below for all.
      const notes = [...(state.questions ? [] : (state.proposal?.questions ?? [])), ...(state.proposal?.notes ?? [])];
      if (notes.length) sections.push({ heading: 'Questions and notes', lines: notes });
      hint = state.intake?.brief
        ? 'Reply in this thread to add context or correct the brief (e.g. "the criteria miss X").'
        : 'Reply in this thread to add context for the agent.';
      break;
    }
    case 'awaiting_budget': {
      const exhausted = state.budget.exhausted;
      if (exhausted) sections.push({ heading: 'Budget', lines: exhausted.repos.map((id, i) => `${id}: ${exhausted.stops[i]?.message ?? ''}`) });
      break;
    }
    case 'awaiting_review':
      hint = 'Reply in this thread with feedback: the agent works on it in a new round.';
      if (state.approvals) {
        const approvals = state.approvals;
        const open = stillNeeded(approvals);
        sections.push({
          heading: 'Approvals',
          lines: approvals.needed.map((n) => {
            const given = approvals.given.find((g) => g.repos.includes(n.repo));
            return given ? `${n.repo}: approved by ${given.by}` : `${n.repo}: needs ${whoMayApprove([n], state.request.requester).replace(/^an owner of \S+ /, 'an owner ')}`;
          }),
        });
        hint = `${hint} ${state.request.requester} asked for this change, so the approval must come from ${whoMayApprove(open, state.request.requester)}.`;
      }
      break;
    case 'intake':
    case 'gathering':
    case 'proposing':
    case 'editing':
    case 'checking':
    case 'previewing':
      hint = 'Reply in this thread to add context for the next round.';
      break;
    case 'publishing':
    case 'tracking':
    case 'done':
    case 'cancelled':
    case 'failed':
      break;
  }

  // Asked until the pull requests open; after that the summary's risks still name an unanswered one.
  const open = TERMINAL_PHASES.includes(state.phase) || state.phase === 'publishing' || state.phase === 'tracking' ? [] : openQuestions(state);
  if (open.length) {
    sections.push({ heading: 'Open questions', lines: open.map((q) => `${q.n}. ${q.text}`) });
    const how = state.phase === 'awaiting_review'
      ? 'They were not answered before the edits: give feedback that settles them, then press “Open questions: not needed”.'
      : 'Answer the open questions with a reply, or press “Open questions: not needed”.';
    hint = `${hint ? `${hint} ` : ''}${how}`;
  }
  sections.push(...intakeSections(state));
  const repos = Object.values(state.repos);
  if (repos.length && state.phase !== 'awaiting_confirmation') {
    sections.push({
      heading: 'Repositories',
      lines: repos.map((repo) => {
        const checks = repo.checks.at(-1);
        const checkText = checks ? (checks.passed ? 'checks pass' : 'checks FAIL') : 'no checks yet';
        const progress = repo.progress ? ` · agent turn ${repo.progress.turn}${repo.progress.lastTool ? ` (${repo.progress.lastTool})` : ''}` : '';
        const status = repo.status.startsWith('checks_') ? '' : `${repo.status.replace(/_/g, ' ')}, `;
        const against = checks?.against?.length ? ` against ${checks.against.map(describeUpstream).join(', ')}` : '';
        const published = [...(repo.publishes ?? [])].reverse().find((p) => p.status === 'published');
        const prerelease = published ? ` · published ${published.name}@${published.version}` : '';
        return `${repo.id}: ${status}${repo.diffStat.files} file(s) +${repo.diffStat.insertions} −${repo.diffStat.deletions}, ${checkText}${against}${prerelease}${progress}`;
      }),
    });
  }
  const pulls = repos.filter((r) => r.pr);
  if (pulls.length && ['tracking', 'done'].includes(state.phase)) {
    const releases = (state.tracking?.releases ?? []).map((f) => describeReleaseFollowUp(f, (repo) => state.repos[repo]?.pr ?? null, 'text'));
    sections.push({ heading: 'Pull requests', lines: [...pulls.map((r) => describePullRequest(r.id, r.pr!)), ...releases, ...trackingLine(state)] });
  }
  if (state.summary && ['awaiting_review', 'publishing', 'tracking', 'done'].includes(state.phase)) {
    sections.push({ heading: 'What changed', lines: [state.summary.narrative, `Merge order: ${state.summary.mergeOrder.join(' → ')}`] });
    const plan = state.summary.releasePlan ?? [];
    if (plan.length) sections.push({ heading: 'Merge and release plan', lines: describeReleasePlan(plan, (repo) => state.repos[repo]?.pr ?? null) });
    if (state.summary.sincePrevious.length) sections.push({ heading: 'Since the previous round', lines: state.summary.sincePrevious });
    sections.push({ heading: 'Risks', lines: state.summary.risks.length ? state.summary.risks : ['none found'] });
    for (const preview of state.previews.filter((p) => p.status === 'ready' && p.screenshot)) {
      const degraded = isDegraded(preview);
      sections.push({ heading: `${preview.repo} preview${degraded ? ' (degraded)' : ''}`, lines: [previewAddress(preview) ?? '', ...(degraded ? preview.problems! : [])], image: { url: preview.screenshot!.url, alt: `${preview.repo} preview` } });
    }
  }
  const changeSet = changeSetPreview(state);
  if (changeSet) {
    sections.push({ heading: 'Change set preview', lines: [changeSet.url, ...changeSet.runs] });
    links.push({ label: 'Change set preview', url: changeSet.url });
  }
  for (const preview of state.previews.filter((p) => p.status === 'ready' && p.url)) links.push({ label: `${preview.repo} preview`, url: previewAddress(preview)! });
  if (state.summary && ['awaiting_review', 'publishing', 'tracking', 'done'].includes(state.phase)) {
    // The whole change of each repository on its host's compare view (the web chat also shows it inline).
    for (const repo of repos) {
      const total = diffRangesOf(state, repo.id)[0];
      if (total?.url) links.push({ label: `${repo.id} diff`, url: total.url });
    }
  }
  for (const repo of repos.filter((r) => r.pr)) links.push({ label: `${repo.id} PR #${repo.pr!.number}`, url: repo.pr!.url });
  if (state.budget.used.turns > 0) {
    // The latest steps, each with its own model and cost (the whole list is in the summary and the state).
    const steps = state.budget.steps.filter((s) => s.spend.turns > 0);
    const shown = steps.slice(-6).map(describeStep);
    if (steps.length > shown.length) shown.unshift(`… ${steps.length - shown.length} earlier step${steps.length - shown.length === 1 ? '' : 's'}`);
    sections.push({ heading: 'Spent', lines: [describeSpend(state.budget.used), ...shown] });
  }
  if (state.outcome) sections.push({ heading: 'Outcome', lines: [state.outcome.reason] });
  else if (state.lastError) sections.push({ heading: 'Last error', lines: [state.lastError.message] });

  return {
    runId: state.runId,
    cardVersion: state.cardVersion,
    title: oneLine(state.request.requirement, 150),
    status: `${STATUS[state.phase]} (requested by ${state.request.requester})`,
    sections,
    choices,
    buttons,
    links,
    hint,
  };
}

/** The brief, short (the web chat shows it whole), and every link that could not be read, while the run is live. */
function intakeSections(state: RunState): CardSection[] {
  const intake = state.intake;
  if (!intake || TERMINAL_PHASES.includes(state.phase)) return [];
  const sections: CardSection[] = [];
  const record = intake.brief;
  if (record) {
    const criteria = record.brief.acceptanceCriteria.slice(0, 3).map((c) => `✓ ${oneLine(c.text, 140)}`);
    const more = record.brief.acceptanceCriteria.length - criteria.length;
    sections.push({ heading: `Requirement brief${record.version > 1 ? ` (version ${record.version})` : ''}`, lines: [briefShort(record.brief), ...criteria, ...(more > 0 ? [`… and ${more} more criteri${more === 1 ? 'on' : 'a'}`] : [])] });
  }
  const notes = [
    ...intake.unreadable.map((u) => `could not read ${u.url}: ${u.why}`),
    ...intake.sources.filter((s) => s.truncatedAt !== null).map((s) => `${s.url} is longer than ${formatBytes(s.truncatedAt!)}: only its first ${formatBytes(s.truncatedAt!)} were read`),
    ...(intake.note ? [intake.note] : []),
  ];
  if (notes.length) sections.push({ heading: 'Context notes', lines: notes });
  return sections;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/** The run's previews as one link, and what each runs: repo@sha, with the packages and previews it uses. */
function changeSetPreview(state: RunState): { url: string; runs: string[] } | null {
  const live = state.previews.filter((p) => p.status === 'ready');
  const url = live.find((p) => p.changeSetUrl)?.changeSetUrl;
  if (!url) return null;
  const runs = live.map((p) => {
    const packages = (p.upstream?.packages ?? []).filter((u) => u.source === 'run').map(describeUpstream);
    const previews = (p.upstream?.previews ?? []).map((u) => `${u.variable} → ${u.repo}@${u.sha.slice(0, 7)}`);
    const uses = [...packages, ...previews];
    return `${p.repo}@${p.sha.slice(0, 7)} (${p.kind})${uses.length ? `: ${uses.join(', ')}` : ''}`;
  });
  return { url, runs };
}
