import {
  type ConfigStore,
  ErrorCode,
  GatewayError,
  type HttpUpstreamConfig,
  isStdioUpstream,
  type Principal,
} from '#common';
import { ModernBackend } from '../era/modern-backend.js';
import { AnswerStream, type BridgeSession } from '../bridge/bridge-session.js';
import type { BridgeSessions } from '../bridge/bridge-sessions.js';
import { acceptsJson, ClientStream } from '../bridge/client-stream.js';
import { toolFilterFor } from '../filtering/tool-filter.js';
import type { ToolCatalog } from '../pins/tool-catalog.js';
import type { Admitted } from '../pipeline/admission.js';
import type { SessionCodec } from '../sessions/session-codec.js';
import type { ServerNames } from '../virtual/server-names.js';
import type { VirtualServers } from '../virtual/virtual-servers.js';
import type { Upstream } from './upstream.js';
import { principalRef } from '../auth/credential.js';

export interface BridgedDeps {
  catalog: ToolCatalog;
  virtual: VirtualServers;
  bridges: BridgeSessions;
  sessions: SessionCodec;
  config: ConfigStore;
  edgeId: string;
  /** How other edges reach this one, for sessions bound to it. */
  advertiseUrl: () => string;
}

/**
 * Sessions held in this edge: stdio children, legacy SSE backends, and legacy HTTP+SSE clients
 * on any backend. The gateway is the client side's server here (it answers the Streamable HTTP
 * or legacy SSE protocol itself) and the backend's client (an SDK client transport); each
 * request's messages cross the tap inside the session (bridge/bridge-session.ts), recorded with
 * this request's own exchange.
 */
export class BridgedUpstream implements Upstream {
  /**
   * The principal whose tool scope applies to each session: the latest one of the session's key,
   * so a changed key or role applies to open sessions as a changed namespace filter does.
   */
  private readonly scopes = new WeakMap<BridgeSession, { principal: Principal }>();
  /** A virtual server's session: the names of its members, as the session was opened. */
  private readonly names = new WeakMap<BridgeSession, ServerNames>();

  constructor(private readonly deps: BridgedDeps) {}

  holds(sessionId: string): boolean {
    return this.deps.bridges.get(sessionId) !== undefined;
  }

  async deliver(admitted: Admitted): Promise<void> {
    const { request } = admitted;
    const method = request.raw.method;
    const requests = admitted.parsed?.messages.some((m) => m.kind === 'request') ?? false;
    if (request.route === 'streamable' && (method === 'GET' || requests)) {
      acceptsEventStream(request.raw.headers.accept);
    }
    supportedVersion(request.raw.headers['mcp-protocol-version']);
    const session = await this.sessionFor(admitted);
    const scope = this.scopes.get(session);
    if (scope) scope.principal = admitted.principal;
    admitted.exchange.identity.session_id = session.token;
    // A 2025 client's session on a 2026-07-28 backend: the backend hears the modern revision.
    if (admitted.modernBackend || admitted.claims?.m)
      admitted.exchange.identity.upstream_protocol_version = '2026-07-28';
    const names = this.names.get(session);
    if (names) admitted.exchange.identity.route = this.deps.virtual.route(names);
    if (request.route === 'sse') {
      const endpoint = `/mcp/${request.namespace}/messages?session=${encodeURIComponent(session.token)}`;
      const stream = new ClientStream(request.res, {}, `event: endpoint\ndata: ${endpoint}\n\n`);
      session.attachStream(stream, admitted.exchange);
      return;
    }
    if (request.route === 'messages') {
      this.post(admitted, session, false);
      return;
    }
    switch (method) {
      case 'POST':
        this.post(admitted, session, requests);
        return;
      case 'GET':
        this.openStream(admitted, session);
        return;
      default:
        // The session ends at once (its waiting requests answered, its id gone); the backend's
        // own end — a child's exit takes a Node server ~0.4 s — is not the client's to wait for.
        void session.close('session deleted by the client');
        request.res.writeHead(200, { 'content-length': '0' }).end();
    }
  }

  /** The session of the request's claims, or a new one for an initialize (or a legacy GET). */
  private async sessionFor(admitted: Admitted): Promise<BridgeSession> {
    const { claims, request, parsed } = admitted;
    if (claims) {
      const session = this.deps.bridges.get(claims.b);
      if (session) return session;
      throw new GatewayError(
        ErrorCode.UnknownSession,
        claims.e !== this.deps.edgeId
          ? 'Unknown session: the edge that held it is gone'
          : 'Unknown session',
      );
    }
    const opens =
      request.route === 'sse' ||
      (parsed !== undefined && !parsed.batch && parsed.messages[0].method === 'initialize');
    if (!opens) {
      throw new GatewayError(
        ErrorCode.BadRequest,
        'Bad Request: Mcp-Session-Id header is required',
      );
    }
    return this.open(admitted);
  }

