import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ConfigStore,
  ErrorCode,
  type EventTransport,
  GatewayError,
  isStdioUpstream,
  type NamespaceConfig,
  type Principal,
  type ServerConfig,
} from '#common';
import { challenged } from '../auth/challenge.js';
import { principalRef } from '../auth/credential.js';
import { type KeyVerifier, mayUseNamespace } from '../auth/key-verifier.js';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import { enforceRequestPolicy } from '../filtering/request-policy.js';
import { toolFilterFor } from '../filtering/tool-filter.js';
import type { Gate, ToolCatalog } from '../pins/tool-catalog.js';
import type { VirtualServers } from '../virtual/virtual-servers.js';
import { type ParsedBody, parseJsonRpcBody } from '../jsonrpc/messages.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import type { ClosedSessions } from '../sessions/closed-sessions.js';
import type { SessionClaims, SessionCodec } from '../sessions/session-codec.js';
import { FORWARDED_HEADER } from '../upstream/forwarded.js';
import type { ForwardingMarks } from '../sessions/forwarding-mark.js';
import { originAllowed } from './origin.js';

const EMPTY = Buffer.alloc(0);

/** streamable: `/mcp/{ns}`; sse: legacy `GET /mcp/{ns}/sse`; messages: legacy `POST /mcp/{ns}/messages`. */
export type McpRoute = 'streamable' | 'sse' | 'messages';

/** An MCP request as the router hands it over: request id set, body read within its limit. */
export interface McpRequest {
  route: McpRoute;
  raw: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  namespace: string;
  /** The raw body (POST), already bounded by max_body_bytes. */
  body?: Buffer;
}

/** A request that passed admission: who asks, for what, on which session. */
export interface Admitted {
  request: McpRequest;
  principal: Principal;
  namespace: NamespaceConfig;
  /**
   * The namespace's tool filter intersected with the principal's scope, and the namespace's
   * pins, as the tap applies them.
   */
  gate: Gate;
  /** A virtual server's request (`namespace` is then a stand-in: its members have their own). */
  server?: ServerConfig;
  /** A 2025-era client opening a session on a backend that speaks 2026-07-28: bridged. */
  modernBackend?: boolean;
  /** The body's JSON-RPC messages (POST). */
  parsed?: ParsedBody;
  claims?: SessionClaims;
  /** Sent by another edge for a session held here (its limits were counted there). */
  forwarded: boolean;
  exchange: ExchangeRecorder;
}

export interface AdmissionDeps {
  config: ConfigStore;
  verifier: KeyVerifier;
  limiter: RateLimiter;
  sessions: SessionCodec;
  closedSessions: ClosedSessions;
  marks: ForwardingMarks;
  catalog: ToolCatalog;
  virtual: VirtualServers;
}

/**
 * What a virtual server's request stands on where a namespace's config is read: a bridged
 * session's timeout (each member's call is bounded by its own namespace's), no filter of its own
 * (the server's gate applies the server's and each member's).
 */
const VIRTUAL_STAND_IN = (server: ServerConfig, members: Record<string, NamespaceConfig>) =>
  ({
    upstream: { url: 'http://virtual.invalid/', transport: 'streamable', headers: {} },
    timeout_ms: Math.max(
      1_000,
      ...server.namespaces.map((ns) => (Object.hasOwn(members, ns) ? members[ns].timeout_ms : 0)),
    ),
    tools: { allow: ['*'], deny: [] },
  }) satisfies NamespaceConfig;

/**
 * Admission: everything a request must pass before any backend sees it, in SPEC order, and
 * nothing else (delivery is an `Upstream`'s, see pipeline/mcp-pipeline.ts).
 *
 *   request id → origin → body → auth → namespace → parse → session → limits
 *
 * Why this order: the request id comes first (the router sets it) so every later line and error
 * carries it. Origin is checked before anything else answers, so a foreign page learns nothing,
 * not even 401. The body was read within `max_body_bytes` by the router; its media type is
 * checked here, before anything reads it. Auth precedes every answer that would reveal
 * configuration (which namespaces exist). The body is parsed once, after auth, because limits
 * count JSON-RPC requests and the tap needs tool names. The session binding is checked before
 * the limit, so a foreign session id costs its sender nothing. Failures are thrown as
 * GatewayErrors and answered by the one error writer.
 */
