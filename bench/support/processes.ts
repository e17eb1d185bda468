import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// The bench runs from dist/bench/support: the repository root is three levels up.
export const ROOT = resolve(import.meta.dirname, '../../..');

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mcpgw-bench-${prefix}-`));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  what = 'condition',
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out waiting for ${what}${reason}`);
    }
    await sleep(intervalMs);
  }
}

/** A child process whose output is kept (bounded) for failure reports. */
export class Proc {
  output = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Proc {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(name, child);
}

/** Runs one of the built services; `nodeArgs` go before the script (e.g. --cpu-prof). */
export function startService(
  service: 'edge' | 'auth' | 'analytics',
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Proc {
  const script = join(ROOT, `dist/apps/${service}/src/main.js`);
  return startProcess(service, process.execPath, [...nodeArgs, script], env);
}

export async function waitForHttp(url: string, proc?: Proc, timeoutMs = 30_000): Promise<void> {
  await eventually(
    async () => {
      if (proc && !proc.alive) throw new Error(`${proc.name} exited:\n${proc.output}`);
      const response = await fetch(url);
      await response.arrayBuffer();
      return response.ok;
    },
    timeoutMs,
    `${url}${proc ? ` (${proc.name} output:\n${proc.output.slice(-2000)})` : ''}`,
  );
}

export interface Nats {
  url: string;
  proc: Proc;
  stop(): Promise<void>;
}

/** A private nats-server with JetStream: a fresh MCP_EVENTS stream for every run. */
export async function startNats(): Promise<Nats> {
  const port = await freePort();
  const dir = tempDir('nats');
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find(
    existsSync,
  );
  const proc = startProcess('nats', bin ?? 'nats-server', [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-js',
    '-sd',
    dir,
  ]);
  await eventually(
    () =>
      proc.output.includes('Server is ready') ||
      (proc.alive ? false : Promise.reject(new Error(proc.output))),
    10_000,
    'nats-server',
  );
  return {
    url: `nats://127.0.0.1:${port}`,
    proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}
