// The CLI's subcommand for each human input: only how its words and options become the input's payload.
// What the input is, who may send it and when it is taken are the inputs table's (domain/human-inputs.ts);
// the CLI adds who you are (--as), an idempotency key (--key) and sends it. Every input must say here
// whether the CLI has it (the mapped type makes a new input a compile error until it does).
import { Option } from 'commander';
import { DurationMsSchema } from '../domain/duration';
import type { SignalName, SignalPayload } from '../domain/human-inputs';
import type { ChangeRequestGateway } from './gateway';

/** What a subcommand builds; the CLI adds `by` and `key`. */
type Fields<S extends SignalName> = Omit<SignalPayload<S>, 'by' | 'key' | 'cardVersion'>;

export interface CliInput<S extends SignalName> {
  command: string;
  description: string;
  /** Positional arguments after the run id, as commander spells them (`<text...>`, `[repos...]`). */
  arguments?: { name: string; description?: string }[];
  options?: Option[];
  /** The payload from the positional arguments (in order) and the options; may ask the run (confirm's default). */
  fields(args: { positional: unknown[]; options: Record<string, unknown>; gateway: ChangeRequestGateway; runId: string }): Fields<S> | Promise<Fields<S>>;
  /** What the person is told once the run took it. */
  done(fields: Fields<S>): string;
}

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);
const words = (value: unknown) => (value as string[]).join(' ');

/** `--release ui-kit=major --release tokens=patch` → { "ui-kit": "major", tokens: "patch" }; validated by the gateway. */
function collectReleases(value: string, previous: Record<string, string>): Record<string, string> {
  const [repo, bump] = value.split('=');
  if (!repo || !bump) throw new Error(`--release ${value}: write it as <repo>=<major|minor|patch>, e.g. ui-kit=major`);
  return { ...previous, [repo.trim()]: bump.trim() };
}

export const CLI_INPUTS: { [S in SignalName]: CliInput<S> | null } = {
  confirmRepos: {
    command: 'confirm',
    description: 'confirm the repositories to change (default: as proposed)',
    arguments: [{ name: '[repos...]', description: 'repository ids; omit to accept the proposal' }],
    fields: async ({ positional: [repos], gateway, runId }) => {
      const chosen = repos as string[];
      return { repos: chosen.length ? chosen : ((await gateway.state(runId)).proposal?.repos.map((r) => r.id) ?? []) };
    },
    done: ({ repos }) => `Confirmed ${repos.join(', ')}.`,
  },
  feedback: {
    command: 'feedback',
    description: 'ask for changes after reviewing the summary',
    arguments: [{ name: '<text...>' }],
    options: [new Option('--repos <ids>', 'only these repositories (default: all of the change)').argParser(list)],
    fields: ({ positional: [text], options }) => ({ text: words(text), repos: options.repos as string[] | undefined }),
    done: () => 'Feedback accepted; a new round has started.',
  },
  addContext: {
    command: 'context',
    description: 'add context (API details, constraints) for the next rounds',
    arguments: [{ name: '<text...>' }],
    fields: ({ positional: [text] }) => ({ text: words(text) }),
    done: () => 'Context added.',
  },
  // A reply is how a chat thread speaks without choosing; on the command line, say `feedback` or `context`.
  reply: null,
  approve: {
    command: 'approve',
    description: 'approve the change; pull requests are opened',
    options: [new Option('--release <repo=bump...>', "an owner's choice of a package's planned release instead of the catalog's, e.g. ui-kit=major").argParser(collectReleases).default({}, "the catalog's plan")],
    fields: ({ options }) => {
      const releases = options.release as Record<string, 'major' | 'minor' | 'patch'>;
      return Object.keys(releases).length ? { releases } : {};
    },
    done: () => 'Approved; opening pull requests.',
  },
  cancel: {
    command: 'cancel',
    description: 'cancel a run',
    options: [new Option('--reason <text>')],
    fields: ({ options }) => ({ reason: options.reason as string | undefined }),
    done: () => 'Cancelled.',
  },
  dismissQuestions: {
    command: 'questions-not-needed',
    description: "set the proposal's open questions aside as not needed (all, or the numbered ones)",
    arguments: [{ name: '[numbers...]', description: 'question numbers as the card shows them; omit for all' }],
    fields: ({ positional: [numbers] }) => {
      const chosen = (numbers as string[]).map(Number);
      return chosen.length ? { questions: chosen } : {};
    },
    done: () => 'Set aside; the card no longer asks.',
  },
  addressReviewComments: {
    command: 'review-comments',
    description: 'while the pull requests are open: a feedback round on what reviewers wrote on them',
    fields: () => ({}),
    done: () => 'A round on the review comments has started; the pull requests are updated when it is done.',
  },
  extendBudget: {
    command: 'extend-budget',
    description: 'after a budget ran out: extend it and let the agent continue (default: double what ran out), or --stop to review the partial work',
    options: [
      new Option('--stop', 'do not extend; go on to review what was done'),
      new Option('--cost <usd>', 'add this many dollars (per step and per run)').argParser(Number),
      new Option('--turns <n>', 'add this many turns (per step and per run)').argParser(Number),
      new Option('--time <duration>', 'add this much agent time, e.g. 10m (per step and per run)'),
    ],
    fields: ({ options }) => {
      const patch = {
        ...(options.cost !== undefined ? { costUsd: options.cost as number } : {}),
        ...(options.turns !== undefined ? { turns: options.turns as number } : {}),
        ...(options.time !== undefined ? { wallTime: DurationMsSchema.parse(options.time) } : {}),
      };
      const given = Object.keys(patch).length > 0;
      return { decision: options.stop ? 'continue' : 'extend', ...(given ? { perStep: patch, perRun: patch } : {}) };
    },
    done: ({ decision }) => (decision === 'continue' ? 'Going on to review the partial work.' : 'Budget extended; the agent continues.'),
  },
};
