import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

// SPEC §2: `npm test` starts nats-server / redis-server when they are not listening and the
// binaries exist; otherwise it fails saying how to install them.
const SERVICES = [
  {
    name: 'nats-server',
    port: 4222,
    binary: ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'],
    args: (bin: string) => [
      bin,
      '-a',
      '127.0.0.1',
      '-p',
      '4222',
      '-js',
      '-sd',
      '/tmp/mcp-gateway-nats',
    ],
  },
  {
    name: 'redis-server',
    port: 6379,
    binary: ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'],
    args: (bin: string) => [
      bin,
      '--bind',
      '127.0.0.1',
      '--port',
      '6379',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
  },
];

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export default async function globalSetup(): Promise<void> {
  for (const service of SERVICES) {
    if (await listening(service.port)) continue;
    const bin = service.binary.find((candidate) => existsSync(candidate));
    if (!bin) {
      throw new Error(
        `${service.name} is not listening on 127.0.0.1:${service.port} and is not installed. ` +
          `Install it with: apt-get install -y nats-server redis-server`,
      );
    }
    const [command, ...args] = service.args(bin);
    // Detached: the service outlives this test run, as the machine's own services do.
    spawn(command, args, { stdio: 'ignore', detached: true }).unref();
    // Its own loop, not eventually.ts: Jest loads this file outside the test runtime, where
    // moduleNameMapper does not turn `./eventually.js` into the .ts source (ERR_MODULE_NOT_FOUND).
    const deadline = Date.now() + 10_000;
    while (!(await listening(service.port))) {
      if (Date.now() > deadline)
        throw new Error(`${service.name} did not start on port ${service.port}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
