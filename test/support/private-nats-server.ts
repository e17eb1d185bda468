import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, GiveUp } from './eventually.js';
import { freePort } from './processes.js';

/**
 * Test support (outside src/, so never built into dist/ with the library): a real nats-server
 * with JetStream that belongs to one test file, on a free port, so the file can kill and restart
 * it, and so its handlers of the real subjects never answer another file's requests on the
 * shared server.
 */
export interface PrivateNatsServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server at once (SIGKILL: a crash, not a shutdown) and waits until it is gone. */
  kill(): Promise<void>;
  /**
   * How many subscriptions the server holds that match a subject (monitoring endpoint): lets a
   * test wait until the server itself has seen a responder go, since a client's close() returns
   * before the server has processed it.
   */
  subscribers(subject: string): Promise<number>;
  /** Starts it again on the same port and store directory. */
  restart(): Promise<void>;
  /** Kills it and removes its JetStream store. */
  stop(): Promise<void>;
}

const BINARIES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

export async function startPrivateNatsServer(): Promise<PrivateNatsServer> {
  const binary = BINARIES.find((candidate) => existsSync(candidate));
  if (!binary)
    throw new Error(
      'nats-server is not installed; install it with: apt-get install -y nats-server',
    );
  const port = await freePort();
  const monitorPort = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'gw-nats-'));
  let child: ChildProcess | undefined;

  const start = async () => {
    const started = spawn(
      binary,
      ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-js', '-sd', storeDir],
      {
        stdio: 'ignore',
      },
    );
    child = started;
    let exited = false;
    started.once('exit', () => (exited = true));
    await eventually(
      async () => {
        if (await listening(port)) return true;
        if (exited) throw new GiveUp(`nats-server exited before listening on port ${port}`);
        return false;
      },
      10_000,
      `nats-server to listen on port ${port}`,
      25,
    );
  };

  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const gone = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await gone;
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    kill,
    restart: start,
    async subscribers(subject: string) {
      const url = `http://127.0.0.1:${monitorPort}/subsz?subs=1&test=${encodeURIComponent(subject)}`;
      const body = (await (await fetch(url)).json()) as { subscriptions_list?: unknown[] };
      return body.subscriptions_list?.length ?? 0;
    },
    async stop() {
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

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
