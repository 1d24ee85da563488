// Keeps the run's card in its chat thread up to date, beside the main path: a decision change (new
// phase, proposal, summary) is shown at once; progress at most every PROGRESS_EVERY_MS. One update at a
// time, so updates never overtake each other; the card's location is kept in state, so it is posted once.
import * as wf from '@temporalio/workflow';
import { cardFor } from '../domain/card';
import { postsCards } from '../domain/platforms';
import type { RunActivities } from './activity-stubs';
import type { Run } from './run';

const PROGRESS_EVERY_MS = 10_000;

export class CardKeeper {
  private shownVersion = -1;
  private shownCardVersion = -1;
  private busy = false;

  constructor(private readonly run: Run, private readonly acts: RunActivities) {}

  get enabled(): boolean {
    return postsCards(this.run.state.request.conversation.platform);
  }

  /** Runs for the whole run; ends only with the workflow. */
  async keepUpdated(): Promise<void> {
    if (!this.enabled) return;
    for (;;) {
      await wf.condition(() => this.run.state.cardVersion !== this.shownCardVersion || this.run.state.version !== this.shownVersion);
      await this.run.settled();
      if (this.run.state.cardVersion === this.shownCardVersion) {
        // Only progress moved: wait out the interval, unless a decision change comes first.
        await wf.condition(() => this.run.state.cardVersion !== this.shownCardVersion, PROGRESS_EVERY_MS);
        await this.run.settled();
      }
      await this.show();
    }
  }

  /** The last update when the run ends: waits for one in flight, then shows the final state. */
  async showFinal(): Promise<void> {
    if (!this.enabled) return;
    await this.run.settled();
    await wf.condition(() => !this.busy, '1 minute');
    if (this.run.state.version !== this.shownVersion) await this.show();
  }

  private async show(): Promise<void> {
    const { state } = this.run;
    this.busy = true;
    this.shownVersion = state.version;
    this.shownCardVersion = state.cardVersion;
    try {
      const ref = await this.acts.quick.publishCard.executeWithOptions({ ...this.acts.notifyOptions, summary: `card v${state.cardVersion}` }, [
        { runId: state.runId, conversation: state.request.conversation, card: cardFor(state), ref: state.card },
      ]);
      // Not a change people decide on, and not worth a new version (which would only trigger another update).
      if (ref) state.card = ref;
    } catch (error) {
      if (wf.isCancellation(error)) throw error;
      this.run.recordError(`the chat card could not be updated: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.busy = false;
    }
  }
}
