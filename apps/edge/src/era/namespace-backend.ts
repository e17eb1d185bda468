import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import { StreamableHttpBackend } from '../bridge/http-backend.js';
import { idKey, isResponse, type RpcId } from '../jsonrpc/messages.js';
import { endConnection, type MemberConnection } from '../virtual/virtual-backend.js';

/**
 * The backend of a 2026-07-28 client's session on a namespace (not a virtual server): the
 * namespace's own backend as it is. Its initialize result is the backend's (server info and
 * instructions untouched), every message passes both ways unchanged, and a backend that cannot
 * be reached, has no room (`max_children`) or goes away fails the requests waiting on it with
 * the gateway's error (502 `upstream_error`, 503 at capacity), as a 2025 client's session
 * does. Leaving a down backend out of an answer is a virtual server's rule for its members, not
 * a namespace's: here it would be a success with nothing in it.
 */
export class NamespaceBackend {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  /** Answers a request with the gateway's error (the era bridge records it). */
  onfailure?: (id: RpcId, code: ErrorCode, message: string) => void;
  /** Requests sent and not answered yet, by id key. */
  private readonly waiting = new Map<string, RpcId>();
  private readonly connection: Promise<MemberConnection>;
  /** The connection once made: released the moment close() begins (see close). */
  private made?: MemberConnection;
  private closed = false;

  constructor(
    connect: () => Promise<MemberConnection>,
    private readonly logger: Logger,
  ) {
    this.connection = this.open(connect);
    this.connection.catch((error: unknown) => this.gone(error));
  }

  /** Returns at once: answers arrive through `onmessage` (or `onfailure`). */
  send(message: JSONRPCMessage): Promise<void> {
    const value = message as Record<string, unknown>;
    const id = value.id as RpcId | null | undefined;
    if (!isResponse(value) && id !== undefined && id !== null) this.waiting.set(idKey(id), id);
    this.connection
      .then(({ transport }) => transport.send(message))
      .catch((error: unknown) => this.gone(error));
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Given back at once, not after a turn: a pool that ends an idle connection to make room
    // for a new one opens it right after, against the same per-key count.
    this.made?.release();
    const connection = await this.connection.catch(() => undefined);
    if (connection) await endConnection(connection);
    this.onclose?.();
  }

  private async open(connect: () => Promise<MemberConnection>): Promise<MemberConnection> {
    const connection = await connect();
    this.made = connection;
    const { transport } = connection;
    transport.onmessage = (message) => {
      const value = message as Record<string, unknown>;
      if (isResponse(value)) this.waiting.delete(idKey(value.id as RpcId));
      if (!this.closed) this.onmessage?.(message);
    };
    transport.onclose = () => this.gone(new Error('the backend closed the connection'));
    if (transport instanceof StreamableHttpBackend)
      transport.onfailure = (id, code, message) => {
        if (this.waiting.delete(idKey(id)) && !this.closed) this.onfailure?.(id, code, message);
      };
    transport.onerror = (error) =>
      this.logger.warn({ err: error.message }, 'backend transport error');
    if (this.closed) {
      await endConnection(connection);
      throw new Error('closed');
    }
    try {
      await transport.start();
    } catch (error) {
      // A transport that failed to start may still hold what start() made (an SSE client keeps
      // reconnecting to an unreachable backend): it is closed here, as nothing else will.
      await endConnection(connection);
      throw error;
    }
    return connection;
  }

  /** The backend is unreachable or gone: what waits on it fails, and the session ends. */
  private gone(error: unknown): void {
    if (this.closed) return;
    const known = error instanceof GatewayError;
    const code = known ? error.code : ErrorCode.UpstreamError;
    this.logger.warn({ err: String(error) }, 'backend of a 2026-07-28 client unavailable');
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    // The reason (an address, an exit code) is the log's; the client is told what.
    for (const id of waiting)
      this.onfailure?.(id, code, known ? error.message : 'Backend unavailable');
    void this.close();
  }
}
