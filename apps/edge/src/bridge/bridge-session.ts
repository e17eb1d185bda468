import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { NamespaceConfig } from '#common';
import type { Logger } from 'pino';
import { rpcError } from '../errors/error-response.js';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import { classify, idKey, type RpcId } from '../jsonrpc/messages.js';
import { createBackendTransport } from './backend-transport.js';
import { LegacySseStream } from './legacy-sse-stream.js';

export type ClientSide = 'streamable' | 'legacy';

export interface BridgeSessionOptions {
  namespace: string;
  upstream: NamespaceConfig['upstream'];
  timeoutMs: number;
  idleTimeoutMs: number;
  client: ClientSide;
  /** The gateway session id; computed lazily because it names this session's id. */
  token: (sessionId: string) => string;
  recorder: ExchangeRecorder;
  filter: () => ToolFilter;
  logger: Logger;
  onClosed: (session: BridgeSession) => void;
}

/**
 * One client session bridged to one backend connection that lives in this edge: a stdio child,
 * a legacy SSE backend, or (for legacy SSE clients) a Streamable HTTP backend. The client side
 * is the MCP SDK's Streamable HTTP server transport or a legacy SSE stream; the backend side an
 * SDK client transport. Every message between them passes the tool filter and the event
 * recorder. The session ends with DELETE (or the legacy stream closing), idle reaping, or the
 * backend going away — then every waiting request gets a JSON-RPC error.
 */
export class BridgeSession {
  readonly id = randomUUID();
  readonly token: string;
  private readonly backend: Transport;
  private streamable?: StreamableHTTPServerTransport;
  private legacy?: LegacySseStream;
  private readonly pending = new Map<string, { id: RpcId; timer: NodeJS.Timeout }>();
  private readonly progressTokens = new Map<string, RpcId>();
  private closed = false;
  lastActive = Date.now();

