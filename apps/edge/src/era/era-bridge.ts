import { createHash, randomUUID } from 'node:crypto';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import {
  type ConfigStore,
  ERROR_MAP,
  ErrorCode,
  GatewayError,
  isStdioUpstream,
  type Principal,
} from '#common';
import type { Logger } from 'pino';
import { acceptsJson, ClientStream } from '../bridge/client-stream.js';
import { relatedRequest } from '../bridge/related-request.js';
import { outcomeOf, rpcErrorFor } from '../errors/error-writer.js';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import { idKey, isResponse, type RpcId, type RpcMessage } from '../jsonrpc/messages.js';
import type { Gate } from '../pins/tool-catalog.js';
import type { Admitted } from '../pipeline/admission.js';
import { MessageTap } from '../tap/message-tap.js';
import type { ForwardedUpstream } from '../upstream/forwarded.js';
import type { HttpPassthrough } from '../upstream/http-passthrough.js';
import type { Upstream } from '../upstream/upstream.js';
import { VirtualBackend } from '../virtual/virtual-backend.js';
import type { VirtualServers } from '../virtual/virtual-servers.js';
import type { EraProbe } from './era-probe.js';
import { ENVELOPE, metaOf, MODERN_VERSION, namedRevision } from './modern.js';
import { NamespaceBackend } from './namespace-backend.js';
import type { RequestStates } from './request-state.js';
import { principalRef } from '../auth/credential.js';

type Json = Record<string, unknown>;

export interface EraBridgeDeps {
  config: ConfigStore;
  virtual: VirtualServers;
  http: HttpPassthrough;
  probe: EraProbe;
  states: RequestStates;
  edgeId: string;
  /** How other edges reach this one (for a retry that lands elsewhere). */
  advertiseUrl: () => string;
  forwarded: ForwardedUpstream;
  logger: Logger;
}

/** A backend connection unused this long (no call waiting, no listener) is ended. */
const IDLE_MS = 60_000;
/** How long a request waiting for the client's input (its `requestState`) is kept. */
const INPUT_WAIT_MS = 5 * 60_000;
/** The revision the gateway speaks to a 2025-era backend for a modern client. */
const BACKEND_VERSION = '2025-11-25';
/** Results a modern client may cache: the gateway's are per caller (`private`). */
const CACHEABLE = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);
/** 2025 methods the 2026-07-28 revision does not have (subscriptions: `subscriptions/listen`). */
const REMOVED = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
]);
/**
 * Requests that may lead the backend to ask the client for input: each gets a session with no
 * other request waiting, so that a request for input can only be its own.
 */
const EXCLUSIVE = new Set(['tools/call', 'prompts/get', 'resources/read', 'completion/complete']);
/**
 * A backend's requests for input that come together (within this long) are shown to the client
 * in one `input_required`, not one round trip each.
 */
const INPUT_GATHER_MS = 15;
/** The client capability a backend's request for input needs. */
const NEEDS: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** A client request waiting for its answer on a connection. */
interface Call {
  ours: string;
  clientId: RpcId;
  method: string;
  /** What a retry must repeat: the tool or prompt name, or the URI. */
  target: unknown;
  exchange: ExchangeRecorder;
  gate: Gate;
  /** Where its answer goes; undefined while it waits for the client's input. */
  stream?: ClientStream;
  /** The backend's requests for input not yet answered, by the key shown to the client. */
  asked: Map<string, { id: RpcId; method: string; params: unknown; shown: boolean }>;
  progress?: { ours: string; theirs: unknown };
  timer: NodeJS.Timeout;
  /** Set while the backend's requests for input are being gathered (INPUT_GATHER_MS). */
  gathering?: NodeJS.Timeout;
}

/** One 2026-07-28 listener (`subscriptions/listen`) on a connection. */
interface Listener {
  id: RpcId;
  stream: ClientStream;
  exchange: ExchangeRecorder;
  gate: Gate;
  lists: Set<string>;
  uris: Set<string>;
}

/** What a connection holds: a virtual server's members, or a namespace's own backend. */
type Backend = VirtualBackend | NamespaceBackend;

/**
 * A backend connection held for modern clients: one 2025-era session (a namespace's stdio
 * child, legacy SSE or Streamable HTTP session, or a virtual server's members), initialized
 * with the client's capabilities, serving the stateless requests of one principal.
 */
class Connection {
  readonly id = randomUUID();
  readonly calls = new Map<string, Call>();
  readonly listeners = new Set<Listener>();
  lastUsed = Date.now();
  init?: Json;
  ready: Promise<Json>;
  /** The client capabilities of the envelope that opened it (given to the backend). */
  readonly capabilities: Json;
  closed = false;
  private nextId = 0;
  private readonly internal = new Map<
    string,
    { resolve: (answer: Json) => void; reject: (error: Error) => void }
  >();

