import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, type HttpUpstreamConfig } from '#common';
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
 * Failures in a row (the stream broke, or could not be opened again) after which the backend is
 * taken for gone and the transport closes: ~2 s after a backend died, not a reconnect for ever.
 */
const GET_ATTEMPTS = 3;

/**
 * The client side of a Streamable HTTP session with a backend, for a session the gateway holds
 * (a virtual server's member, a legacy SSE client on a Streamable HTTP backend): each message is
 * one POST through a shared undici agent, its answer read as JSON or as an SSE stream, every
 * message parsed once. After `notifications/initialized` a GET stream carries the backend's
 * messages that answer no POST (405: the backend has none). Only the configured upstream headers
 * are sent, never the client's; the backend's session id and negotiated revision follow the
 * protocol. A 404 on a session the backend issued means the backend forgot it: the transport
 * closes, so its holder can start anew; so does a GET stream that broke and could not be opened
 * again (the backend died). A POST's answer stream that breaks before its answer (connection
 * reset, truncated) fails that request at once through `onfailure`.
 */
export class StreamableHttpBackend implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  /** Answers a request with the gateway's error: its answer can no longer come. */
  onfailure?: (id: RpcId, code: ErrorCode, message: string) => void;
  sessionId?: string;
  private protocolVersion?: string;
  private readonly origin: string;
  private readonly path: string;
  private readonly streams = new Set<AbortController>();
  private closed = false;
  /** GET failures in a row (see GET_ATTEMPTS). */
  private getFailures = 0;
  /**
   * Set while initialize is on its way: what is sent meanwhile (a client that pipelines) waits
   * for its answer, which names the session, and then goes in the order it was sent.
   */
  private initializing?: Promise<void>;

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
    if ((message as { method?: unknown }).method === 'initialize' && !isResponse(message)) {
      const sent = this.post(message);
      this.initializing = sent.then(
        () => undefined,
        () => undefined,
      );
      return sent;
    }
    while (this.initializing) {
      const initializing = this.initializing;
      await initializing;
      if (this.initializing === initializing) this.initializing = undefined;
    }
    return this.post(message);
  }

  private async post(message: JSONRPCMessage): Promise<void> {
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

  /**
   * The GET stream of the backend's own messages; opened again while the session lasts. A stream
   * that ended cleanly is opened again as often as it ends; one that broke, or could not be
   * opened, GET_ATTEMPTS times in a row means the backend is gone: the transport closes.
   */
  private listen(): void {
    if (this.closed) return;
    const abort = new AbortController();
    this.streams.add(abort);
    const again = (failed: boolean) => {
      this.streams.delete(abort);
      if (this.closed || abort.signal.aborted) return;
      this.getFailures = failed ? this.getFailures + 1 : 0;
      if (this.getFailures >= GET_ATTEMPTS) {
        this.onerror?.(new Error(`the backend's GET stream failed ${GET_ATTEMPTS} times in a row`));
        void this.close();
        return;
      }
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
          again(true);
          return;
        }
        this.getFailures = 0;
        again(!(await this.read(response.body, null)));
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) this.onerror?.(asError(error));
        again(true);
      });
  }

  /**
   * Each event of an SSE answer, parsed once and handed on; false when the stream broke. A POST's
   * stream (`related`: its request's id) that breaks before the request's answer fails it.
   */
  private async read(
    body: Dispatcher.ResponseData['body'],
    related: RpcId | null,
  ): Promise<boolean> {
    let answered = false;
    try {
      await eachEventData(body, (data) => {
        if (this.deliver(data, related, related ?? undefined)) answered = true;
      });
      return true;
    } catch (error) {
      if (this.closed) return true;
      this.onerror?.(asError(error));
      if (related !== null && !answered)
        this.onfailure?.(related, ErrorCode.UpstreamError, 'Backend unavailable');
      return false;
    }
  }

  /**
   * Hands on the JSON-RPC message(s) of `text`; false when it holds none (with `answers`: none
   * that answers the request of that id).
   */
  private deliver(text: string, related: RpcId | null, answers?: RpcId): boolean {
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
      if (
        answers === undefined ||
        (isResponse(message as Record<string, unknown>) &&
          (message as { id?: unknown }).id === answers)
      )
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
