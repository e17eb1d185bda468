import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { HttpUpstreamConfig } from '#common';
import {
  backendAgent as agent,
  dispatchTarget,
  eachEventData,
  readBounded,
} from '../bridge/backend-http.js';
import { markRelated } from '../bridge/related-request.js';
import { isResponse, type RpcId } from '../jsonrpc/messages.js';
import { ENVELOPE, MODERN_VERSION } from './modern.js';

type Json = Record<string, unknown>;

/** Revisions a 2025-era client may be answered in (the gateway is its server). */
const CLIENT_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
/** A listen stream that ended is opened again after this (while the session lasts). */
const RELISTEN_MS = 1_000;

/** A request of the client's, served by stateless POSTs (one per input round). */
interface Call {
  clientId: RpcId;
  method: string;
  params: Json;
  abort: AbortController;
  /** The backend's requests for input of the current round: key -> our id, then the answer. */
  asked: Map<string, { id: string; answer?: unknown }>;
  requestState?: unknown;
}

/**
 * The backend side of a 2025-era client's session on a backend that speaks only 2026-07-28
 * (SPEC §4 behaviour 10, the reverse bridge): the gateway keeps the session the backend does not
 * have. `initialize` is answered from `server/discover`; every request is sent stateless, with
 * the session's envelope (the client's capabilities and info) and the mirrored headers; a
 * backend's `input_required` becomes requests to the client (sampling, elicitation, roots) on the
 * session, and the request is sent again with their answers; `notifications/*` the client would
 * get on its GET stream come from `subscriptions/listen`. `notifications/cancelled` ends the
 * request's POST (which cancels it at the backend).
 */