  constructor(
    readonly key: string,
    readonly backend: Backend,
    /** The principal of its latest request: whose members and scope apply (lease updates it). */
    readonly scope: { principal: Principal },
    initParams: Json,
    private readonly onMessage: (connection: Connection, message: Json) => void,
    private readonly onFailure: (
      connection: Connection,
      id: RpcId,
      code: ErrorCode,
      message: string,
    ) => void,
  ) {
    this.capabilities = (initParams.capabilities as Json | undefined) ?? {};
    backend.onmessage = (message) => this.fromBackend(message);
    backend.onfailure = (id, code, message) => {
      const internal = this.internal.get(String(id));
      if (!internal) return this.onFailure(this, id, code, message);
      this.internal.delete(String(id));
      internal.reject(new GatewayError(code, message));
    };
    // A backend that went away takes the connection with it (its pool opens another).
    backend.onclose = () => void this.close();
    this.ready = this.ask('initialize', initParams).then((answer) => {
      if (!answer.result || typeof answer.result !== 'object')
        throw new Error(`backend refused initialize: ${JSON.stringify(answer.error)}`);
      this.init = answer.result as Json;
      void backend.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return this.init;
    });
    this.ready.catch(() => undefined);
  }

  /** A request of the gateway's own (initialize, subscriptions) to the backend. */
  ask(method: string, params: Json): Promise<Json> {
    const id = `gw-${++this.nextId}`;
    return new Promise<Json>((resolve, reject) => {
      this.internal.set(id, { resolve, reject });
      void this.backend.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  send(message: Json): void {
    void this.backend.send(message as JSONRPCMessage);
  }

  private fromBackend(message: Json): void {
    if (isResponse(message) && typeof message.id === 'string') {
      const internal = this.internal.get(message.id);
      if (internal) {
        this.internal.delete(message.id);
        internal.resolve(message);
        return;
      }
    }
    this.onMessage(this, message);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const listener of this.listeners) listener.stream.end();
    await this.backend.close();
  }
}

/**
 * A 2026-07-28 client on a 2025-era backend (SPEC §4 behaviour 10): stdio, legacy SSE, a
 * Streamable HTTP backend that does not offer 2026-07-28 (EraProbe), and virtual servers. The
 * gateway speaks the modern revision to the client and holds 2025 sessions with the backend for
 * it, keyed by principal, target and client capabilities, reused, capped per key
 * (`server.max_sessions_per_key`) and ended when idle:
 *
 * - `server/discover` is answered from the backend's initialize result;
 * - each request is served on one of those sessions with an id (and progress token) of the
 *   gateway's, so requests of the same key never collide; a `tools/call` gets a session with no
 *   other call waiting, so a backend's request for input can only be that call's;
 * - the backend's requests for input (sampling, elicitation, roots) become `input_required`
 *   results whose `requestState` the gateway seals and binds to the principal; the client's
 *   retry with `inputResponses` answers them, and the call's answer goes to the retry;
 * - `subscriptions/listen` is fed from the session's `list_changed` notifications and
 *   `resources/subscribe`; results get `resultType`, and lists `cacheScope: "private"`;
 * - a client that closes its answer stream cancels the request (`notifications/cancelled`).
 *
 * A modern backend gets the client's requests as they are (HTTP pass-through). Every message
 * crosses the one tap with the request's own exchange.
 */
export class EraBridge implements Upstream {
  private readonly pools = new Map<string, Connection[]>();
  private readonly reaper: NodeJS.Timeout;
  private nextCall = 0;

  constructor(private readonly deps: EraBridgeDeps) {
    this.reaper = setInterval(() => this.reapIdle(), 5_000);
    this.reaper.unref();
  }

  /** Whether the namespace's Streamable HTTP backend speaks 2026-07-28 (asked once, remembered). */
  speaksModern(admitted: Admitted): Promise<boolean> {
    return this.deps.probe.modern(admitted.namespace.upstream, admitted.request.requestId);
  }

  async deliver(admitted: Admitted): Promise<void> {
    const upstream = admitted.namespace.upstream;
    if (!admitted.server && !isStdioUpstream(upstream) && upstream.transport !== 'sse') {
      const era = await this.deps.probe.era(upstream, admitted.request.requestId);
      // Same era on both sides: relayed as is.
      if (era === 'modern') return this.deps.http.deliver(admitted);
      if (era === 'unreachable')
        throw new GatewayError(ErrorCode.UpstreamError, 'Bad Gateway: the backend did not answer');
    }
    const named = namedRevision(admitted.parsed);
    if (typeof named === 'string' && named !== MODERN_VERSION) {
      // The revisions this endpoint speaks statelessly are the bridge's: 2026-07-28 only.
      throw new GatewayError(
        ErrorCode.UnsupportedProtocolVersion,
        `Unsupported protocol version: ${named.slice(0, 40)}`,
        {},
        { supported: [MODERN_VERSION], requested: named },
      );
    }
    const { request } = admitted;
    if (request.raw.method !== 'POST') {
      throw new GatewayError(
        ErrorCode.MethodNotAllowed,
        'Method not allowed: 2026-07-28 is POST only',
        {
          Allow: 'POST',
        },
      );
    }
    const message = admitted.parsed!.messages[0];
    const bytes = request.body?.length ?? 0;
    admitted.exchange.identity.upstream_protocol_version = BACKEND_VERSION;
    // On a virtual server a call's events name its member, the backend's tool and backend kind.
    if (admitted.server) {
      const { virtual } = this.deps;
      const names = virtual.names(request.namespace, admitted.server, admitted.principal);
      admitted.exchange.identity.route = virtual.route(names);
    }
    if (message.kind !== 'request') {
      this.notification(admitted, message, bytes);
      return;
    }
    const method = message.method!;
    if (REMOVED.has(method))
      throw new GatewayError(
        ErrorCode.MethodNotFound,
        `Method not found: ${method} (not in 2026-07-28)`,
      );
    const verdict = MessageTap.inbound(message, bytes, admitted.gate, admitted.exchange);
    if (!verdict.deliver) {
      this.json(admitted, verdict.answer!);
      return;
    }
    admitted.exchange.upstreamStarted = performance.now();
    const params = (message.value.params as Json | undefined) ?? {};
    if (params.requestState !== undefined) {
      const owner = this.ownerOf(admitted, params.requestState);
      if (owner) return this.deps.forwarded.deliver({ ...admitted, claims: owner });
      return this.retry(admitted, message, params);
    }
    if (method === 'server/discover') return this.discover(admitted, message);
    if (method === 'subscriptions/listen') return this.listen(admitted, message, params);
    return this.call(admitted, message, params);
  }

  // ---- requests ----

  private async discover(admitted: Admitted, message: RpcMessage): Promise<void> {
    const connection = this.lease(admitted, false);
    let init = await this.initialized(connection, admitted);
    // A virtual server's members as the caller may use them now; a namespace's backend as it
    // answered initialize.
    if (connection.backend instanceof VirtualBackend) init = connection.backend.merged();
    const result: Json = {
      supportedVersions: [MODERN_VERSION],
      capabilities: modernCapabilities(init.capabilities),
      ...(typeof init.instructions === 'string' && { instructions: init.instructions }),
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [ENVELOPE.serverInfo]: init.serverInfo },
    };
    const answer = { jsonrpc: '2.0', id: message.id, result };
    MessageTap.outbound(answer, 0, 200, admitted.gate, admitted.exchange);
    this.json(admitted, answer);
  }

  private async call(admitted: Admitted, message: RpcMessage, params: Json): Promise<void> {
    const method = message.method!;
    const connection = this.lease(admitted, EXCLUSIVE.has(method));
    await this.initialized(connection, admitted);
    const ours = `c${++this.nextCall}`;
    const stream = this.answerStream(admitted);
    const call: Call = {
      ours,
      clientId: message.id!,
      method,
      target: params.name ?? params.uri,
      exchange: admitted.exchange,
      gate: admitted.gate,
      stream,
      asked: new Map(),
      timer: this.timer(connection, ours, admitted.namespace.timeout_ms),
    };
    const forwarded = withoutEnvelope(params);
    const meta = forwarded._meta as Json | undefined;
    if (meta?.progressToken !== undefined) {
      call.progress = { ours: `p-${ours}`, theirs: meta.progressToken };
      forwarded._meta = { ...meta, progressToken: call.progress.ours };
    }
    connection.calls.set(ours, call);
    this.watchClient(connection, call, stream);
    connection.send({ jsonrpc: '2.0', id: ours, method, params: forwarded });
  }

  /**
   * A retry whose connection another edge holds: it is sent there (once: a request forwarded to
   * this edge is never forwarded again), as a bridged session's requests are.
   */
  private ownerOf(admitted: Admitted, requestState: unknown): Admitted['claims'] | undefined {
    const state = this.deps.states.open(requestState);
    if (!state || state.e === this.deps.edgeId || !state.u || admitted.forwarded) return undefined;
    if (state.k !== principalRef(admitted.principal)) return undefined;
    return {
      k: state.k,
      n: admitted.request.namespace,
      t: 'b',
      b: state.c,
      e: state.e,
      u: state.u,
    };
  }

  /** A retry with the client's answers to the backend's requests for input. */
  private retry(admitted: Admitted, message: RpcMessage, params: Json): void {
    const state = this.deps.states.open(params.requestState);
    const found =
      state && state.k === principalRef(admitted.principal) && state.e === this.deps.edgeId
        ? this.find(state.c, state.o)
        : undefined;
    const call = found?.call;
    if (
      !found ||
      // Answered on the route it was asked on only: another has other filters and members.
      this.routeOf(found.connection) !== admitted.request.namespace ||
      !call ||
      call.stream ||
      call.method !== message.method ||
      call.target !== (params.name ?? params.uri)
    ) {
      throw new GatewayError(
        ErrorCode.InvalidParams,
        "Invalid params: requestState is unknown, expired or not this request's; send the request again without it",
      );
    }
    const responses = (params.inputResponses ?? {}) as Json;
    for (const [key, asked] of call.asked) {
      if (!asked.shown || !Object.hasOwn(responses, key)) continue;
      found.connection.send({ jsonrpc: '2.0', id: asked.id, result: responses[key] });
      call.asked.delete(key);
    }
    found.connection.scope.principal = admitted.principal;
    call.clientId = message.id!;
    call.exchange = admitted.exchange;
    call.gate = admitted.gate;
    call.stream = this.answerStream(admitted);
    this.watchClient(found.connection, call, call.stream);
    // Requests the client has not answered yet (or that came meanwhile) are asked again.
    if (call.asked.size > 0) this.askInput(found.connection, call);
  }

  private async listen(admitted: Admitted, message: RpcMessage, params: Json): Promise<void> {
    const filter = params.notifications;
    if (!filter || typeof filter !== 'object') {
      throw new GatewayError(
        ErrorCode.InvalidParams,
        "Invalid params: 'notifications' is required",
      );
    }
    const connection = this.lease(admitted, false);
    const init = await this.initialized(connection, admitted);
    const capabilities = (init.capabilities ?? {}) as Record<string, Json | undefined>;
    const wanted = filter as Json;
    const lists = new Set<string>();
    const honoured: Json = {};
    for (const [flag, capability] of [
      ['toolsListChanged', 'tools'],
      ['promptsListChanged', 'prompts'],
      ['resourcesListChanged', 'resources'],
    ] as const) {
      if (wanted[flag] === true && capabilities[capability]?.listChanged === true) {
        honoured[flag] = true;
        lists.add(`notifications/${capability}/list_changed`);
      }
    }
    const uris = new Set<string>();
    if (Array.isArray(wanted.resourceSubscriptions) && capabilities.resources?.subscribe === true) {
      for (const uri of wanted.resourceSubscriptions) {
        if (typeof uri !== 'string') continue;
        const answer = await connection.ask('resources/subscribe', { uri });
        if (answer.error === undefined) uris.add(uri);
      }
      honoured.resourceSubscriptions = [...uris];
    }
    const stream = new ClientStream(admitted.request.res, {});
    const listener: Listener = {
      id: message.id!,
      stream,
      exchange: admitted.exchange,
      gate: admitted.gate,
      lists,
      uris,
    };
    connection.listeners.add(listener);
    stream.onclose = () => {
      connection.listeners.delete(listener);
      connection.lastUsed = Date.now();
      admitted.exchange.finish('ok', 200);
    };
    this.notifyListener(listener, {
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: honoured },
    });
  }

