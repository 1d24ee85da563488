// Starts an HTTP server listening and says where: the one way the service's own servers (forge, registry,
// previews, web chat) begin, so a port in use fails the start with the OS's error instead of an event later.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on `port` (0: any free one) at `host`; resolves with the port and the host as a URL writes it. */
export function listenOn(server: http.Server, port: number, host: string): Promise<{ port: number; hostInUrl: string }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      resolve({ port: address.port, hostInUrl: address.family === 'IPv6' ? `[${address.address}]` : address.address });
    });
  });
}
