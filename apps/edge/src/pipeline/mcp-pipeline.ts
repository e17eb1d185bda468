import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ConfigStore,
  ErrorCode,
  type EventOutcome,
  GatewayError,
  isStdioUpstream,
  type HttpUpstreamConfig,
  type NamespaceConfig,
  type Principal,
} from '#common';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { KeyVerifier, mayUseNamespace } from '../auth/key-verifier.js';
import { errorBody, rpcError } from '../errors/error-response.js';
import { type EventPublisher } from '../events/event-publisher.js';
import { ExchangeRecorder } from '../events/exchange-recorder.js';
import { enforceRequestPolicy, splitByToolFilter } from '../filtering/request-policy.js';
import { toolFilterFor } from '../filtering/tool-filter.js';
import {
  firstRequestId,
  type ParsedBody,
  parseJsonRpcBody,
  type RpcId,
  type RpcMessage,
  salvageId,
} from '../jsonrpc/messages.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { HttpUpstream } from '../proxy/http-upstream.js';
import { upstreamRequestHeaders } from '../proxy/upstream-headers.js';
import type { RateLimitDecision, RateLimiter } from '../ratelimit/rate-limiter.js';
import { type SessionClaims, SessionCodec } from '../sessions/session-codec.js';
import { BridgeSessions } from '../bridge/bridge-sessions.js';
import type { ClosedSessions } from '../sessions/closed-sessions.js';
import type { SessionForwarder } from '../sessions/session-forwarder.js';
import { originAllowed } from './origin.js';

/** streamable: `/mcp/{ns}`; sse: legacy `GET /mcp/{ns}/sse`; messages: legacy `POST /mcp/{ns}/messages`. */
export type McpRoute = 'streamable' | 'sse' | 'messages';

export interface McpRequest {
  route?: McpRoute;
  raw: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  namespace: string;
  /** The raw body (POST), already bounded by max_body_bytes. */
  body?: Buffer;
}

export interface PipelineDeps {
  edgeId: string;
  config: ConfigStore;
  verifier: KeyVerifier;
  limiter: RateLimiter;
  sessions: SessionCodec;
  http: HttpUpstream;
  bridges: BridgeSessions;
  closedSessions: ClosedSessions;
  forwarder: SessionForwarder;
  /** How other edges reach this one, for sessions bound to it. */
  advertiseUrl: string;
  publisher: EventPublisher;
  metrics: EdgeMetrics;
  logger: Logger;
}

/** The `/metrics` label of requests to a namespace the config does not hold. */
const UNKNOWN_NAMESPACE_LABEL = '_unknown';

/**
 * The whole path of an MCP request through the edge, in order:
 *
 *   request id → origin → body limit → auth → namespace → parse → session → rate limit
 *   → tool filter → proxy → events
 *
 * Why this order: the request id comes first so every later line and error carries it. Origin
 * is checked before anything else answers, so a foreign page learns nothing (not even 401). The
 * body limit is applied by the body reader before a byte beyond it is read. Auth precedes every
 * answer that would reveal configuration (which namespaces exist). The body is parsed once,
 * after auth, because rate limits count JSON-RPC requests and the filter needs tool names.
 * The session binding is checked before the limit so a foreign session id costs nothing.
 * Events are recorded for every outcome, including each rejection.
 */
