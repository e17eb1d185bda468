import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { eventually, GiveUp } from './eventually.js';

/** The repository root: the nearest folder with package.json (from source or from dist/). */
export const ROOT = findRoot(import.meta.dirname);

function findRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
  return mkdtempSync(join(tmpdir(), `mcpgw-${prefix}-`));
}

// The poll helper lives in eventually.ts (no child processes: unit specs import it there).
export { eventually, GiveUp } from './eventually.js';

/**
 * A child process whose output is kept for assertions and failure reports: all of it by default
 * (tests grep whole logs), the last `maxOutput` characters when bounded (long bench runs).
 */
export class Proc {
  output = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    maxOutput = Infinity,
  ) {
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > maxOutput) this.output = this.output.slice(-maxOutput);
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

  /**
   * For `eventually` probes: throws GiveUp (with the output) once the process has exited, so a
   * wait on a dead process ends at once instead of at its timeout.
   */
  assertAlive(waitingFor: string): void {
    if (!this.alive) throw new GiveUp(`${this.name} exited before ${waitingFor}:\n${this.output}`);
  }

  /**
   * Waits until the output matches `pattern` (a process announcing it is ready, or its ports);
   * returns the first capture group, or the whole match when there is none.
   */
  announced(pattern: RegExp, timeoutMs: number): Promise<string> {
    return eventually(
      () => {
        const match = pattern.exec(this.output);
        if (match) return match[1] ?? match[0];
        this.assertAlive(`printing ${pattern}`);
        return undefined;
      },
      timeoutMs,
      () => `${this.name} to print ${pattern} (output:\n${this.output.slice(-2000)})`,
    );
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
  maxOutput = Infinity,
): Proc {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(name, child, maxOutput);
}

/**
 * The Node flags a service's npm script starts it with (`start:edge` → `--max-semi-space-size=64`),
 * so tests and the bench run a service exactly as `npm run start:*` does.
 */
export function serviceNodeFlags(service: 'edge' | 'auth' | 'analytics' | 'standalone'): string[] {
  const scripts = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  const script = scripts[service === 'standalone' ? 'start' : `start:${service}`];
  const words = script.split(/\s+/);
  const entry = `dist/apps/${service}/src/main.js`;
  if (words[0] !== 'node' || words.at(-1) !== entry)
    throw new Error(`package.json's script for ${service} is not "node [flags] ${entry}"`);
  return words.slice(1, -1);
}

/**
 * Runs one of the built services (`npm run build` precedes the tests) with the Node flags of its
 * npm script; `nodeArgs` go before the script too (e.g. --cpu-prof).
 */
export function startService(
  service: 'edge' | 'auth' | 'analytics' | 'standalone',
  env: Record<string, string>,
  nodeArgs: string[] = [],
  maxOutput = Infinity,
): Proc {
  return startProcess(
    service,
    process.execPath,
    [...serviceNodeFlags(service), ...nodeArgs, join(ROOT, `dist/apps/${service}/src/main.js`)],
    env,
    maxOutput,
  );
}

export async function waitForHttp(url: string, proc?: Proc, timeoutMs = 20_000): Promise<void> {
  await eventually(
    async () => {
      proc?.assertAlive(`${url} answered`);
      const response = await fetch(url);
      await response.arrayBuffer(); // drain: no socket left half-read
      return response.ok;
    },
    timeoutMs,
    () => `${url}${proc ? ` (${proc.name} output:\n${proc.output.slice(-2000)})` : ''}`,
  );
}

/** A private nats-server with JetStream for one test file: isolated, and safe to kill. */
export interface NatsHandle {
  url: string;
  proc: Proc;
  dir: string;
  /** Kills the server (SIGKILL: a crash, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same JetStream store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsHandle> {
  const port = await freePort();
  const dir = tempDir('nats');
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find(
    existsSync,
  );
  const launch = async () => {
    const proc = startProcess('nats', bin ?? 'nats-server', [
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-js',
      '-sd',
      dir,
    ]);
    await proc.announced(/Server is ready/, 10_000);
    return proc;
  };
  const handle: NatsHandle = {
    url: `nats://127.0.0.1:${port}`,
    proc: await launch(),
    dir,
    kill: async () => handle.proc.stop('SIGKILL'),
    restart: async () => {
      handle.proc = await launch();
    },
    stop: async () => {
      await handle.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** `@modelcontextprotocol/server-everything` over HTTP on a free loopback port. */
export async function startEverything(
  mode: 'streamableHttp' | 'sse',
): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = startProcess(
    'everything',
    process.execPath,
    [join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), mode],
    { PORT: String(port), HOST: '127.0.0.1' },
  );
  const path = mode === 'sse' ? '/sse' : '/mcp';
  await proc.announced(new RegExp(String(port)), 15_000);

  return { url: `http://127.0.0.1:${port}${path}`, proc };
}
