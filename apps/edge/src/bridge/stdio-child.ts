import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { StdioUpstreamConfig } from '#common';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { ChildLines } from './child-lines.js';

/** Messages a child sends before anybody listens (a warm child, unprompted) that are kept for its session. */
const MAX_HELD = 64;

/**
 * What makes two children interchangeable: the same program, arguments, environment and working
 * directory. A warm child of another spec is of an older config and never handed out.
 */
export function childSpec(upstream: StdioUpstreamConfig): string {
  const { command, args, env, cwd } = upstream;
  return JSON.stringify([command, args, Object.entries(env).sort(), cwd ?? null]);
}

/**
 * One stdio backend process, reached as newline-delimited JSON (child-lines.ts). It is counted
 * in `mcp_gateway_stdio_children` from spawn to exit, whoever holds it (a session, the warm pool,
 * a shared child), and its stderr goes to the log of its current holder, line by line. It can be
 * started before anybody listens (a warm child): it is sent nothing until its session's first
 * message, and what it says unprompted meanwhile is held and delivered, in order, once that first
 * message is on its way — when a child spawned for the session would have been heard.
 */
export class StdioChild implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  readonly spec: string;
  private readonly transport: ChildLines;
  private started?: Promise<void>;
  private held: JSONRPCMessage[] = [];
  private alive = false;
  private exited = false;

  constructor(
    upstream: StdioUpstreamConfig,
    private readonly namespace: string,
    private readonly metrics: EdgeMetrics,
    private logger: Logger,
  ) {
    this.spec = childSpec(upstream);
    this.transport = new ChildLines({
      command: upstream.command,
      args: upstream.args,
      env: { ...getDefaultEnvironment(), ...upstream.env },
      cwd: upstream.cwd,
    });
    this.transport.onmessage = (message) => this.received(message);
    this.transport.onerror = (error) => this.onerror?.(error);
    this.transport.onclose = () => this.exit();
  }

  /** Spawned and not yet gone. */
  get running(): boolean {
    return !this.exited;
  }

  get pid(): number | null {
    return this.transport.pid;
  }

  /** Log lines about this child go to `logger` from now on (its new holder's). */
  useLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** Spawns the process; later calls wait for the same spawn. */
  start(): Promise<void> {
    this.started ??= this.transport.start().then(
      () => {
        const stderr = this.transport.stderr;
        if (stderr) {
          createInterface({ input: stderr }).on('line', (line) =>
            this.logger.info({ stderr: line.slice(0, 4096) }, 'stdio backend stderr'),
          );
        }
        this.alive = true;
        this.metrics.stdioChildren.inc({ namespace: this.namespace });
      },
      (error: unknown) => {
        this.exit();
        throw error;
      },
    );
    return this.started;
  }

  async send(message: JSONRPCMessage): Promise<void> {
    await this.transport.send(message);
    if (this.held.length > 0) this.release();
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private received(message: JSONRPCMessage): void {
    // Behind what is held, in order; unheard (nobody listens yet), only so much is kept.
    if (this.onmessage && this.held.length === 0) this.onmessage(message);
    else if (this.onmessage || this.held.length < MAX_HELD) this.held.push(message);
  }

  private release(): void {
    if (!this.onmessage) return;
    const held = this.held;
    this.held = [];
    for (const message of held) this.onmessage(message);
  }

  private exit(): void {
    if (this.exited) return;
    this.exited = true;
    if (this.alive) this.metrics.stdioChildren.dec({ namespace: this.namespace });
    this.onclose?.();
  }
}