  private notification(admitted: Admitted, message: RpcMessage, bytes: number): void {
    const verdict = MessageTap.inbound(message, bytes, admitted.gate, admitted.exchange);
    if (verdict.deliver && message.method === 'notifications/cancelled') {
      const requestId = (message.value.params as Json | undefined)?.requestId as RpcId | undefined;
      for (const connection of this.pools.get(this.poolKey(admitted)) ?? []) {
        for (const listener of connection.listeners) {
          if (requestId !== undefined && idKey(listener.id) === idKey(requestId))
            listener.stream.end();
        }
        for (const call of connection.calls.values()) {
          if (requestId !== undefined && idKey(call.clientId) === idKey(requestId))
            this.cancel(connection, call, 'cancelled by the client');
        }
      }
    }
    admitted.request.res.writeHead(202, { 'content-length': '0' }).end();
  }

  // ---- backend messages ----

  private fromBackend(connection: Connection, message: Json): void {
    connection.lastUsed = Date.now();
    if (isResponse(message)) {
      const call = connection.calls.get(String(message.id));
      if (!call) return;
      this.settle(connection, call);
      const answer: Json = { ...message, id: call.clientId };
      if (answer.result && typeof answer.result === 'object') {
        answer.result = this.modernResult(connection, call.method, answer.result as Json);
      }
      // As a 2026-07-28 server answers it: an unknown method is 404 (when sent as JSON).
      const code = (answer.error as { code?: unknown } | undefined)?.code;
      const status = code === -32601 && call.stream?.json ? 404 : 200;
      MessageTap.outbound(answer, 0, status, call.gate, call.exchange);
      call.stream?.sendLast(answer, status);
      return;
    }
    const method = typeof message.method === 'string' ? message.method : '';
    if ('id' in message && message.id !== undefined && message.id !== null) {
      this.inputRequest(connection, message, method);
      return;
    }
    if (method === 'notifications/progress') {
      const token = (message.params as Json | undefined)?.progressToken;
      for (const call of connection.calls.values()) {
        const progress = call.progress;
        if (progress === undefined || progress.ours !== token) continue;
        const value = {
          ...message,
          params: { ...(message.params as Json), progressToken: progress.theirs },
        };
        MessageTap.outbound(value, 0, 200, call.gate, call.exchange);
        call.stream?.send(value);
        clearTimeout(call.timer);
        call.timer = this.timer(connection, call.ours, this.timeoutOf(call));
      }
      return;
    }
    // Every listener of the pool (same key, route and capabilities) hears it: the client's next
    // request may be served by any of its sessions, so a change in one is a change for it.
    const pool = this.pools.get(connection.key) ?? [connection];
    const listeners = pool.flatMap((c) => [...c.listeners]);
    for (const listener of listeners) {
      const uri = (message.params as Json | undefined)?.uri;
      if (
        listener.lists.has(method) ||
        (method === 'notifications/resources/updated' &&
          typeof uri === 'string' &&
          listener.uris.has(uri))
      ) {
        this.notifyListener(listener, message);
      }
    }
  }