export class Admission {
  constructor(private readonly deps: AdmissionDeps) {}

  async admit(request: McpRequest, exchange: ExchangeRecorder): Promise<Admitted> {
    const config = this.deps.config.current;
    if (!originAllowed(headerOf(request.raw, 'origin'), config.server.allowed_origins)) {
      throw new GatewayError(ErrorCode.ForbiddenOrigin, 'Origin not allowed');
    }
    if (request.raw.method === 'POST') checkMediaType(request.raw);
    const principal = await this.deps.verifier
      .authenticate(request.raw, request.namespace)
      .catch((error: unknown) => {
        throw challenged(error, this.deps.config.current, request.namespace);
      });
    exchange.identify(principal);
    const server = this.deps.virtual.get(request.namespace);
    const namespace = server
      ? this.serverOf(request, server, principal, exchange)
      : this.namespaceOf(request, principal, exchange);
    const parsed =
      request.raw.method === 'POST' ? parseJsonRpcBody(request.body ?? EMPTY) : undefined;
    exchange.parsed = parsed;
    const { claims, token } = this.sessionOf(request, principal, namespace, server);
    exchange.joinSession(token, claims);
    if (parsed) enforceRequestPolicy(parsed, request.raw.headers, protocolOf(request, claims));
    const forwarded = this.forwardedHere(request, principal);
    // A request forwarded by another edge (for a session held here) was counted there.
    if (!forwarded) await this.consume(request, principal, parsed);
    const gate = server
      ? this.deps.virtual.gate(
          this.deps.virtual.names(request.namespace, server, principal),
          principal,
        )
      : this.deps.catalog.gate(request.namespace, toolFilterFor(namespace, principal));
    return {
      request,
      principal,
      namespace,
      gate,
      server,
      parsed,
      claims,
      forwarded,
      exchange,
    };
  }

  /** Unknown: 404; not the key's: 403 (only after auth, so nobody learns which exist). */
  private namespaceOf(
    request: McpRequest,
    principal: Principal,
    exchange: ExchangeRecorder,
  ): NamespaceConfig {
    const namespace = this.deps.config.current.namespaces[request.namespace];
    if (!namespace) {
      throw new GatewayError(ErrorCode.UnknownNamespace, `Unknown namespace: ${request.namespace}`);
    }
    if (!mayUseNamespace(principal, request.namespace)) {
      throw new GatewayError(
        ErrorCode.ForbiddenNamespace,
        `This credential may not use namespace ${request.namespace}`,
      );
    }
    exchange.identity.transport = transportOf(namespace.upstream);
    return namespace;
  }

  /** A virtual server: the caller may use it (as a namespace); its members are judged one by one. */
  private serverOf(
    request: McpRequest,
    server: ServerConfig,
    principal: Principal,
    exchange: ExchangeRecorder,
  ): NamespaceConfig {
    if (!mayUseNamespace(principal, request.namespace)) {
      throw new GatewayError(
        ErrorCode.ForbiddenNamespace,
        `This credential may not use server ${request.namespace}`,
      );
    }
    exchange.identity.server = request.namespace;
    return VIRTUAL_STAND_IN(server, this.deps.config.current.namespaces);
  }

  /**
   * The client's session id (header, or `?session=` on legacy routes) must be signed by us, for
   * this credential (not only its key id: see principalRef) and namespace and the session kind the route serves, and not ended with DELETE.
   * Anything else is 404 unknown_session.
   */
  private sessionOf(
    request: McpRequest,
    principal: Principal,
    namespace: NamespaceConfig,
    server: ServerConfig | undefined,
  ): { claims?: SessionClaims; token?: string } {
    const token = sessionTokenOf(request);
    if (token === undefined) {
      if (request.route === 'messages')
        throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session: ?session= is required');
      return {};
    }
    const claims = this.deps.sessions.decode(token);
    if (
      !claims ||
      claims.k !== principalRef(principal) ||
      claims.n !== request.namespace ||
      // The session kind the route serves: relayed as is, or bridged in an edge (and on a
      // relaying route, the bridge of a 2025 client to a 2026-07-28 backend).
      claims.t !== (isPassthrough(request.route, namespace, server) && !claims.m ? 'h' : 'b') ||
      this.deps.closedSessions.has(claims)
    ) {
      throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session');
    }
    return { claims, token };
  }

