// Runs inside the sandbox (plain JavaScript, started with node): listens on each allowed loopback port
// and relays every connection through the Unix socket the worker provides for that port, then runs the
// command and exits with its status. Only the ports given exist; the sandbox has no other network.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');

/** Joins two connections both ways; either one failing ends both. (The worker's side of the relay uses it too.) */
function splice(a, b) {
  a.pipe(b).pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end);
  b.on('error', end);
}

function main() {
  const [ports, command] = process.argv.slice(2);
  const listening = ports.split(',').map(
    (port) =>
      new Promise((resolve, reject) => {
        const server = net.createServer((inside) => splice(inside, net.connect(`/run/sandbox/ports/${port}`)));
        server.once('error', reject);
        server.listen(Number(port), '127.0.0.1', () => resolve(server));
      }),
  );
  Promise.all(listening).then(
    () => {
      const child = spawn('sh', ['-c', command], { stdio: 'inherit' });
      child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 9 : 1)));
    },
    (error) => {
      console.error(`sandbox: could not forward the allowed ports: ${error.message}`);
      process.exit(125);
    },
  );
}

module.exports = { splice };
if (require.main === module) main();
