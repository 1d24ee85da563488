// The typed command model every adapter produces: an inbound event (a CLI invocation, a web chat button,
// a Slack or Lark message) becomes one of these, and the shared gateway carries it out. No business rule
// lives here: validation of content and permissions happens in the gateway and the workflow. The
// commands for human inputs come from their one table (domain/human-inputs.ts).
import type { ChangeRequestInput, InputRecord, RunState } from '../domain/contracts';
import type { SignalName, SignalPayload } from '../domain/human-inputs';
import type { ChangeRequestGateway } from './gateway';

/** One human input sent to a run. */
export type InputCommand = { [S in SignalName]: { kind: S; runId: string; payload: SignalPayload<S> } }[SignalName];
export type Command = { kind: 'start'; runId?: string; input: ChangeRequestInput } | { kind: 'state'; runId: string } | InputCommand;

export type CommandResult =
  | { kind: 'started'; runId: string; alreadyStarted: boolean }
  | { kind: 'accepted'; runId: string; record: InputRecord }
  | { kind: 'state'; runId: string; state: RunState };

/** Carries out one command through the gateway; refusals surface as the gateway's RefusedError. */
export async function executeCommand(gateway: ChangeRequestGateway, command: Command): Promise<CommandResult> {
  switch (command.kind) {
    case 'start': {
      const { runId, alreadyStarted } = await gateway.start(command.input, command.runId);
      return { kind: 'started', runId, alreadyStarted };
    }
    case 'state':
      return { kind: 'state', runId: command.runId, state: await gateway.state(command.runId) };
    default:
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, command.kind, command.payload as never) };
  }
}