export class McpPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  newRecorder(
    requestId: string,
    namespace: string,
    protocolVersion: string | null = null,
  ): ExchangeRecorder {
    return new ExchangeRecorder(
      {
        edge_id: this.deps.edgeId,
        request_id: requestId,
        namespace,
        transport: 'streamable',
        tenant: null,
        key_id: null,
        user: null,
        protocol_version: protocolVersion,
        session_id: null,
        client_name: null,
        client_version: null,
      },
      this.deps.publisher,
      this.deps.metrics,
      namespace in this.deps.config.current.namespaces ? namespace : UNKNOWN_NAMESPACE_LABEL,
    );
  }

  async handle(request: McpRequest): Promise<void> {
    const { deps } = this;
    const config = deps.config.current;
    const recorder = this.newRecorder(
      request.requestId,
      request.namespace,
      headerOf(request.raw, 'mcp-protocol-version') ?? null,
    );
    let parsed: ParsedBody | undefined;
    try {
      if (!originAllowed(headerOf(request.raw, 'origin'), config.server.allowed_origins)) {
        throw new GatewayError(ErrorCode.ForbiddenOrigin, 'Origin not allowed');
      }
      const principal = await deps.verifier.authenticate(request.raw);
      recorder.identity.tenant = principal.tenant;
      recorder.identity.key_id = principal.keyId;
      recorder.identity.user = principal.user;

      const namespace = config.namespaces[request.namespace];
      if (!namespace)
        throw new GatewayError(
          ErrorCode.UnknownNamespace,
          `Unknown namespace: ${request.namespace}`,
        );
      if (!mayUseNamespace(principal, request.namespace)) {
        throw new GatewayError(
          ErrorCode.ForbiddenNamespace,
          `Key may not use namespace ${request.namespace}`,
        );
      }
      if (isStdioUpstream(namespace.upstream)) recorder.identity.transport = 'stdio';
      else if (namespace.upstream.transport === 'sse') recorder.identity.transport = 'sse';

      const route = request.route ?? 'streamable';
      const method = request.raw.method ?? 'GET';
      if (method === 'POST') parsed = parseJsonRpcBody(request.body ?? Buffer.alloc(0));

      const claims = this.sessionOf(request, route, principal, namespace);
      if (claims) {
        recorder.identity.session_id = sessionTokenOf(request, route) ?? null;
        recorder.identity.client_name = claims.cn ?? null;
        recorder.identity.client_version = claims.cv ?? null;
        recorder.identity.protocol_version ??= claims.pv ?? null;
      }
      const initialize = parsed && initializeOf(parsed);
      if (initialize) {
        const params = initialize.value.params as
          | { clientInfo?: { name?: unknown; version?: unknown }; protocolVersion?: unknown }
          | undefined;
        recorder.identity.client_name = str(params?.clientInfo?.name);
        recorder.identity.client_version = str(params?.clientInfo?.version);
        recorder.identity.protocol_version = str(params?.protocolVersion);
      }

      if (parsed) {
        const version =
          headerOf(request.raw, 'mcp-protocol-version') ??
          claims?.pv ??
          (route === 'streamable' ? '2025-03-26' : '2024-11-05');
        enforceRequestPolicy(parsed, request.raw.headers, version);
      }

      // A request forwarded by another edge (for a session held here) was counted there.
      const forwarded = deps.forwarder.isForwarded(request.raw, request.requestId);
      if (!forwarded) {
        // SPEC §6: a body counts its requests; a GET stream counts one.
        const points = parsed ? requestCount(parsed) : method === 'GET' ? 1 : 0;
        const decision = await deps.limiter.consume(principal, request.namespace, points);
        setRateLimitHeaders(request.res, decision);
      }

      // A session bridged on another edge is served there: forward the request as it is.
      if (
        claims?.t === 'b' &&
        !deps.bridges.get(claims.b) &&
        !forwarded &&
        claims.e !== deps.edgeId &&
        claims.u
      ) {
        await deps.forwarder.forward(
          claims.u,
          request.raw,
          request.res,
          request.requestId,
          request.body,
        );
        return;
      }

      const passthrough = passthroughUpstream(route, namespace);
      if (!passthrough) {
        await this.toBridge(request, route, principal, namespace, claims, parsed, recorder);
        return;
      }

      // Tool filter on the way in: a hidden tool's call is answered here and never forwarded,
      // alone or inside a batch.
      const filter = toolFilterFor(namespace);
      let body = request.body;
      const localAnswers: Record<string, unknown>[] = [];
      if (parsed) {
        const { denied, forward } = splitByToolFilter(parsed, filter);
        const share = Math.round(request.body!.length / parsed.messages.length);
        for (const message of denied) {
          const answer = rpcError(message.id!, -32602, `Tool not found: ${String(message.tool)}`);
          localAnswers.push(answer);
          recorder.answeredLocally(
            message,
            'denied_tool',
            share,
            Buffer.byteLength(JSON.stringify(answer)),
          );
        }
        for (const message of forward) recorder.clientMessage(message, share);
        if (forward.length === 0) {
          request.res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify(parsed.batch ? localAnswers : localAnswers[0]));
          return;
        }
        if (
          denied.length > 0 ||
          (!filter.allowsEverything && forward.some((m) => m.method === 'tools/call'))
        ) {
          // Where the filter decides, the backend gets exactly the objects that were checked,
          // re-serialised: no duplicate key or escape can make it read another tool name.
          body = Buffer.from(
            JSON.stringify(parsed.batch ? forward.map((m) => m.value) : forward[0].value),
          );
        }
      }

      const upstream = passthrough;
      await deps.http.forward(
        {
          url: upstream.url,
          method: method as 'GET' | 'POST' | 'DELETE',
          headers: upstreamRequestHeaders(
            request.raw.headers,
            upstream.headers,
            claims?.b,
            request.requestId,
          ),
          body,
          localAnswers,
          timeoutMs: namespace.timeout_ms,
          namespace: request.namespace,
          recorder,
          filter,
          rewriteSessionId: (backendSessionId) =>
            deps.sessions.encode({
              k: principal.keyId,
              n: request.namespace,
              t: 'h',
              b: backendSessionId,
              cn: recorder.identity.client_name ?? undefined,
              cv: recorder.identity.client_version ?? undefined,
              pv: recorder.identity.protocol_version ?? undefined,
            }),
          // A DELETE without a session id has no session of ours to end.
          onSessionDeleted: claims
            ? () => deps.closedSessions.close(sessionTokenOf(request, route)!)
            : undefined,
        },
        request.res,
      );
    } catch (error) {
      this.fail(request, error, parsed, recorder);
    }
  }

  /**
   * Validates the client's session id (header, or `?session=` on legacy routes): signed by us,
   * same key, same namespace, not ended with DELETE. Anything else is 404 unknown_session.
   */
  private sessionOf(
    request: McpRequest,
    route: McpRoute,
    principal: Principal,
    namespace: NamespaceConfig,
  ): SessionClaims | undefined {
    const token = sessionTokenOf(request, route);
    if (token === undefined) {
      if (route === 'messages')
        throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session: ?session= is required');
      return undefined;
    }
    const claims = this.deps.sessions.decode(token);
    const bridged = !passthroughUpstream(route, namespace);
    if (
      !claims ||
      claims.k !== principal.keyId ||
      claims.n !== request.namespace ||
      claims.t !== (bridged ? 'b' : 'h') ||
      this.deps.closedSessions.has(token)
    ) {
      throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session');
    }
    return claims;
  }

  /** Sessions held in this edge: stdio children, legacy SSE backends, legacy SSE clients. */
  private async toBridge(
    request: McpRequest,
    route: McpRoute,
    principal: Principal,
    namespace: NamespaceConfig,
    claims: SessionClaims | undefined,
    parsed: ParsedBody | undefined,
    recorder: ExchangeRecorder,
  ): Promise<void> {
    const { deps } = this;
    let session = claims ? deps.bridges.get(claims.b) : undefined;
    if (claims && !session) {
      throw new GatewayError(
        ErrorCode.UnknownSession,
        claims.e !== deps.edgeId
          ? 'Unknown session: the edge that held it is gone'
          : 'Unknown session',
      );
    }
    if (!session) {
      const opensSession =
        route === 'sse' ||
        (parsed !== undefined && !parsed.batch && parsed.messages[0].method === 'initialize');
      if (!opensSession || (route === 'sse' && request.raw.method !== 'GET')) {
        throw new GatewayError(
          ErrorCode.BadRequest,
          'Bad Request: Mcp-Session-Id header is required',
        );
      }
      const namespaceName = request.namespace;
      session = await deps.bridges.create({
        namespace: namespaceName,
        upstream: namespace.upstream,
        timeoutMs: namespace.timeout_ms,
        client: route === 'sse' ? 'legacy' : 'streamable',
        recorder,
        filter: () => toolFilterFor(deps.config.current.namespaces[namespaceName] ?? namespace),
        token: (sessionId) =>
          deps.sessions.encode({
            k: principal.keyId,
            n: namespaceName,
            t: 'b',
            b: sessionId,
            e: deps.edgeId,
            u: deps.advertiseUrl,
            cn: recorder.identity.client_name ?? undefined,
            cv: recorder.identity.client_version ?? undefined,
            pv: recorder.identity.protocol_version ?? undefined,
          }),
      });
      recorder.identity.session_id = session.token;
    }
    if (route === 'sse') {
      session.attachLegacyStream(
        request.res,
        `/mcp/${request.namespace}/messages?session=${encodeURIComponent(session.token)}`,
      );
      return;
    }
    // The body was parsed once already; the transports get those objects.
    const values = parsed ? parsed.messages.map((m) => m.value as JSONRPCMessage) : [];
    if (route === 'messages') {
      session.receive(values, request.requestId);
      request.res.writeHead(202, { 'content-type': 'text/plain' }).end('Accepted');
      return;
    }
    await session.handleStreamable(
      request.raw,
      request.res,
      parsed?.batch ? values : values[0],
      request.requestId,
    );
  }

  /** Maps any failure to its HTTP answer (once, here) and records the rejection. */
  fail(
    request: McpRequest,
    error: unknown,
    parsed: ParsedBody | undefined,
    recorder: ExchangeRecorder,
  ): void {
    const gatewayError =
      error instanceof GatewayError
        ? error
        : new GatewayError(ErrorCode.Internal, 'Internal gateway error');
    if (!(error instanceof GatewayError)) {
      this.deps.logger.error(
        { err: error, request_id: request.requestId },
        'unexpected error in MCP pipeline',
      );
    }
    const res = request.res;
    const status = gatewayError.status;
    const outcome = outcomeOf(gatewayError.code);
    if (recorder.hasPending || isUpstreamFailure(gatewayError.code)) {
      recorder.finish(outcome, status, gatewayError.code);
    } else {
      recorder.rejected(
        outcome,
        status,
        gatewayError.code,
        parsed?.messages ?? [],
        request.body?.length ?? 0,
      );
    }
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    let rpcId: RpcId | null | undefined = firstRequestId(parsed) ?? salvageId(request.body);
    if (
      rpcId === undefined &&
      (gatewayError.code === ErrorCode.ParseError || gatewayError.code === ErrorCode.InvalidRequest)
    ) {
      rpcId = null;
    }
    const body = errorBody(gatewayError.code, gatewayError.message, request.requestId, rpcId);
    res.writeHead(status, { ...gatewayError.headers, 'content-type': 'application/json' });
    res.end(body);
  }
}

