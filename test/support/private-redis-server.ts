import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from './processes.js';

/**
 * Test support (outside src/, so never built into dist/ with the edge): a real redis-server
 * that belongs to one test file, on a free port, without persistence, so the file can kill it,
 * stall it and start it again without touching the shared Redis other tests use.
 */
export interface PrivateRedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGKILL (a crash, not a shutdown), resolved once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing, as a hung host would. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts it again on the same port (empty: nothing was persisted). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const BINARIES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'];

export async function startPrivateRedisServer(): Promise<PrivateRedisServer> {
  const binary = BINARIES.find((candidate) => existsSync(candidate));
  if (!binary)
    throw new Error(
      'redis-server is not installed; install it with: apt-get install -y redis-server',
    );
  const port = await freePort();
  let child = await launch(binary, port);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    restart: async () => {
      await kill();
      child = await launch(binary, port);
    },
    stop: kill,
  };
}

async function launch(binary: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    binary,
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start:\n${output}`)),
      10_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  return child;
}
