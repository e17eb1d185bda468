import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { StdioUpstreamConfig } from '#common';
import type { Logger } from 'pino';
import { rpcError } from '../errors/error-response.js';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import { classify, idKey, type RpcId } from '../jsonrpc/messages.js';

export interface StdioSessionOptions {
  namespace: string;
  upstream: StdioUpstreamConfig;
  timeoutMs: number;
  token: string;
  recorder: ExchangeRecorder;
  filter: () => ToolFilter;
  logger: Logger;
  onClosed: (session: StdioSession) => void;
}

/**
 * One client session bridged to one child process: the MCP SDK's Streamable HTTP server
 * transport faces the client (SSE framing, GET stream, DELETE, protocol checks), the SDK's stdio
 * client transport faces the child, and every message between them passes the tool filter and
 * the event recorder. The child lives while the session does, until DELETE, idle reaping or a
 * crash; a crash ends the session with an error to every waiting request.
 */
export class StdioSession {
  readonly id = randomUUID();
  readonly server: StreamableHTTPServerTransport;
  private readonly child: StdioClientTransport;
  private readonly pending = new Map<string, { id: RpcId; timer: NodeJS.Timeout }>();
  private readonly progressTokens = new Map<string, RpcId>();
  private closed = false;
  lastActive = Date.now();

  constructor(private readonly options: StdioSessionOptions) {
    const { upstream } = options;
    this.child = new StdioClientTransport({
      command: upstream.command,
      args: upstream.args,
      env: { ...getDefaultEnvironment(), ...upstream.env },
      cwd: upstream.cwd,
      stderr: 'pipe',
    });
    this.server = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => options.token,
      onsessionclosed: () => void this.close('session deleted'),
    });
    this.server.onmessage = (message) => this.fromClient(message);
    this.child.onmessage = (message) => this.fromChild(message);
    this.child.onclose = () => void this.close('backend process exited');
    this.child.onerror = (error) => options.logger.warn({ namespace: options.namespace, err: error.message }, 'stdio backend error');
  }

  get token(): string {
    return this.options.token;
  }

  get idleTimeoutMs(): number {
    return this.options.upstream.idle_timeout;
  }

  async start(): Promise<void> {
    const stderr = this.child.stderr;
    if (stderr) {
      const lines = createInterface({ input: stderr as unknown as NodeJS.ReadableStream });
      lines.on('line', (line) =>
        this.options.logger.info({ namespace: this.options.namespace, session: this.id, stderr: line.slice(0, 4096) }, 'stdio backend stderr'),
      );
    }
    await this.child.start();
    await this.server.start();
  }

  /** Hands one HTTP request of this session to the SDK transport (the body is already parsed). */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, requestId: string): Promise<void> {
    this.lastActive = Date.now();
    this.options.recorder.identity.request_id = requestId;
    await this.server.handleRequest(req, res, body);
  }

  private fromClient(message: JSONRPCMessage): void {
    this.lastActive = Date.now();
    let classified;
    try {
      classified = classify(message);
    } catch {
      return; // the SDK transport already validated; nothing else reaches here
    }
    const bytes = Buffer.byteLength(JSON.stringify(message));
    if (classified.kind === 'request' && classified.method === 'tools/call' && !this.options.filter().allows(classified.tool)) {
      const answer = rpcError(classified.id!, -32602, `Tool not found: ${String(classified.tool)}`);
      this.options.recorder.answeredLocally(classified, 'denied_tool', bytes, Buffer.byteLength(JSON.stringify(answer)));
      void this.server.send(answer as JSONRPCMessage);
      return;
    }
    this.options.recorder.clientMessage(classified, bytes);
    if (classified.kind === 'request' && classified.id !== undefined) {
      const id = classified.id;
      const token = (classified.value.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken;
      if (token !== undefined) this.progressTokens.set(String(token), id);
      this.pending.set(idKey(id), { id, timer: this.requestTimer(id) });
    }
    this.child.send(message).catch((error: unknown) => {
      this.options.logger.warn({ err: String(error) }, 'could not write to stdio backend');
    });
  }

  private fromChild(message: JSONRPCMessage): void {
    this.lastActive = Date.now();
    const value = message as Record<string, unknown>;
    const isResponse = 'id' in value && ('result' in value || 'error' in value);
    let related: RpcId | undefined;
    if (isResponse) {
      const key = idKey(value.id as RpcId);
      const entry = this.pending.get(key);
      if (entry) {
        clearTimeout(entry.timer);
        this.pending.delete(key);
      }
      if (this.options.recorder.methodOf(value.id as RpcId) === 'tools/list') {
        this.options.filter().filterListResult(value.result);
      }
    } else {
      related = this.relatedRequest(value);
    }
    this.options.recorder.serverMessage(value, Buffer.byteLength(JSON.stringify(message)), 200);
    this.server.send(message, related === undefined ? undefined : { relatedRequestId: related }).catch(() =>
      // The request's stream is gone (client disconnected): fall back to the GET stream.
      this.server.send(message).catch(() => undefined),
    );
  }

  /** Progress goes to its request's stream; other server messages to the newest open request. */
  private relatedRequest(value: Record<string, unknown>): RpcId | undefined {
    if (value.method === 'notifications/progress') {
      const token = (value.params as { progressToken?: unknown } | undefined)?.progressToken;
      const id = token === undefined ? undefined : this.progressTokens.get(String(token));
      if (id !== undefined && this.pending.has(idKey(id))) {
        const entry = this.pending.get(idKey(id))!;
        clearTimeout(entry.timer);
        entry.timer = this.requestTimer(id); // progress resets the timeout
        return id;
      }
    }
    let newest: RpcId | undefined;
    for (const entry of this.pending.values()) newest = entry.id;
    return newest;
  }

  private requestTimer(id: RpcId): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (!this.pending.delete(idKey(id))) return;
      const answer = rpcError(id, -32001, `Request timed out after ${this.options.timeoutMs} ms`);
      this.options.recorder.serverMessage(answer, 0, 504);
      void this.server.send(answer as JSONRPCMessage).catch(() => undefined);
      void this.child
        .send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'gateway timeout' } })
        .catch(() => undefined);
    }, this.options.timeoutMs);
    timer.unref();
    return timer;
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.logger.info({ namespace: this.options.namespace, session: this.id, reason }, 'stdio session closed');
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      const answer = rpcError(entry.id, -32000, `Backend unavailable: ${reason}`);
      await this.server.send(answer as JSONRPCMessage).catch(() => undefined);
    }
    this.options.recorder.finish('upstream_error', 502, 'backend_exited');
    this.pending.clear();
    await this.child.close().catch(() => undefined);
    await this.server.close().catch(() => undefined);
    this.options.onClosed(this);
  }
}
