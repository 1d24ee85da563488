// One combined change summary across every repository of a run: built from the run's state (pure, so
// the workflow computes it deterministically) and rendered as Markdown for PR bodies and the CLI; the
// structured form feeds IM cards.
import { describeDimension, inputTokensOf, type Spend } from './budget';
import { latestPublish } from './change-set';
import { isDegraded, previewAddress, type CombinedSummary, type ReleaseFollowUp, type ReleasePlanStep, type RunState, type SummaryRepo, type UpstreamVersion } from './contracts';
import { dependencyOrder } from './dependency-order';
import { codeSpan, fencedBlock, link, markdownProse, plainText } from './markdown';

const TEST_FILE = /(^|\/)(test|tests|__tests__|spec)\/|\.(test|spec)\.[cm]?[jt]sx?$/;

export function isTestFile(path: string): boolean {
  return TEST_FILE.test(path);
}

export function mergeOrderOf(state: Pick<RunState, 'confirmed' | 'catalogRepos'>): string[] {
  const deps = (id: string) => state.catalogRepos.find((r) => r.id === id)?.dependsOn ?? [];
  return dependencyOrder(state.confirmed, deps);
}

export interface Narrative {
  text: string;
  by: 'model' | 'plain';
}

/** Without a model: the requirement and each repository's own account, one line each. */
export function plainNarrative(state: RunState): string {
  const lines = mergeOrderOf(state).map((id) => {
    const repo = state.repos[id]!;
    const note = firstSentence(repo.agentNotes) || 'no notes from the agent';
    return `${id} (${repo.role}, ${repo.diffStat.files} file${repo.diffStat.files === 1 ? '' : 's'}): ${note}`;
  });
  return [`To "${oneLine(state.request.requirement, 160)}", ${lines.length} repositor${lines.length === 1 ? 'y was' : 'ies were'} changed.`, ...lines].join('\n');
}

export function buildSummary(state: RunState, narrative: Narrative, releasePlan: ReleasePlanStep[] = []): CombinedSummary {
  const mergeOrder = mergeOrderOf(state);
  const repos: SummaryRepo[] = mergeOrder.map((id) => {
    const repo = state.repos[id]!;
    const checks = repo.checks.at(-1);
    return {
      id,
      role: repo.role,
      branch: repo.branch,
      files: repo.files,
      diffStat: repo.diffStat,
      diffPreview: repo.diffPreview,
      keyHunks: repo.keyHunks,
      checksPassed: checks ? checks.passed : null,
      checks: checks?.results ?? [],
      checkedAgainst: checks?.against ?? [],
      published: latestPublish(repo.publishes).record,
      agentNotes: repo.agentNotes,
      earlierNotes: earlierNotesOf(repo),
      preview: state.previews.find((p) => p.repo === id) ?? null,
      spend: repo.spend,
      pr: repo.pr,
    };
  });
  const risks: string[] = [];
  for (const repo of repos) {
    const progress = state.repos[repo.id]!;
    if (repo.checksPassed === false) {
      const failing = repo.checks.filter((c) => c.status !== 'passed').map((c) => c.name);
      risks.push(`${repo.id}: checks failing after the last round (${failing.join(', ')})`);
    }
    if (repo.checksPassed === null) risks.push(`${repo.id}: no checks ran`);
    if (repo.files.length === 0) risks.push(`${repo.id}: the agent changed nothing here`);
    risks.push(...progress.testRisks.map((r) => `${repo.id}: ${r}`));
    for (const result of progress.checks.at(-1)?.results ?? []) if (result.risk) risks.push(result.risk);
    if (progress.checks.at(-1)?.results.some((r) => r.unconfined)) risks.push(`${repo.id}: its installs and checks ran unconfined (REPO_SANDBOX=off), with access to everything the worker can reach`);
    if (repo.preview?.status === 'failed') risks.push(`${repo.id}: the preview could not be built or deployed (see its output)`);
    if (repo.preview && isDegraded(repo.preview)) risks.push(`${repo.id}: the preview is degraded: ${repo.preview.problems!.join('; ')}`);
    const failedPublish = progress.publishes.filter((p) => p.status === 'failed').at(-1);
    if (failedPublish && failedPublish.round >= (repo.published?.round ?? 0)) {
      risks.push(`${repo.id}: round ${failedPublish.round} could not be published to the registry, so its dependents were checked against ${repo.published ? `${repo.published.version} (round ${repo.published.round})` : 'the released version'}: ${firstLine(failedPublish.output)}`);
    }
    for (const upstream of repo.checkedAgainst) {
      const changed = (state.repos[upstream.repo]?.commits.length ?? 0) > 0;
      if (upstream.source === 'released' && changed) risks.push(`${repo.id}: checked against the released ${upstream.name}, not this run's change to ${upstream.repo}${upstream.note ? ` (${upstream.note})` : ''}`);
      else if (upstream.note) risks.push(`${repo.id}: checked against ${describeUpstream(upstream)} (${upstream.note})`);
    }
    const lastStep = state.budget.steps.filter((step) => step.repo === repo.id).at(-1);
    if (lastStep?.stoppedBy) risks.push(`${repo.id}: the agent stopped at its budget (${lastStep.stoppedBy.message}); the change may be incomplete`);
  }
  for (const follow of state.tracking?.releases ?? []) {
    if (follow.check && !follow.check.passed) risks.push(`${follow.dependent}: its checks fail against the released ${follow.name}@${follow.released} (${follow.check.failing.join(', ')})`);
  }
  for (const question of (state.questions ?? []).filter((q) => q.answer === null)) risks.push(`the proposal asked "${oneLine(question.text, 300)}" and nobody has answered it`);
  const round = state.rounds[state.rounds.length - 1]?.n ?? 0;
  return {
    round,
    requirement: state.request.requirement,
    narrative: narrative.text,
    narrativeBy: narrative.by,
    spent: state.budget.used,
    repos,
    mergeOrder,
    releasePlan,
    steps: state.budget.steps,
    risks,
    sincePrevious: changesSince(state, state.summary),
    brief: briefOf(state),
    questions: state.questions ?? [],
    releases: state.tracking?.releases ?? [],
  };
}