function outcomeOf(code: ErrorCode): EventOutcome {
  switch (code) {
    case ErrorCode.Unauthorized:
    case ErrorCode.TooManyAuthFailures:
      return 'unauthorized';
    case ErrorCode.ForbiddenNamespace:
    case ErrorCode.ForbiddenOrigin:
    case ErrorCode.Forbidden:
      return 'forbidden';
    case ErrorCode.RateLimited:
      return 'rate_limited';
    case ErrorCode.UpstreamTimeout:
      return 'upstream_timeout';
    case ErrorCode.UpstreamError:
    case ErrorCode.AuthUnavailable:
    case ErrorCode.Unavailable:
    case ErrorCode.Internal:
      return 'upstream_error';
    case ErrorCode.UnknownNamespace:
    case ErrorCode.UnknownSession:
    case ErrorCode.ParseError:
    case ErrorCode.InvalidRequest:
    case ErrorCode.PayloadTooLarge:
    case ErrorCode.NotFound:
    case ErrorCode.MethodNotAllowed:
    case ErrorCode.NotAcceptable:
    case ErrorCode.HeaderMismatch:
    case ErrorCode.BadRequest:
      return 'bad_request';
  }
}

function isUpstreamFailure(code: ErrorCode): boolean {
  return code === ErrorCode.UpstreamError || code === ErrorCode.UpstreamTimeout;
}