  constructor(private readonly options: BridgeSessionOptions) {
    this.token = options.token(this.id);
    const logger = options.logger.child({ namespace: options.namespace, session: this.id });
    this.backend = createBackendTransport(options.upstream, logger);
    this.backend.onmessage = (message) => this.fromBackend(message);
    this.backend.onclose = () => void this.close('backend closed the connection');
    this.backend.onerror = (error) =>
      logger.warn({ err: error.message }, 'backend transport error');
    if (options.client === 'streamable') {
      this.streamable = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => this.token,
        onsessionclosed: () => void this.close('session deleted by the client'),
      });
      this.streamable.onmessage = (message) => this.fromClient(message);
    }
  }

  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs;
  }

  get clientSide(): ClientSide {
    return this.options.client;
  }

  async start(): Promise<void> {
    await this.backend.start();
    await this.streamable?.start();
  }

  /** Streamable HTTP client: the SDK transport handles the request (body already parsed). */
  async handleStreamable(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    requestId: string,
  ): Promise<void> {
    this.touch(requestId);
    await this.streamable!.handleRequest(req, res, body);
  }

  /** Legacy SSE client: the GET stream that carries every server message of the session. */
  attachLegacyStream(res: ServerResponse, endpoint: string): void {
    this.legacy = new LegacySseStream(res, endpoint);
    this.legacy.onclose = () => void this.close('client closed the SSE stream');
  }

  /** Legacy SSE client: the messages of one POST to /messages (answers go to the stream). */
  receive(messages: JSONRPCMessage[], requestId: string): void {
    this.touch(requestId);
    for (const message of messages) this.fromClient(message);
  }

  private touch(requestId: string): void {
    this.lastActive = Date.now();
    this.options.recorder.identity.request_id = requestId;
  }

  private toClient(message: JSONRPCMessage, related?: RpcId): Promise<void> {
    if (this.legacy) return this.legacy.send(message);
    const transport = this.streamable!;
    return transport
      .send(message, related === undefined ? undefined : { relatedRequestId: related })
      .catch(() =>
        related === undefined ? undefined : transport.send(message).catch(() => undefined),
      );
  }

  private fromClient(message: JSONRPCMessage): void {
    this.lastActive = Date.now();
    let classified;
    try {
      classified = classify(message);
    } catch {
      return; // validated before reaching the session
    }
    const bytes = Buffer.byteLength(JSON.stringify(message));
    if (
      classified.kind === 'request' &&
      classified.method === 'tools/call' &&
      !this.options.filter().allows(classified.tool)
    ) {
      const answer = rpcError(
        classified.id!,
        -32602,
        `Tool not found: ${String(classified.tool)}`,
      ) as JSONRPCMessage;
      this.options.recorder.answeredLocally(
        classified,
        'denied_tool',
        bytes,
        Buffer.byteLength(JSON.stringify(answer)),
      );
      void this.toClient(answer);
      return;
    }
    this.options.recorder.clientMessage(classified, bytes);
    if (classified.kind === 'request' && classified.id !== undefined) {
      const id = classified.id;
      const token = (classified.value.params as { _meta?: { progressToken?: unknown } } | undefined)
        ?._meta?.progressToken;
      if (token !== undefined) this.progressTokens.set(progressKey(token), id);
      this.pending.set(idKey(id), { id, timer: this.requestTimer(id) });
    }
    this.backend.send(message).catch((error: unknown) => {
      this.options.logger.warn(
        {
          request_id: this.options.recorder.identity.request_id,
          namespace: this.options.namespace,
          err: String(error),
        },
        'could not send to backend',
      );
      if (classified.kind === 'request')
        this.failRequest(classified.id!, -32000, `Backend unavailable: ${String(error)}`, 502);
    });
  }

  private fromBackend(message: JSONRPCMessage): void {
    this.lastActive = Date.now();
    const value = message as Record<string, unknown>;
    const isResponse =
      'id' in value && ('result' in value || 'error' in value) && !('method' in value);
    let related: RpcId | undefined;
    if (isResponse) {
      const key = idKey(value.id as RpcId);
      const entry = this.pending.get(key);
      if (entry) {
        clearTimeout(entry.timer);
        this.pending.delete(key);
      }
      const method = this.options.recorder.methodOf(value.id as RpcId);
      if (method === 'tools/list') this.options.filter().filterListResult(value.result);
      if (method === 'initialize' && this.backend instanceof StreamableHTTPClientTransport) {
        const version = (value.result as { protocolVersion?: unknown } | undefined)
          ?.protocolVersion;
        if (typeof version === 'string') this.backend.setProtocolVersion(version);
      }
    } else {
      related = this.relatedRequest(value);
    }
    this.options.recorder.serverMessage(value, Buffer.byteLength(JSON.stringify(message)), 200);
    void this.toClient(message, related);
  }

  /** Progress goes to its request's stream; other server messages to the newest open request. */
  private relatedRequest(value: Record<string, unknown>): RpcId | undefined {
    if (value.method === 'notifications/progress') {
      const token = (value.params as { progressToken?: unknown } | undefined)?.progressToken;
      const id = token === undefined ? undefined : this.progressTokens.get(progressKey(token));
      const entry = id === undefined ? undefined : this.pending.get(idKey(id));
      if (entry && id !== undefined) {
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
      this.failRequest(id, -32001, `Request timed out after ${this.options.timeoutMs} ms`, 504);
      void this.backend
        .send({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: id, reason: 'gateway timeout' },
        })
        .catch(() => undefined);
    }, this.options.timeoutMs);
    timer.unref();
    return timer;
  }

  private failRequest(id: RpcId, code: number, message: string, status: number): void {
    const entry = this.pending.get(idKey(id));
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(idKey(id));
    const answer = rpcError(id, code, message);
    this.options.recorder.serverMessage(answer, 0, status);
    void this.toClient(answer as JSONRPCMessage);
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.logger.info(
      {
        request_id: this.options.recorder.identity.request_id,
        namespace: this.options.namespace,
        session: this.id,
        reason,
      },
      'bridged session closed',
    );
    for (const entry of [...this.pending.values()]) {
      this.failRequest(entry.id, -32000, `Backend unavailable: ${reason}`, 502);
    }
    this.options.recorder.finish('upstream_error', 502, 'backend_closed');
    this.options.onClosed(this);
    if (this.backend instanceof StreamableHTTPClientTransport && this.backend.sessionId) {
      await this.backend.terminateSession().catch(() => undefined);
    }
    await this.backend.close().catch(() => undefined);
    await this.streamable?.close().catch(() => undefined);
    await this.legacy?.close();
  }
}

/** Progress tokens are strings or numbers; anything else is keyed by its JSON form. */
function progressKey(token: unknown): string {
  return typeof token === 'string' || typeof token === 'number'
    ? String(token)
    : JSON.stringify(token);
}
