// The typed command model every adapter produces: an inbound event (a CLI invocation, a web chat button,
// a Slack or Lark message) becomes one of these, and the shared gateway carries it out. No business rule
// lives here: validation of content and permissions happens in the gateway and the workflow.
import { z } from 'zod';
import { ChangeRequestInputSchema, SignalPayloadSchemas, type InputRecord, type RunState } from '../domain/contracts';
import type { ChangeRequestGateway } from '../client/gateway';

const RunIdSchema = z.string().min(1).max(200);

export const CommandSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), runId: RunIdSchema.optional(), input: ChangeRequestInputSchema }),
  z.object({ kind: z.literal('confirmRepos'), runId: RunIdSchema, payload: SignalPayloadSchemas.confirmRepos }),
  z.object({ kind: z.literal('feedback'), runId: RunIdSchema, payload: SignalPayloadSchemas.feedback }),
  z.object({ kind: z.literal('addContext'), runId: RunIdSchema, payload: SignalPayloadSchemas.addContext }),
  z.object({ kind: z.literal('approve'), runId: RunIdSchema, payload: SignalPayloadSchemas.approve }),
  z.object({ kind: z.literal('cancel'), runId: RunIdSchema, payload: SignalPayloadSchemas.cancel }),
  z.object({ kind: z.literal('extendBudget'), runId: RunIdSchema, payload: SignalPayloadSchemas.extendBudget }),
  z.object({ kind: z.literal('state'), runId: RunIdSchema }),
]);
export type Command = z.infer<typeof CommandSchema>;

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
    case 'confirmRepos':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'confirmRepos', command.payload) };
    case 'feedback':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'feedback', command.payload) };
    case 'addContext':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'addContext', command.payload) };
    case 'approve':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'approve', command.payload) };
    case 'cancel':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'cancel', command.payload) };
    case 'extendBudget':
      return { kind: 'accepted', runId: command.runId, record: await gateway.send(command.runId, 'extendBudget', command.payload) };
  }
}