function setRateLimitHeaders(res: ServerResponse, decision: RateLimitDecision): void {
  res.setHeader('RateLimit-Limit', String(decision.limit));
  res.setHeader('RateLimit-Remaining', String(decision.remaining));
  res.setHeader('RateLimit-Reset', String(decision.resetSeconds));
}

/**
 * The upstream of a pass-through session: a Streamable HTTP client on a Streamable HTTP backend,
 * relayed byte for byte by any edge. Anything else (stdio, legacy SSE on either side) is bridged
 * in one edge: undefined.
 */
function passthroughUpstream(
  route: McpRoute,
  namespace: NamespaceConfig,
): HttpUpstreamConfig | undefined {
  const upstream = namespace.upstream;
  return route === 'streamable' && !isStdioUpstream(upstream) && upstream.transport !== 'sse'
    ? upstream
    : undefined;
}

function sessionTokenOf(request: McpRequest, route: McpRoute): string | undefined {
  if (route === 'messages') {
    const query = request.raw.url?.split('?')[1];
    return query ? (new URLSearchParams(query).get('session') ?? undefined) : undefined;
  }
  return headerOf(request.raw, 'mcp-session-id');
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function initializeOf(parsed: ParsedBody): RpcMessage | undefined {
  for (const message of parsed.messages) if (message.method === 'initialize') return message;
  return undefined;
}

function requestCount(parsed: ParsedBody): number {
  let count = 0;
  for (const message of parsed.messages) if (message.kind === 'request') count++;
  return count;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, 128) : null;
}
