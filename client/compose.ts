// The CLI's composition root: from the service's configuration to a connected gateway and operator, with
// the errors a person at a terminal can act on. Nothing of the worker is started or loaded here.
import type { Client } from '@temporalio/client';
import { loadCatalog } from '../domain/catalog-loader';
import { catalogEnvironment, type ServiceConfig } from '../worker/config';
import { connectClient } from './connect';
import { ChangeRequestGateway, UnreachableError } from './gateway';
import { Operator } from './operator';
import { Deployments } from './deployments';

export interface CliParts {
  gateway(): Promise<ChangeRequestGateway>;
  operator(): Promise<Operator>;
  deployments(): Promise<Deployments>;
}

export function composeCli(config: ServiceConfig): CliParts {
  const connect = async (): Promise<Client> => {
    try {
      return await connectClient(config.temporal.address, config.temporal.namespace);
    } catch (error) {
      throw new UnreachableError(`cannot reach the Temporal server at ${config.temporal.address}; is \`npm start\` running? (${(error as Error).message.split('\n')[0]})`);
    }
  };
  const gatewayFor = (client: Client) =>
    new ChangeRequestGateway(client, { taskQueue: config.temporal.taskQueue, catalog: () => loadCatalog(config.catalogPath, catalogEnvironment(config)) });
  return {
    gateway: async () => gatewayFor(await connect()),
    operator: async () => {
      const client = await connect();
      return new Operator(client, gatewayFor(client), config.temporal.namespace);
    },
    deployments: async () => new Deployments(await connect(), config.temporal.namespace, config.versioning.deploymentName, config.temporal.taskQueue),
  };
}
