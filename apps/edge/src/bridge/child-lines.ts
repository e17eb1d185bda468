import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** After stdin closes, how long a child may take to exit before SIGTERM, then before SIGKILL. */
const EXIT_GRACE_MS = 2_000;
/** The longest line a child may write (a larger message is refused, and so is its child). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * A stdio MCP server as newline-delimited JSON over its stdin and stdout, with no more work per
 * message than the gateway needs: each line the child writes is parsed once (the tap then reads
 * that object), each message to it serialised once. What the SDK's StdioClientTransport does on
 * top (a zod parse of every message against the whole JSON-RPC schema) is left out: the tap
 * judges every message by what it is, and a line that is not a JSON-RPC message object is
 * reported and dropped here, as the SDK drops it. Closing follows the MCP stdio transport:
 * stdin closed, then SIGTERM, then SIGKILL.
 */
export class ChildLines {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  private child?: ChildProcess;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private exited = false;

  constructor(
    private readonly options: {
      command: string;
      args: string[];
      env: Record<string, string>;
      cwd?: string;
    },
  ) {}

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get stderr(): Readable | null {
    return this.child?.stderr ?? null;
  }

  /** Spawns the child; resolves once it runs, rejects when it cannot be started. */
  start(): Promise<void> {
    const child = spawn(this.options.command, this.options.args, {
      env: this.options.env,
      cwd: this.options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => this.read(chunk));
    child.stdin.on('error', (error) => this.onerror?.(error));
    child.on('close', () => {
      this.exited = true;
      this.onclose?.();
    });
    return new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => {
        this.onerror?.(error);
        reject(error);
      });
    });
  }

  /** Writes one message; waits for the pipe to drain when the child reads slower than we write. */
  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.exited || !stdin.writable)
      throw new Error('the stdio backend is not running');
    if (!stdin.write(`${JSON.stringify(message)}\n`)) {
      await new Promise<void>((resolve) => stdin.once('drain', resolve));
    }
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.stdin?.end();
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const timer = new Promise<boolean>((resolve) =>
        setTimeout(() => resolve(false), EXIT_GRACE_MS).unref(),
      );
      if (await Promise.race([exited.then(() => true), timer])) return;
      child.kill(signal);
    }
    await exited;
  }

  private read(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, end);
      start = end + 1;
      if (this.pending.length === 0) {
        this.line(piece);
      } else {
        this.pending.push(piece);
        this.line(Buffer.concat(this.pending));
        this.pending = [];
        this.pendingBytes = 0;
      }
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > MAX_LINE_BYTES) {
        this.pending = [];
        this.pendingBytes = 0;
        this.onerror?.(new Error('the stdio backend wrote a line over 64 MiB; it is stopped'));
        void this.close();
      }
    }
  }

  private line(bytes: Buffer): void {
    const text = bytes.toString('utf8').trim();
    if (text === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.onerror?.(
        new Error(`the stdio backend wrote a line that is not JSON: ${text.slice(0, 200)}`),
      );
      return;
    }
    if (!isJsonRpcMessage(value)) {
      this.onerror?.(
        new Error(
          `the stdio backend wrote JSON that is not a JSON-RPC message: ${text.slice(0, 200)}`,
        ),
      );
      return;
    }
    this.onmessage?.(value);
  }
}

/** A JSON-RPC 2.0 request, notification or response object (what the SDK's schema accepts). */
function isJsonRpcMessage(value: unknown): value is JSONRPCMessage {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const message = value as Record<string, unknown>;
  if (message.jsonrpc !== '2.0') return false;
  if (typeof message.method === 'string') {
    return !('id' in message) || typeof message.id === 'string' || typeof message.id === 'number';
  }
  const id = message.id;
  if (typeof id !== 'string' && typeof id !== 'number') return false;
  if ('result' in message) return typeof message.result === 'object' && message.result !== null;
  const error = message.error as { code?: unknown; message?: unknown } | undefined;
  return !!error && typeof error.code === 'number' && typeof error.message === 'string';
}
