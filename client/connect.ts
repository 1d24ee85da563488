// A Temporal client for the service's namespace: what the gateway, the operator CLI and the worker's own
// signals (progress, spend) are built on.
import { Client, Connection } from '@temporalio/client';

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}