export class ModernBackend implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  private readonly origin: string;
  private readonly path: string;
  private capabilities: Json = {};
  private clientInfo: Json = { name: 'mcp-gateway', version: '1' };
  private serverCapabilities: Json = {};
  private readonly calls = new Map<string, Call>();
  private readonly asks = new Map<string, Call>();
  private readonly uris = new Set<string>();
  private listening?: AbortController;
  private nextId = 0;
  private closed = false;

  constructor(private readonly upstream: HttpUpstreamConfig) {
    ({ origin: this.origin, path: this.path } = dispatchTarget(upstream.url));
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    const value = message as Json;
    if (isResponse(value)) this.answered(value);
    else if (typeof value.method === 'string') {
      if ('id' in value && value.id !== undefined && value.id !== null)
        void this.request(
          value.id as RpcId,
          value.method,
          (value.params as Json | undefined) ?? {},
        );
      else this.notification(value.method, (value.params as Json | undefined) ?? {});
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.listening?.abort();
    for (const call of this.calls.values()) call.abort.abort();
    this.calls.clear();
    this.onclose?.();
    return Promise.resolve();
  }

  private async request(id: RpcId, method: string, params: Json): Promise<void> {
    switch (method) {
      case 'initialize':
        return this.initialize(id, params);
      case 'ping':
      case 'logging/setLevel':
        return this.reply({ jsonrpc: '2.0', id, result: {} });
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        if (typeof params.uri === 'string') {
          if (method === 'resources/subscribe') this.uris.add(params.uri);
          else this.uris.delete(params.uri);
          this.listen();
        }
        return this.reply({ jsonrpc: '2.0', id, result: {} });
    }
    const call: Call = {
      clientId: id,
      method,
      params,
      abort: new AbortController(),
      asked: new Map(),
    };
    const key = String(++this.nextId);
    this.calls.set(key, call);
    await this.round(key, call);
  }

  private async initialize(id: RpcId, params: Json): Promise<void> {
    this.capabilities = (params.capabilities as Json | undefined) ?? {};
    if (params.clientInfo && typeof params.clientInfo === 'object')
      this.clientInfo = params.clientInfo as Json;
    try {
      const answer = await this.post('server/discover', {}, undefined, (message) => message);
      const result = answer?.result as Json | undefined;
      if (!result) {
        this.reply({
          jsonrpc: '2.0',
          id,
          error: answer?.error ?? { code: -32603, message: 'discover failed' },
        });
        return;
      }
      this.serverCapabilities = (result.capabilities as Json | undefined) ?? {};
      const requested = typeof params.protocolVersion === 'string' ? params.protocolVersion : '';
      const meta = result._meta as Json | undefined;
      this.reply({
        jsonrpc: '2.0',
        id,
        result: {
          protocolVersion: CLIENT_VERSIONS.includes(requested) ? requested : CLIENT_VERSIONS[0],
          capabilities: this.serverCapabilities,
          serverInfo: meta?.[ENVELOPE.serverInfo] ?? { name: 'backend', version: '0' },
          ...(typeof result.instructions === 'string' && { instructions: result.instructions }),
        },
      });
    } catch (error) {
      this.reply(backendError(id, error));
    }
  }

  private notification(method: string, params: Json): void {
    if (method === 'notifications/initialized') {
      this.listen();
      return;
    }
    if (method === 'notifications/cancelled') {
      for (const [key, call] of this.calls) {
        if (String(call.clientId) !== String(params.requestId)) continue;
        call.abort.abort();
        this.calls.delete(key);
      }
    }
    // Nothing else a 2025 client tells has a 2026-07-28 counterpart (roots/list_changed is gone).
  }

  /** One round of a call: the request (with the answers of the last round's inputs, if any). */
  private async round(key: string, call: Call): Promise<void> {
    const params: Json = { ...call.params };
    if (call.requestState !== undefined) {
      params.requestState = call.requestState;
      params.inputResponses = Object.fromEntries(
        [...call.asked].map(([name, asked]) => [name, asked.answer]),
      );
    }
    try {
      const answer = await this.post(call.method, params, call.abort.signal, (message) => {
        markRelated(message, call.clientId); // on the call's own answer stream
        this.reply(message);
      });
      if (!this.calls.has(key)) return; // cancelled meanwhile
      if (!answer) throw new Error('the backend answered nothing');
      const result = answer.result as Json | undefined;
      if (result?.resultType === 'input_required') {
        this.askClient(call, result);
        return;
      }
      this.calls.delete(key);
      this.reply({ ...answer, id: call.clientId });
    } catch (error) {
      if (!this.calls.has(key)) return;
      this.calls.delete(key);
      this.reply(backendError(call.clientId, error));
    }
  }

  /** The backend needs input: each request goes to the client as a request of the session. */
  private askClient(call: Call, result: Json): void {
    call.requestState = result.requestState;
    call.asked.clear();
    const requests = (result.inputRequests ?? {}) as Record<
      string,
      { method?: unknown; params?: unknown }
    >;
    for (const [name, request] of Object.entries(requests)) {
      const id = `input-${++this.nextId}`;
      call.asked.set(name, { id });
      this.asks.set(id, call);
      const message = { jsonrpc: '2.0', id, method: request.method, params: request.params ?? {} };
      markRelated(message, call.clientId);
      this.reply(message);
    }
  }

  /** The client's answer to one of those requests; the last one sends the request again. */
  private answered(value: Json): void {
    const id = String(value.id);
    const call = this.asks.get(id);
    if (!call) return;
    this.asks.delete(id);
    for (const asked of call.asked.values()) {
      if (asked.id === id) asked.answer = value.result ?? { action: 'cancel' };
    }
    if ([...call.asked.values()].some((asked) => asked.answer === undefined)) return;
    const key = [...this.calls].find(([, c]) => c === call)?.[0];
    if (key !== undefined) void this.round(key, call);
  }

  /** The session's notifications: one `subscriptions/listen` stream, opened again when it ends. */
  private listen(): void {
    if (this.closed) return;
    const filter: Json = {};
    for (const [flag, capability] of [
      ['toolsListChanged', 'tools'],
      ['promptsListChanged', 'prompts'],
      ['resourcesListChanged', 'resources'],
    ] as const) {
      if ((this.serverCapabilities[capability] as Json | undefined)?.listChanged === true)
        filter[flag] = true;
    }
    if (this.uris.size > 0) filter.resourceSubscriptions = [...this.uris];
    this.listening?.abort();
    if (Object.keys(filter).length === 0) return;
    const abort = new AbortController();
    this.listening = abort;
    this.post('subscriptions/listen', { notifications: filter }, abort.signal, (message) => {
      if (isResponse(message) || message.method === 'notifications/subscriptions/acknowledged')
        return;
      const params = { ...((message.params as Json | undefined) ?? {}) };
      const meta = { ...((params._meta as Json | undefined) ?? {}) };
      delete meta[ENVELOPE.subscriptionId];
      if (Object.keys(meta).length > 0) params._meta = meta;
      else delete params._meta;
      // The listen stream is the session's: whatever it carries belongs to no request.
      const told = { ...message, params };
      markRelated(told, null);
      this.reply(told);
    })
      .catch(() => undefined)
      .finally(() => {
        if (this.listening !== abort || this.closed || abort.signal.aborted) return;
        setTimeout(() => this.listen(), RELISTEN_MS).unref();
      });
  }

  /**
   * One stateless POST: the envelope in `params._meta`, the mirrored headers; each message of
   * the answer that is not its response goes to `onOther`. Resolves with the response.
   */
  private async post(
    method: string,
    params: Json,
    signal: AbortSignal | undefined,
    onOther: (message: Json) => unknown,
  ): Promise<Json | undefined> {
    const id = `gw-${++this.nextId}`;
    const meta = { ...((params._meta as Json | undefined) ?? {}) };
    meta[ENVELOPE.version] = MODERN_VERSION;
    meta[ENVELOPE.capabilities] = this.capabilities;
    meta[ENVELOPE.clientInfo] = this.clientInfo;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.upstream.headers))
      headers[name.toLowerCase()] = value;
    headers['content-type'] = 'application/json';
    headers.accept = 'application/json, text/event-stream';
    headers['mcp-protocol-version'] = MODERN_VERSION;
    headers['mcp-method'] = method;
    const name = nameOf(method, params);
    if (name !== undefined) headers['mcp-name'] = headerValue(name);
    const response = await agent.request({
      origin: this.origin,
      path: this.path,
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } }),
      signal,
      bodyTimeout: 0,
    });
    const type = String(response.headers['content-type'] ?? '');
    let answer: Json | undefined;
    const take = (message: Json) => {
      if (isResponse(message) && message.id === id) answer = message;
      else onOther(message);
    };
    if (type.startsWith('text/event-stream')) {
      await eachEventData(response.body, (data) => {
        let message: Json;
        try {
          message = JSON.parse(data) as Json;
        } catch {
          return; // not a JSON-RPC message: nothing to hand on
        }
        take(message);
      });
    } else if (type.startsWith('application/json')) {
      const text = await readBounded(response.body);
      try {
        take(JSON.parse(text) as Json);
      } catch {
        throw new Error(`backend answered HTTP ${response.statusCode} with malformed JSON`);
      }
    } else {
      await response.body.dump();
      throw new Error(`backend answered HTTP ${response.statusCode}`);
    }
    return answer;
  }

  private reply(message: Json): void {
    if (!this.closed) this.onmessage?.(message as JSONRPCMessage);
  }
}

function nameOf(method: string, params: Json): string | undefined {
  const value =
    method === 'tools/call' || method === 'prompts/get'
      ? params.name
      : method === 'resources/read'
        ? params.uri
        : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** A header value as 2026-07-28 sends it: as is, or `=?base64?…?=` when a header cannot carry it. */
function headerValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) && value.trim() === value
    ? value
    : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function backendError(id: RpcId, _error: unknown): Json {
  return {
    jsonrpc: '2.0',
    id,
    // The reason (an address, a status) is the log's, never the client's.
    error: { code: -32052, message: 'Backend unavailable', data: { code: 'upstream_error' } },
  };
}
