// A gateway that counts its `state` queries (everything else passes through), to see what readers cost.
import type { ChangeRequestGateway } from '../../client/gateway';

export function countingStateQueries(inner: ChangeRequestGateway): { gateway: ChangeRequestGateway; count(): number } {
  let queries = 0;
  const gateway = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'state') return (...args: Parameters<typeof target.state>) => (queries++, target.state(...args));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { gateway, count: () => queries };
}