/** Sentences that warn or ask for something later: kept when an earlier round's notes are shortened. */
const CAUTION = /\b(before merg\w*|do not|don't|must|warning|todo|careful|revert\w*|temporar\w*|point \w+ back|remember)\b/i;

/** An earlier round's notes made short: the first sentence, and every sentence that carries a caution. */
export function shortNote(text: string): string {
  const sentences = text.replace(/\s+/g, ' ').trim().split(/(?<=[.!?])\s+/);
  const kept = sentences.filter((sentence, i) => i === 0 || CAUTION.test(sentence));
  return oneLine(kept.join(' '), 600);
}

/** Every round's notes but the latest (which the summary shows whole), each made short. */
export function earlierNotesOf(repo: Pick<RunState['repos'][string], 'notes' | 'agentNotes'>): { round: number; text: string }[] {
  const notes = repo.notes ?? [];
  return notes.slice(0, -1).map((n) => ({ round: n.round, text: shortNote(n.text) }));
}

function briefOf(state: RunState): CombinedSummary['brief'] {
  const record = state.intake?.brief;
  if (!record) return null;
  return {
    version: record.version,
    goal: record.brief.goal,
    criteria: record.brief.acceptanceCriteria,
    sources: state.intake.sources.map((s) => ({ id: s.id, title: s.title, url: s.url })),
  };
}

/** What changed since the run's current summary: what the next summary's "since the previous" will say. */
export function changesSinceSummary(state: RunState): string[] {
  return changesSince(state, state.summary);
}

function changesSince(state: RunState, previous: CombinedSummary | null): string[] {
  if (!previous) return [];
  const lines: string[] = [];
  for (const round of state.rounds.filter((r) => r.n > previous.round)) {
    const label = round.kind === 'feedback' ? `feedback from ${round.by ?? 'someone'}: "${oneLine(round.reason, 100)}"` : round.kind === 'continue' ? 'continuing after a budget extension' : 'fixing failing checks';
    lines.push(`Round ${round.n} (${label}) edited ${round.repos.join(', ')}.`);
    for (const id of round.repos) {
      const commit = state.repos[id]?.commits.find((c) => c.round === round.n);
      lines.push(commit ? `  ${id}: ${commit.files.length} file(s) changed (${commit.files.join(', ')})` : `  ${id}: no changes`);
    }
  }
  for (const repo of previous.repos) {
    const now = state.repos[repo.id];
    const before = repo.checksPassed;
    const after = now ? (now.checks.at(-1)?.passed ?? null) : null;
    if (before !== after) lines.push(`${repo.id}: checks ${describeCheckState(before)} → ${describeCheckState(after)}`);
  }
  return lines;
}

function describeCheckState(passed: boolean | null): string {
  return passed === null ? 'not run' : passed ? 'passing' : 'failing';
}

export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const end = flat.search(/[.!?](\s|$)/);
  return oneLine(end >= 0 ? flat.slice(0, end + 1) : flat, 200);
}

