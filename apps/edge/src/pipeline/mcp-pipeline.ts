import type { ConfigStore } from '#common';
import type { Logger } from 'pino';
import { asGatewayError, outcomeOf, writeError } from '../errors/error-writer.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { ExchangeRecorder, type ExchangeIdentity } from '../events/exchange-recorder.js';
import { firstRequestId, type RpcId, salvageId } from '../jsonrpc/messages.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { EraBridge } from '../era/era-bridge.js';
import { isModern, namesOtherRevision } from '../era/modern.js';
import type { BridgedUpstream } from '../upstream/bridged.js';
import type { ForwardedUpstream } from '../upstream/forwarded.js';
import type { HttpPassthrough } from '../upstream/http-passthrough.js';
import type { Tracing } from '../tracing/tracing.js';
import type { Upstream } from '../upstream/upstream.js';
import { ErrorCode, clientIp, failureSubject } from '#common';
import {
  type Admission,
  type Admitted,
  isPassthrough,
  type McpRequest,
  transportOf,
} from './admission.js';

export interface PipelineDeps {
  edgeId: string;
  config: ConfigStore;
  admission: Admission;
  http: HttpPassthrough;
  bridged: BridgedUpstream;
  forwarded: ForwardedUpstream;
  /** 2026-07-28 requests without a session (era bridging, SPEC §4 behaviour 10). */
  era: EraBridge;
  publisher: EventPublisher;
  metrics: EdgeMetrics;
  logger: Logger;
  /** OpenTelemetry traces; undefined when off. */
  tracing?: Tracing;
}

/** A 2025-era `initialize` on a route relayed as is: the backend's era decides (EraBridge). */
function opensOnHttp(admitted: Admitted): boolean {
  const { parsed, request, server, claims } = admitted;
  return (
    !claims &&
    !server &&
    isPassthrough(request.route, admitted.namespace) &&
    parsed !== undefined &&
    !parsed.batch &&
    parsed.messages[0].method === 'initialize' &&
    !isModern(parsed, request.raw.headers)
  );
}

/** The `/metrics` label of requests to a namespace the config does not hold. */
const UNKNOWN_NAMESPACE_LABEL = '_unknown';

/**
 * The whole path of an MCP request through the edge: admission (pipeline/admission.ts, in SPEC
 * order), then delivery by the `Upstream` the request's session and namespace call for, every
 * message through the one tap. Any failure becomes an answer in one place (`fail`) through the
 * one error writer, and is recorded.
 */
export class McpPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  async handle(request: McpRequest): Promise<void> {
    const exchange = this.newExchange(request);
    try {
      const admitted = await this.deps.admission.admit(request, exchange);
      if (opensOnHttp(admitted) && (await this.deps.era.speaksModern(admitted)))
        admitted.modernBackend = true;
      await this.upstreamFor(admitted).deliver(admitted);
    } catch (error) {
      this.fail(request, error, exchange);
    }
  }

  /**
   * A session bridged in another edge is served there; a 2026-07-28 request goes to the era
   * bridge; a Streamable HTTP client on a Streamable HTTP backend is relayed by any edge;
   * everything else is bridged here.
   */
  private upstreamFor(admitted: Admitted): Upstream {
    const { claims, forwarded } = admitted;
    if (
      claims?.t === 'b' &&
      !forwarded &&
      claims.e !== this.deps.edgeId &&
      claims.u &&
      !this.deps.bridged.holds(claims.b)
    ) {
      return this.deps.forwarded;
    }
    // A 2026-07-28 request has no session: served by the era bridge (which relays it as is to
    // a backend of the same era).
    if (
      !claims &&
      admitted.request.route === 'streamable' &&
      (isModern(admitted.parsed, admitted.request.raw.headers) ||
        namesOtherRevision(admitted.parsed))
    ) {
      return this.deps.era;
    }
    if (claims?.t === 'b' || admitted.modernBackend) return this.deps.bridged;
    return isPassthrough(admitted.request.route, admitted.namespace, admitted.server)
      ? this.deps.http
      : this.deps.bridged;
  }

  /** One exchange per HTTP request: its events carry its own id, identity and timing. */
  newExchange(request: Pick<McpRequest, 'requestId' | 'namespace' | 'raw'>): ExchangeRecorder {
    const version = request.raw.headers['mcp-protocol-version'];
    const namespaces = this.deps.config.current.namespaces;
    const upstream = Object.hasOwn(namespaces, request.namespace)
      ? namespaces[request.namespace].upstream
      : undefined;
    const identity: ExchangeIdentity = {
      edge_id: this.deps.edgeId,
      request_id: request.requestId,
      namespace: request.namespace,
      // The backend kind from the start: a request refused before admission knew its
      // namespace (no credential) is recorded as its namespace's served ones are.
      transport: upstream ? transportOf(upstream) : 'streamable',
      tenant: null,
      key_id: null,
      user: null,
      protocol_version: typeof version === 'string' ? version : null,
      session_id: null,
      client_name: null,
      client_version: null,
      auth_method: 'none',
      server: null,
    };
    const started = performance.now();
    const { server } = this.deps.config.current;
    return new ExchangeRecorder(
      identity,
      this.deps.publisher,
      this.deps.metrics,
      Object.hasOwn(this.deps.config.current.namespaces, request.namespace) ||
        Object.hasOwn(this.deps.config.current.servers, request.namespace)
        ? request.namespace
        : UNKNOWN_NAMESPACE_LABEL,
      started,
      () => failureSubject(clientIp(request.raw, server.trust_proxy)),
      // Off: no trace object, and nothing on the request path but this one check.
      this.deps.tracing?.exchange(request.raw, identity, started, () =>
        clientIp(request.raw, server.trust_proxy),
      ),
    );
  }

  /** Answers any failure (through the one error writer) and records it. */
  fail(
    request: Pick<McpRequest, 'requestId' | 'res' | 'body'>,
    error: unknown,
    exchange: ExchangeRecorder,
  ): void {
    const gatewayError = asGatewayError(error);
    if (gatewayError !== error) {
      this.deps.logger.error(
        { err: error, request_id: request.requestId },
        'unexpected error in MCP pipeline',
      );
    }
    const { code, status } = gatewayError;
    const parsed = exchange.parsed;
    if (
      exchange.hasPending ||
      code === ErrorCode.UpstreamError ||
      code === ErrorCode.UpstreamTimeout
    ) {
      exchange.finish(outcomeOf(code), status, code);
    } else {
      exchange.rejected(
        outcomeOf(code),
        status,
        code,
        parsed?.messages ?? [],
        request.body?.length ?? 0,
      );
    }
    let rpcId: RpcId | null | undefined = firstRequestId(parsed) ?? salvageId(request.body);
    if (rpcId === undefined && (code === ErrorCode.ParseError || code === ErrorCode.InvalidRequest))
      rpcId = null;
    writeError(request.res, gatewayError, request.requestId, rpcId);
  }
}