  private async open(admitted: Admitted): Promise<BridgeSession> {
    const { request, namespace, principal, exchange, server } = admitted;
    const name = request.namespace;
    const { deps } = this;
    const scope = { principal };
    // A virtual server's session: its members are those the caller may use as it opens; the
    // gate follows the config in force and the caller's latest scope, as a namespace's does.
    const names = server ? deps.virtual.names(name, server, principal) : undefined;
    if (names) exchange.identity.route = deps.virtual.route(names);
    const virtualGate = () => deps.virtual.gate(names!, scope.principal);
    const session = await deps.bridges.create({
      namespace: name,
      keyId: principal.keyId,
      maxPerKey: deps.config.current.server.max_sessions_per_key,
      upstream: names ? undefined : namespace.upstream,
      connect: names
        ? (logger) =>
            deps.virtual.backend(names, virtualGate, logger, { principal: () => scope.principal })
        : admitted.modernBackend && !isStdioUpstream(namespace.upstream)
          ? () => new ModernBackend(namespace.upstream as HttpUpstreamConfig)
          : undefined,
      timeoutMs: namespace.timeout_ms,
      client: request.route === 'sse' ? 'legacy' : 'streamable',
      exchange,
      // A reload applies to open sessions too.
      gate: names
        ? virtualGate
        : () =>
            deps.catalog.gate(
              name,
              toolFilterFor(deps.config.current.namespaces[name] ?? namespace, scope.principal),
            ),
      token: (sessionId) =>
        deps.sessions.encode({
          k: principalRef(principal),
          n: name,
          t: 'b',
          b: sessionId,
          e: deps.edgeId,
          u: deps.advertiseUrl(),
          cn: exchange.identity.client_name ?? undefined,
          cv: exchange.identity.client_version ?? undefined,
          pv: exchange.identity.protocol_version ?? undefined,
          m: admitted.modernBackend ? 1 : undefined,
        }),
    });
    this.scopes.set(session, scope);
    if (names) this.names.set(session, names);
    return session;
  }

  /**
   * A POST's messages to the session. `answerOnStream` (Streamable HTTP, a body with requests):
   * they are answered on an SSE stream of this POST. Otherwise 202: a body without requests
   * needs no answer, and a legacy client's answers go to its own stream.
   */
  private post(admitted: Admitted, session: BridgeSession, answerOnStream: boolean): void {
    const { request, exchange } = admitted;
    const messages = admitted.parsed!.messages;
    for (const message of messages) {
      if (message.kind === 'request' && session.isPending(message.id!)) {
        throw new GatewayError(
          ErrorCode.InvalidRequest,
          `Invalid Request: a request with id ${JSON.stringify(message.id)} is still pending in this session`,
        );
      }
    }
    const bytesEach = Math.round(request.body!.length / messages.length);
    if (!answerOnStream) {
      session.fromClient(messages, bytesEach, exchange);
      request.res
        .writeHead(202, { 'content-type': 'text/plain', 'content-length': '8' })
        .end('Accepted');
      return;
    }
    const stream = new ClientStream(
      request.res,
      { 'mcp-session-id': session.token },
      '',
      true,
      // A batch is answered as events: as one JSON body it would have to be an array.
      !admitted.parsed!.batch && acceptsJson(request.raw.headers.accept),
    );
    session.fromClient(messages, bytesEach, exchange, new AnswerStream(stream));
  }

  /** A Streamable HTTP client's GET: the stream of server messages that answer no request. */
  private openStream(admitted: Admitted, session: BridgeSession): void {
    const stream = new ClientStream(admitted.request.res, { 'mcp-session-id': session.token });
    session.attachStream(stream, admitted.exchange);
  }
}

/** Revisions a bridged session's client side speaks (the gateway is its server). */
const VERSIONS = new Set([
  '2024-10-07',
  '2024-11-05',
  '2025-03-26',
  '2025-06-18',
  '2025-11-25',
  '2026-07-28',
]);

/** An MCP-Protocol-Version the gateway does not speak is 400, as an MCP server answers it. */
function supportedVersion(version: string | string[] | undefined): void {
  if (version === undefined || (typeof version === 'string' && VERSIONS.has(version))) return;
  throw new GatewayError(
    ErrorCode.BadRequest,
    `Bad Request: unsupported protocol version (supported: ${[...VERSIONS].join(', ')})`,
  );
}

/**
 * Answers from a bridged session are SSE streams (a lone answer may come as JSON, see
 * ClientStream): a client must accept them.
 */
function acceptsEventStream(accept: string | undefined): void {
  if (accept?.includes('text/event-stream')) return;
  throw new GatewayError(
    ErrorCode.NotAcceptable,
    'Not Acceptable: the client must accept text/event-stream',
  );
}