  /** Sent by another edge for a session held here, its limits counted there (a valid mark). */
  private forwardedHere(request: McpRequest, principal: Principal): boolean {
    const mark = request.raw.headers[FORWARDED_HEADER];
    if (typeof mark !== 'string') return false;
    return this.deps.marks.accept(mark, {
      method: request.raw.method ?? 'GET',
      target: request.raw.url ?? '/',
      body: request.body,
      principal: principalRef(principal),
      requestId: request.requestId,
    });
  }

  /** SPEC §6: a body counts its requests; a GET stream counts one. */
  private async consume(
    request: McpRequest,
    principal: Principal,
    parsed: ParsedBody | undefined,
  ): Promise<void> {
    let points = request.raw.method === 'GET' ? 1 : 0;
    if (parsed) for (const message of parsed.messages) if (message.kind === 'request') points++;
    const decision = await this.deps.limiter.consume(principal, request.namespace, points);
    const res = request.res;
    res.setHeader('RateLimit-Limit', String(decision.limit));
    res.setHeader('RateLimit-Remaining', String(decision.remaining));
    res.setHeader('RateLimit-Reset', String(decision.resetSeconds));
  }
}

/**
 * A Streamable HTTP client on a Streamable HTTP backend: relayed by any edge (session kind `h`).
 * Everything else (stdio, legacy SSE on either side) is bridged in one edge (kind `b`).
 */
export function isPassthrough(
  route: McpRoute,
  namespace: NamespaceConfig,
  server?: ServerConfig,
): boolean {
  if (server) return false; // a virtual server's session is held where its members are joined
  const upstream = namespace.upstream;
  return route === 'streamable' && !isStdioUpstream(upstream) && upstream.transport !== 'sse';
}

/**
 * The backend parses the bytes as JSON in UTF-8 whatever the client declares (it is always sent
 * `Content-Type: application/json`), so a body declared otherwise is refused: a backend that
 * honoured another charset or an encoding would read something the gateway never checked.
 */
function checkMediaType(req: IncomingMessage): void {
  const encoding = req.headers['content-encoding'];
  const type = req.headers['content-type'];
  if ((encoding === undefined || encoding.toLowerCase() === 'identity') && isJsonUtf8(type)) return;
  throw new GatewayError(
    ErrorCode.UnsupportedMediaType,
    'Unsupported Media Type: send Content-Type: application/json (UTF-8), without Content-Encoding',
  );
}

const JSON_TYPE =
  /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:"utf-8"|utf-8)[ \t]*)?$/i;

function isJsonUtf8(type: string | undefined): boolean {
  return type !== undefined && JSON_TYPE.test(type);
}

/** The revision the request speaks: its header, the session's, or the route's default. */
function protocolOf(request: McpRequest, claims: SessionClaims | undefined): string {
  return (
    headerOf(request.raw, 'mcp-protocol-version') ??
    claims?.pv ??
    (request.route === 'streamable' ? '2025-03-26' : '2024-11-05')
  );
}

function sessionTokenOf(request: McpRequest): string | undefined {
  if (request.route === 'messages') {
    const query = request.raw.url?.split('?')[1];
    return query ? (new URLSearchParams(query).get('session') ?? undefined) : undefined;
  }
  return headerOf(request.raw, 'mcp-session-id');
}

export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The backend kind a namespace's events name (`transport`). */
export function transportOf(upstream: NamespaceConfig['upstream']): EventTransport {
  if (isStdioUpstream(upstream)) return 'stdio';
  return upstream.transport === 'sse' ? 'sse' : 'streamable';
}