function firstLine(text: string): string {
  return oneLine(text.split('\n').find((l) => l.trim()) ?? '', 200);
}

/** `@acme/ui-kit@1.4.0-cr.ab12cd34.2 (this run)` or `@acme/ui-kit (released)`. */
export function describeUpstream(upstream: UpstreamVersion): string {
  if (upstream.source === 'run' && upstream.version) return `${upstream.name}@${upstream.version} (this run)`;
  return `${upstream.name}${upstream.installed ? `@${upstream.installed}` : ''} (released)`;
}

/** One line per agent step for cards: what it was, which model, what it cost. */
export function describeStep(step: { step: string; model: string; spend: Spend }): string {
  return `${step.step}: ${step.model}, ${step.spend.turns} turn${step.spend.turns === 1 ? '' : 's'}, ${describeDimension('costUsd', step.spend.costUsd)}`;
}

/** One line per plan step, with PR links when the pull requests exist. */
export function describeReleasePlan(plan: readonly ReleasePlanStep[], prOf: (repo: string) => { number: number; url: string } | null): string[] {
  const label = (repo: string) => {
    const pr = prOf(repo);
    return pr ? `${repo} #${pr.number}` : repo;
  };
  return plan.map((step, i) => {
    const parts: string[] = [];
    if (step.release) {
      const why = step.release.bump === 'as-committed' ? 'the version its branch declares' : `next ${step.release.bump}${step.release.by ? `, chosen by ${step.release.by}` : ''}`;
      parts.push(`merge ${label(step.repo)}, then release ${step.release.name} ${step.release.version} (${why}${step.release.from ? `, from ${step.release.from}` : ''})`);
    }
    if (step.needs.length) {
      const needs = step.needs.map((n) => `${n.name} ${n.range}`).join(', ');
      const blockers = step.needs.map((n) => label(n.repo)).join(', ');
      parts.push(`${step.release ? 'it' : label(step.repo)} depends on ${needs}: blocked by ${blockers} until ${step.needs.length === 1 ? 'that release is' : 'those releases are'} published`);
    }
    return `${i + 1}. ${parts.join('; ')}`;
  });
}

/**
 * `ui-kit #4 is merged and @acme/ui-kit@1.5.0 is released; web-app was checked against it: passing`, as
 * Markdown (a PR body) or plain text (a card).
 */
export function describeReleaseFollowUp(follow: ReleaseFollowUp, prOf: (repo: string) => { number: number; url: string } | null, as: 'markdown' | 'text' = 'markdown'): string {
  const pr = prOf(follow.upstream);
  const code = as === 'markdown' ? codeSpan : (text: string) => text;
  const label = pr ? `${follow.upstream} #${pr.number}` : follow.upstream;
  const merged = `${pr && as === 'markdown' ? link(label, pr.url) : label} is merged`;
  if (!follow.released) return `${merged}; ${follow.dependent} waits for the release ${code(`${follow.name}@${follow.planned}`)} on the registry, then is checked against it`;
  const moved = follow.movedTo ? ` (released outside ${code(follow.range)}: the branch now depends on ${code(follow.movedTo)})` : '';
  if (!follow.check) return `${merged} and ${code(`${follow.name}@${follow.released}`)} is released${moved}; ${follow.dependent} is being checked against it`;
  return `${merged} and ${code(`${follow.name}@${follow.released}`)} is released${moved}; ${follow.dependent} was checked against it: ${follow.check.passed ? 'passing' : `FAILING (${follow.check.failing.join(', ')})`}`;
}