  /**
   * A backend's request for input: becomes an `input_required` result of the call it belongs
   * to. Where the backend says which (a virtual server's member routed the call, a Streamable HTTP
   * backend sent it on the call's stream), that call or none; where it cannot tell (one stdio or
   * legacy SSE session), the one call waiting.
   */
  private inputRequest(connection: Connection, message: Json, method: string): void {
    const related = relatedRequest(message);
    const named = related === undefined || related === null ? undefined : String(related);
    const calls =
      related === undefined
        ? [...connection.calls.values()]
        : [...connection.calls.values()].filter((call) => call.ours === named);
    if (calls.length !== 1) {
      // Nobody, or several calls, could have asked: a guess could show one caller's question to another.
      connection.send({
        jsonrpc: '2.0',
        id: message.id,
        error: {
          code: -32603,
          message: 'The client cannot be asked: no single request is waiting',
        },
      });
      return;
    }
    const call = calls[0];
    const needed = NEEDS[method];
    if (needed !== undefined && !this.capability(connection, needed)) {
      // The client never said it can answer this: the backend hears so, and the request fails
      // as a 2026-07-28 server fails it (-32021), rather than asking a client that cannot answer.
      connection.send({
        jsonrpc: '2.0',
        id: message.id,
        error: { code: -32601, message: `The client does not support ${method}` },
      });
      if (call.stream) {
        this.failure(
          connection,
          call.ours,
          ErrorCode.MissingCapability,
          `Missing required client capability: ${needed}`,
          { requiredCapabilities: { [needed]: {} } },
        );
        connection.send({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: call.ours, reason: `the client lacks ${needed}` },
        });
      }
      return;
    }
    call.asked.set(`input-${call.asked.size + 1}-${randomUUID().slice(0, 8)}`, {
      id: message.id as RpcId,
      method,
      params: message.params ?? {},
      shown: false,
    });
    if (call.stream && !call.gathering) {
      call.gathering = setTimeout(() => {
        call.gathering = undefined;
        if (call.stream && connection.calls.get(call.ours) === call)
          this.askInput(connection, call);
      }, INPUT_GATHER_MS);
    }
  }

  /** Answers the call's current stream with `input_required` for what the backend asked. */
  private askInput(connection: Connection, call: Call): void {
    const inputRequests: Json = {};
    for (const [key, asked] of call.asked) {
      inputRequests[key] = { method: asked.method, params: asked.params };
      asked.shown = true;
    }
    const requestState = this.deps.states.seal({
      k: this.keyIdOf(connection),
      c: connection.id,
      o: call.ours,
      e: this.deps.edgeId,
      u: this.deps.advertiseUrl(),
      x: Date.now() + INPUT_WAIT_MS,
    });
    const answer = {
      jsonrpc: '2.0',
      id: call.clientId,
      result: { resultType: 'input_required', inputRequests, requestState },
    };
    MessageTap.outbound(answer, 0, 200, call.gate, call.exchange);
    const stream = call.stream;
    call.stream = undefined;
    clearTimeout(call.timer);
    call.timer = this.timer(connection, call.ours, INPUT_WAIT_MS);
    stream?.sendLast(answer);
  }

  /**
   * Fails a call with the gateway's error. `data`: more for the error's data; it also makes the
   * error a client's (a lone JSON answer then carries its HTTP status, as a 2026-07-28 server's).
   */
  private failure(
    connection: Connection,
    id: RpcId,
    code: ErrorCode,
    message: string,
    data?: Json,
  ): void {
    const call = connection.calls.get(String(id));
    if (!call) return;
    this.settle(connection, call);
    call.exchange.failRequest(call.clientId, outcomeOf(code), ERROR_MAP[code].status, code);
    call.stream?.sendLast(
      rpcErrorFor(code, call.clientId, message, call.exchange.identity.request_id, data),
      data && call.stream.json ? ERROR_MAP[code].status : 200,
    );
  }

  /** Whether the connection's client declared a capability (an object, as the spec has it). */
  private capability(connection: Connection, name: string): boolean {
    const value = connection.capabilities[name];
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }

  // ---- connections ----

  private poolKey(admitted: Admitted): string {
    const meta = admitted.parsed ? metaOf(admitted.parsed.messages[0].value) : undefined;
    const capabilities = JSON.stringify(meta?.[ENVELOPE.capabilities] ?? {});
    const digest = createHash('sha256').update(capabilities).digest('base64url').slice(0, 16);
    return `${targetOf(principalRef(admitted.principal), admitted.request.namespace)}${digest}`;
  }

  /**
   * A connection for the request: `exclusive` (a tools/call) one with no call waiting, else any;
   * a new one while the key holds fewer than `server.max_sessions_per_key` here.
   */
  private lease(admitted: Admitted, exclusive: boolean): Connection {
    const connection = this.pick(admitted, exclusive);
    // The key's latest principal: a role or namespace it lost applies to its open connections.
    connection.scope.principal = admitted.principal;
    return connection;
  }

  private pick(admitted: Admitted, exclusive: boolean): Connection {
    const key = this.poolKey(admitted);
    const pool = (this.pools.get(key) ?? []).filter((c) => !c.closed);
    this.pools.set(key, pool);
    // Anything else shares a session, preferably one where no request waits.
    const free = pool.find((c) => c.calls.size === 0) ?? (exclusive ? undefined : pool[0]);
    if (free) {
      free.lastUsed = Date.now();
      return free;
    }
    // The cap counts every connection of the key on the target, whatever capabilities opened
    // it: varying them must not open sessions (or children) without end.
    const cap = this.deps.config.current.server.max_sessions_per_key;
    const target = key.slice(0, key.lastIndexOf('\n') + 1);
    let held = 0;
    for (const [other, connections] of this.pools)
      if (other.startsWith(target)) held += connections.filter((c) => !c.closed).length;
    // At the cap, an idle session of the key on the target (another capability set, nothing
    // waiting, nobody listening) makes room, the least recently used first.
    if (held >= cap && this.evictIdle(target)) held--;
    if (held >= cap) {
      if (pool.length === 0) {
        throw new GatewayError(
          ErrorCode.TooManySessions,
          `Too many sessions: this key holds ${held} for ${admitted.request.namespace}; try again later`,
          { 'Retry-After': String(Math.ceil(IDLE_MS / 1000)) },
        );
      }
      // At the cap: the least busy one (a request for input is then refused if ambiguous).
      return pool.reduce((a, b) => (b.calls.size < a.calls.size ? b : a));
    }
    const connection = this.open(admitted, key);
    pool.push(connection);
    return connection;
  }

  /**
   * Ends the least recently used idle connection (nothing waiting, nobody listening) of `keyId`
   * that holds a backend session in `namespace` (on that namespace, or on a virtual server with
   * it as a member); true if one. Its backend session is given back at once, so the key's cap in
   * the namespace (BridgeSessions) has room for the session it is asked for.
   */
  reclaimIdle(namespace: string, keyId: string): boolean {
    const { servers } = this.deps.config.current;
    const holds = (route: string) =>
      route === namespace ||
      (servers[route]?.namespaces.some((member) => member === namespace || member === '*') ??
        false);
    return this.dropOldestIdle(
      (_key, connection) =>
        connection.scope.principal.keyId === keyId && holds(this.routeOf(connection)),
    );
  }

  /**
   * Whether a call is still being answered (a call waiting for the client's input has had its
   * answer sent already).
   */
  get answering(): boolean {
    for (const pool of this.pools.values())
      for (const connection of pool)
        for (const call of connection.calls.values()) if (call.stream !== undefined) return true;
    return false;
  }

  /** Shutdown: ends every `subscriptions/listen` stream (the calls in flight go on). */
  endListeners(): void {
    for (const pool of this.pools.values())
      for (const connection of pool)
        for (const listener of connection.listeners) listener.stream.end();
  }

  /** Ends the least recently used idle connection of `target` (a key and a route); true if one. */
  private evictIdle(target: string): boolean {
    return this.dropOldestIdle((key) => key.startsWith(target));
  }

  /**
   * Ends the least recently used idle connection (nothing waiting, nobody listening) of those
   * `which` picks (by pool key and connection); true if one.
   */
  private dropOldestIdle(which: (key: string, connection: Connection) => boolean): boolean {
    let oldest: { key: string; connection: Connection } | undefined;
    for (const [key, connections] of this.pools) {
      for (const connection of connections) {
        if (connection.closed || connection.calls.size > 0 || connection.listeners.size > 0)
          continue;
        if (!which(key, connection)) continue;
        if (!oldest || connection.lastUsed < oldest.connection.lastUsed)
          oldest = { key, connection };
      }
    }
    if (!oldest) return false;
    this.drop(oldest.key, oldest.connection);
    return true;
  }

  /** Ends a pooled connection and takes it out of its pool. */
  private drop(key: string, connection: Connection): void {
    void connection.close();
    const rest = (this.pools.get(key) ?? []).filter((c) => c !== connection);
    if (rest.length === 0) this.pools.delete(key);
    else this.pools.set(key, rest);
  }

  private open(admitted: Admitted, key: string): Connection {
    const { principal, request, server } = admitted;
    const scope = { principal };
    const logger = this.deps.logger.child({ namespace: request.namespace, era: 'bridged' });
    const { virtual } = this.deps;
    let backend: Backend;
    if (server) {
      // Its members are judged on every request (the config in force, the latest principal).
      const names = virtual.names(request.namespace, server, principal);
      backend = virtual.backend(names, () => virtual.gate(names, scope.principal), logger, {
        memberWaitMs: admitted.namespace.timeout_ms,
        principal: () => scope.principal,
      });
    } else {
      backend = new NamespaceBackend(
        () => virtual.connection(request.namespace, logger, principal.keyId),
        logger,
      );
    }
    const meta = metaOf(admitted.parsed!.messages[0].value) ?? {};
    const clientInfo = meta[ENVELOPE.clientInfo];
    const initParams: Json = {
      protocolVersion: BACKEND_VERSION,
      capabilities: meta[ENVELOPE.capabilities] ?? {},
      clientInfo:
        clientInfo && typeof clientInfo === 'object'
          ? clientInfo
          : { name: 'mcp-gateway', version: '1' },
    };
    return new Connection(
      key,
      backend,
      scope,
      initParams,
      (connection, message) => this.fromBackend(connection, message),
      (connection, id, code, message) => this.failure(connection, id, code, message),
    );
  }

  private async initialized(connection: Connection, admitted: Admitted): Promise<Json> {
    if (connection.init) return connection.init;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      const ms = admitted.namespace.timeout_ms;
      timer = setTimeout(
        () => reject(new GatewayError(ErrorCode.UpstreamTimeout, 'Backend timed out')),
        ms,
      );
    });
    try {
      return await Promise.race([connection.ready, timeout]);
    } catch (error) {
      void connection.close();
      this.deps.logger.warn(
        {
          request_id: admitted.request.requestId,
          namespace: admitted.request.namespace,
          err: String(error),
        },
        'backend session for a 2026-07-28 client failed to start',
      );
      // No room (503), no answer in time (504): as the gateway said; anything else is 502.
      if (error instanceof GatewayError) throw error;
      throw new GatewayError(ErrorCode.UpstreamError, 'Backend failed to start');
    } finally {
      clearTimeout(timer);
    }
  }

  private find(
    connectionId: string,
    ours: string,
  ): { connection: Connection; call?: Call } | undefined {
    for (const pool of this.pools.values()) {
      const connection = pool.find((c) => c.id === connectionId && !c.closed);
      if (connection) return { connection, call: connection.calls.get(ours) };
    }
    return undefined;
  }

  private keyIdOf(connection: Connection): string {
    return targetParts(connection.key)[0];
  }

  /** The namespace or virtual server a connection serves. */
  private routeOf(connection: Connection): string {
    return targetParts(connection.key)[1];
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const [key, pool] of this.pools) {
      for (const connection of pool) {
        if (
          connection.calls.size === 0 &&
          connection.listeners.size === 0 &&
          now - connection.lastUsed > IDLE_MS
        )
          void connection.close();
      }
      const open = pool.filter((c) => !c.closed);
      if (open.length === 0) this.pools.delete(key);
      else this.pools.set(key, open);
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all([...this.pools.values()].flat().map((c) => c.close()));
    this.pools.clear();
  }

  // ---- helpers ----

  private answerStream(admitted: Admitted): ClientStream {
    return new ClientStream(
      admitted.request.res,
      {},
      '',
      true,
      acceptsJson(admitted.request.raw.headers.accept),
    );
  }

  /** The client left before the answer (not while it answers input): the request is cancelled. */
  private watchClient(connection: Connection, call: Call, stream: ClientStream): void {
    stream.onclose = () => {
      if (call.stream !== stream || !connection.calls.has(call.ours)) return;
      this.cancel(connection, call, 'the client closed the answer stream');
      call.exchange.finish('client_closed', null);
    };
  }

  private cancel(connection: Connection, call: Call, reason: string): void {
    this.settle(connection, call);
    call.stream?.end();
    connection.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: call.ours, reason },
    });
  }

  private settle(connection: Connection, call: Call): void {
    clearTimeout(call.timer);
    clearTimeout(call.gathering);
    connection.calls.delete(call.ours);
    connection.lastUsed = Date.now();
  }

  private timer(connection: Connection, ours: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const call = connection.calls.get(ours);
      if (!call) return;
      this.failure(connection, ours, ErrorCode.UpstreamTimeout, 'Backend timed out');
      connection.send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: ours, reason: 'gateway timeout' },
      });
    }, ms);
    timer.unref();
    return timer;
  }

  private timeoutOf(call: Call): number {
    const namespace = call.exchange.identity.namespace;
    return this.deps.config.current.namespaces[namespace]?.timeout_ms ?? 300_000;
  }

  private notifyListener(listener: Listener, message: Json): void {
    const params = (message.params as Json | undefined) ?? {};
    const value = {
      ...message,
      params: {
        ...params,
        _meta: {
          ...((params._meta as Json | undefined) ?? {}),
          [ENVELOPE.subscriptionId]: listener.id,
        },
      },
    };
    MessageTap.outbound(value, 0, 200, listener.gate, listener.exchange);
    listener.stream.send(value);
  }

  /** A 2025 result as a 2026-07-28 client reads it: `resultType`, server info, cache hints. */
  private modernResult(connection: Connection, method: string, result: Json): Json {
    const modern: Json = { ...result, resultType: result.resultType ?? 'complete' };
    if (CACHEABLE.has(method)) {
      modern.ttlMs = typeof result.ttlMs === 'number' ? result.ttlMs : 0;
      modern.cacheScope = 'private'; // filtered or merged per caller
    }
    const meta = (result._meta as Json | undefined) ?? {};
    modern._meta = { ...meta, [ENVELOPE.serverInfo]: connection.init?.serverInfo };
    return modern;
  }

  private json(admitted: Admitted, answer: Json): void {
    const body = JSON.stringify(answer);
    admitted.request.res
      .writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      })
      .end(body);
  }
}

/** The params of a modern request as a 2025 backend takes them: without the envelope. */
function withoutEnvelope(params: Json): Json {
  const meta = params._meta as Json | undefined;
  if (!meta) return { ...params };
  const kept: Json = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key !== ENVELOPE.version && key !== ENVELOPE.capabilities && key !== ENVELOPE.clientInfo)
      kept[key] = value;
  }
  const out: Json = { ...params };
  if (Object.keys(kept).length > 0) out._meta = kept;
  else delete out._meta;
  return out;
}

/** 2025 capabilities as 2026-07-28 offers them (no logging, completions kept). */
function modernCapabilities(capabilities: unknown): Json {
  const out: Json = { ...((capabilities as Json | undefined) ?? {}) };
  delete out.logging;
  return out;
}

/**
 * How a pool key begins: the key id and the route as JSON (which escapes any newline in them),
 * then a newline, so no key id or route can read as another's, and `startsWith` finds exactly
 * one key's connections on one route.
 */
function targetOf(keyId: string, route: string): string {
  return `${JSON.stringify([keyId, route])}\n`;
}

function targetParts(poolKey: string): [string, string] {
  return JSON.parse(poolKey.slice(0, poolKey.lastIndexOf('\n'))) as [string, string];
}
