import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { HttpUpstreamConfig } from '#common';
import type { Dispatcher } from 'undici';
import { isResponse, type RpcId } from '../jsonrpc/messages.js';
import {
  backendAgent as agent,
  dispatchTarget,
  eachEventData,
  readBounded,
} from './backend-http.js';
import { markRelated } from './related-request.js';

/** A GET stream that ended is opened again after this (while the session lasts). */
const RECONNECT_MS = 1_000;

/**
 * The client side of a Streamable HTTP session with a backend, for a session the gateway holds
 * (a virtual server's member, a legacy SSE client on a Streamable HTTP backend): each message is
 * one POST through a shared undici agent, its answer read as JSON or as an SSE stream, every
 * message parsed once. After `notifications/initialized` a GET stream carries the backend's
 * messages that answer no POST (405: the backend has none). Only the configured upstream headers
 * are sent, never the client's; the backend's session id and negotiated revision follow the
 * protocol. A 404 on a session the backend issued means the backend forgot it: the transport
 * closes, so its holder can start anew.
 */
export class StreamableHttpBackend implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  sessionId?: string;
  private protocolVersion?: string;
  private readonly origin: string;
  private readonly path: string;
  private readonly streams = new Set<AbortController>();
  private closed = false;

  constructor(private readonly upstream: HttpUpstreamConfig) {
    ({ origin: this.origin, path: this.path } = dispatchTarget(upstream.url));
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  /** Resolves once the backend took the message (its answers arrive through `onmessage`). */
  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error('backend connection closed');
    const body = JSON.stringify(message);
    // What the backend sends on this POST's answer is this request's (a notification's: none).
    const id = (message as { id?: RpcId | null }).id;
    const related = isResponse(message) ? null : (id ?? null);
    const response = await agent.request({
      origin: this.origin,
      path: this.path,
      method: 'POST',
      headers: this.headers({
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      }),
      body,
    });
    const session = response.headers['mcp-session-id'];
    if (typeof session === 'string' && this.sessionId === undefined) this.sessionId = session;
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode === 202 || response.statusCode === 204) {
      await response.body.dump();
      if ((message as { method?: unknown }).method === 'notifications/initialized') this.listen();
      return;
    }
    if (response.statusCode === 404 && this.sessionId !== undefined) {
      await response.body.dump();
      void this.close();
      throw new Error('the backend no longer knows the session (404)');
    }
    if (type.startsWith('text/event-stream') && response.statusCode === 200) {
      void this.read(response.body, related);
      return;
    }
    if (type.startsWith('application/json')) {
      const text = await readBounded(response.body);
      // An error status with a JSON-RPC body is an answer (e.g. a 400 for a request).
      if (this.deliver(text, related) || response.statusCode < 300) return;
    } else {
      await response.body.dump();
    }
    throw new Error(`backend answered HTTP ${response.statusCode}`);
  }

  /** Ends the backend's session (DELETE), as a client that leaves should. */
  async terminateSession(): Promise<void> {
    if (this.sessionId === undefined) return;
    const response = await agent.request({
      origin: this.origin,
      path: this.path,
      method: 'DELETE',
      headers: this.headers({}),
    });
    await response.body.dump();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const stream of this.streams) stream.abort();
    this.streams.clear();
    this.onclose?.();
    return Promise.resolve();
  }

  private headers(base: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { ...base };
    if (this.sessionId !== undefined) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion !== undefined) headers['mcp-protocol-version'] = this.protocolVersion;
    for (const [name, value] of Object.entries(this.upstream.headers))
      headers[name.toLowerCase()] = value;
    return headers;
  }

  /** The GET stream of the backend's own messages; opened again while the session lasts. */
  private listen(): void {
    if (this.closed) return;
    const abort = new AbortController();
    this.streams.add(abort);
    const again = () => {
      this.streams.delete(abort);
      if (this.closed || abort.signal.aborted) return;
      setTimeout(() => this.listen(), RECONNECT_MS).unref();
    };
    agent
      .request({
        origin: this.origin,
        path: this.path,
        method: 'GET',
        headers: this.headers({ accept: 'text/event-stream' }),
        signal: abort.signal,
        bodyTimeout: 0,
      })
      .then(async (response) => {
        if (response.statusCode === 405) {
          this.streams.delete(abort);
          await response.body.dump();
          return;
        }
        if (response.statusCode === 404 && this.sessionId !== undefined) {
          await response.body.dump();
          void this.close();
          return;
        }
        if (response.statusCode !== 200) {
          await response.body.dump();
          again();
          return;
        }
        await this.read(response.body, null);
        again();
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) this.onerror?.(asError(error));
        again();
      });
  }

  /** Each event of an SSE answer, parsed once and handed on. */
  private async read(body: Dispatcher.ResponseData['body'], related: RpcId | null): Promise<void> {
    try {
      await eachEventData(body, (data) => this.deliver(data, related));
    } catch (error) {
      if (!this.closed) this.onerror?.(asError(error));
    }
  }

  /** Hands on the JSON-RPC message(s) of `text`; false when it holds none. */
  private deliver(text: string, related: RpcId | null): boolean {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.onerror?.(new Error('backend sent a message that is not JSON'));
      return false;
    }
    const messages = Array.isArray(value) ? value : [value];
    let delivered = false;
    for (const message of messages) {
      if (
        !message ||
        typeof message !== 'object' ||
        (message as { jsonrpc?: unknown }).jsonrpc !== '2.0'
      )
        continue;
      delivered = true;
      markRelated(message as object, related);
      this.onmessage?.(message as JSONRPCMessage);
    }
    return delivered;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