export function describeSpend(spend: Spend): string {
  return `${spend.turns} model turns, ${describeDimension('costUsd', spend.costUsd)}, ${describeDimension('wallTimeMs', spend.wallTimeMs)}`;
}

export interface SiblingLink {
  repo: string;
  url: string;
  number: number;
}

export function renderSummaryMarkdown(summary: CombinedSummary, options: { siblings?: SiblingLink[]; forRepo?: string } = {}): string {
  const out: string[] = [];
  out.push(`## Change request: ${plainText(oneLine(summary.requirement, 200))}`, '');
  out.push(markdownProse(summary.narrative), '');
  if (options.siblings && options.siblings.length > 0) {
    out.push('### Pull requests in this change', '');
    for (const s of options.siblings) {
      out.push(`- ${s.repo === options.forRepo ? `**this pull request** (${s.repo})` : link(`${s.repo} #${s.number}`, s.url)}`);
    }
    out.push('');
  }
  if (summary.brief) {
    const { brief } = summary;
    const cite = (id: string | null) => {
      const source = id ? brief.sources.find((s) => s.id === id) : undefined;
      return source ? ` (${link(id!, source.url)})` : '';
    };
    out.push(`### Acceptance criteria (requirement brief, version ${brief.version})`, '', ...brief.criteria.map((c) => `- [ ] ${markdownProse(oneLine(c.text, 500))}${cite(c.source)}`), '');
    if (brief.sources.length) out.push(`Read from ${brief.sources.map((s) => link(`${s.id} ${s.title}`, s.url)).join(', ')}.`, '');
  }
  const questions = summary.questions ?? [];
  if (questions.length) {
    const answer = (q: (typeof questions)[number]) =>
      !q.answer ? '**still open**' : q.answer.how === 'not needed' ? `not needed (${q.answer.by})` : `answered by ${q.answer.by}: ${markdownProse(oneLine(q.answer.text, 300))}`;
    out.push('### Questions from the proposal', '', ...questions.map((q) => `${q.n}. ${markdownProse(oneLine(q.text, 500))} — ${answer(q)}`), '');
  }
  out.push('### Merge order', '', summary.mergeOrder.map((id, i) => `${i + 1}. ${id}`).join('\n'), '');
  if (summary.releasePlan.length > 0) {
    const prOf = (repo: string) => options.siblings?.find((s) => s.repo === repo) ?? summary.repos.find((r) => r.id === repo)?.pr ?? null;
    out.push('### Merge and release plan', '', ...describeReleasePlan(summary.releasePlan, prOf), '');
    const step = summary.releasePlan.find((s) => s.repo === options.forRepo);
    const followed = step ? step.needs.map((n) => (summary.releases ?? []).find((f) => f.dependent === step.repo && f.name === n.name)) : [];
    if (step && step.needs.length > 0 && followed.every((f) => f?.check?.passed)) {
      out.push(`**This pull request is no longer blocked:** ${followed.map((f) => describeReleaseFollowUp(f!, prOf)).join('; ')}.`, '');
    } else if (step && step.needs.length > 0) {
      const checked = summary.repos.find((r) => r.id === step.repo)?.checkedAgainst ?? [];
      const asChecked = step.needs.map((n) => checked.find((c) => c.repo === n.repo)).filter((c): c is UpstreamVersion => c !== undefined).map(describeUpstream);
      out.push(
        `**This pull request is blocked by ${step.needs.map((n) => { const pr = prOf(n.repo); return pr ? link(`${n.repo} #${pr.number}`, pr.url) : n.repo; }).join(', ')}.** ` +
          `Its branch depends on ${step.needs.map((n) => codeSpan(`${n.name}@${n.range}`)).join(', ')}, the planned release${step.needs.length === 1 ? '' : 's'}, which ` +
          `${step.needs.length === 1 ? 'does' : 'do'} not exist until the upstream pull request${step.needs.length === 1 ? ' is' : 's are'} merged and released; until then its CI cannot install ${step.needs.length === 1 ? 'it' : 'them'}. ` +
          `CI passes once ${step.needs.length === 1 ? 'it is' : 'they are'} published${asChecked.length ? `: this change was checked against ${asChecked.join(', ')}, this run's prerelease of the same upstream change (if the upstream pull request changes before it merges, check this one again)` : ''}.`,
        '',
      );
    }
  }
  const releases = summary.releases ?? [];
  if (releases.length > 0) out.push('### After the upstream merges', '', ...releases.map((f) => `- ${describeReleaseFollowUp(f, (repo) => options.siblings?.find((s) => s.repo === repo) ?? summary.repos.find((r) => r.id === repo)?.pr ?? null)}`), '');
  if (summary.sincePrevious.length > 0) out.push('### Since the previous summary', '', ...summary.sincePrevious.map((l) => `- ${markdownProse(l)}`), '');
  out.push(summary.risks.length > 0 ? '### Risks' : '### Risks: none found', '');
  if (summary.risks.length > 0) out.push(...summary.risks.map((r) => `- ${markdownProse(oneLine(r, 1000))}`), '');
  for (const repo of summary.repos) {
    const checks = repo.checksPassed === null ? 'not run' : repo.checksPassed ? 'passing' : 'FAILING';
    out.push(`### ${repo.id} (${repo.role}) — checks ${checks}`, '');
    out.push(`Branch ${codeSpan(repo.branch)}: ${repo.diffStat.files} file(s), +${repo.diffStat.insertions} −${repo.diffStat.deletions}; agent: ${describeSpend(repo.spend)}`, '');
    if (repo.published) out.push(`Published for this change as ${codeSpan(`${repo.published.name}@${repo.published.version}`)} (round ${repo.published.round}, dist-tag ${codeSpan(repo.published.distTag)}).`, '');
    if (repo.checkedAgainst.length > 0) out.push(`Checked against ${repo.checkedAgainst.map(describeUpstream).join(', ')}.`, '');
    if (repo.agentNotes) out.push(markdownProse(repo.agentNotes), '');
    const earlier = repo.earlierNotes ?? [];
    if (earlier.length) out.push('Earlier rounds:', '', ...earlier.map((n) => `- round ${n.round}: ${markdownProse(n.text)}`), '');
    for (const f of repo.files) out.push(`- ${codeSpan(f.path)} ${f.change} (+${f.insertions} −${f.deletions})`);
    if (repo.files.length > 0) out.push('');
    for (const c of repo.checks) out.push(`- ${c.kind} ${codeSpan(c.name)}: ${c.status}${c.fromCache ? ' (from the install cache)' : ''} in ${(c.durationMs / 1000).toFixed(1)}s`);
    if (repo.checks.length > 0) out.push('');
    if (repo.preview) {
      const address = previewAddress(repo.preview);
      if (repo.preview.status === 'ready' && address) {
        out.push(`Preview${isDegraded(repo.preview) ? ' (degraded, see the risks)' : ''}: ${link(address, address)}`, '');
        if (repo.preview.screenshot) out.push(`!${link(`${repo.id} preview`, repo.preview.screenshot.url)}`, '');
      } else if (repo.preview.status === 'failed') {
        out.push('Preview failed:', '', fencedBlock(repo.preview.output.slice(-1500)), '');
      }
    }
    if (repo.keyHunks.length > 0) out.push('<details><summary>Key changes</summary>', '', fencedBlock(repo.keyHunks.join('\n'), 'diff'), '', '</details>', '');
  }
  const steps = summary.steps ?? [];
  if (steps.length > 0) {
    out.push('<details><summary>Agent steps: model and cost of each</summary>', '', '| step | model | turns | tokens in / out | cost |', '|---|---|---|---|---|');
    for (const step of steps) out.push(`| ${step.step} | ${step.model} | ${step.spend.turns} | ${inputTokensOf(step.spend)} / ${step.spend.outputTokens} | ${describeDimension('costUsd', step.spend.costUsd)} |`);
    out.push('', '</details>', '');
  }
  out.push(`---`, `Agent spending for the whole change: ${describeSpend(summary.spent)}.`);
  return out.join('\n');
}
