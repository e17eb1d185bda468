import { randomUUID } from 'node:crypto';
import {
  type AuthMethod,
  type EventOutcome,
  type EventTransport,
  type ListedTool,
  type McpEvent,
  type NamespaceConfig,
  MAX_EVENT_DETAIL,
  type Principal,
  TOOL_DRIFT_METHOD,
  type ToolDriftDetail,
} from '#common';
import type { SessionClaims } from '../sessions/session-codec.js';
import {
  idKey,
  isResponse,
  type ParsedBody,
  type RpcId,
  type RpcMessage,
  responseOutcome,
} from '../jsonrpc/messages.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { ExchangeTrace, RequestTrace, TraceContext } from '../tracing/tracing.js';
import type { EventPublisher } from './event-publisher.js';

/** Who and where: the fields every event of one HTTP exchange shares. */
export interface ExchangeIdentity {
  edge_id: string;
  request_id: string;
  namespace: string;
  transport: EventTransport;
  tenant: string | null;
  key_id: string | null;
  user: string | null;
  protocol_version: string | null;
  session_id: string | null;
  client_name: string | null;
  client_version: string | null;
  /** How the client proved who it is: `none` until a credential is accepted. */
  auth_method: AuthMethod;
  /** The virtual server the exchange is on, or null. */
  server: string | null;
  /** The revision spoken with the backend when the gateway bridges eras (else the client's). */
  upstream_protocol_version?: string;
  /**
   * On a virtual server: the member and backend name of a tool the client named, so a call's
   * events carry the member's `namespace`, the backend's `tool` and the client's `client_tool`.
   */
  route?: (
    clientTool: string,
  ) => { namespace: string; tool: string; transport?: EventTransport } | undefined;
}

interface Pending {
  message: RpcMessage;
  started: number;
  bytesIn: number;
  /** Its spans, when tracing is on. */
  trace: RequestTrace | undefined;
}

/**
 * Turns the JSON-RPC messages of one exchange into analytics events (SPEC §7): one per message
 * in each direction. A request's event is written when its response is seen, so it carries the
 * outcome and the duration; requests left without a response get the exchange's end outcome.
 * With tracing on (SPEC §8), the same moments start and end each client message's spans.
 */
export class ExchangeRecorder {
  private readonly pending = new Map<string, Pending>();
  upstreamStarted = 0;
  /** The exchange's request body, once parsed (answers to failures echo its first request id). */
  parsed: ParsedBody | undefined;

  /**
   * @param metricsNamespace the namespace's `/metrics` label: the configured name, or one label
   *   for every name the config does not hold (the path is the client's to choose, before auth).
   */
  constructor(
    readonly identity: ExchangeIdentity,
    private readonly publisher: EventPublisher,
    private readonly metrics: EdgeMetrics,
    private readonly metricsNamespace: string,
    private readonly started = performance.now(),
    /** The client's network (IPv4 address or IPv6 /64): computed only when asked for. */
    private readonly clientNetwork: () => string | null = () => null,
    /** The exchange's spans; undefined when tracing is off. */
    private readonly trace?: ExchangeTrace,
  ) {}

  /** Whether the exchange is traced (its requests carry a trace context to the backend). */
  get tracing(): boolean {
    return this.trace !== undefined;
  }

  /**
   * A delivered request's call to the backend starts: the trace context it carries there (its
   * client span's). Undefined when tracing is off or the request is not waiting for an answer.
   */
  backendTrace(
    message: RpcMessage,
    upstream: NamespaceConfig['upstream'],
  ): TraceContext | undefined {
    if (this.trace === undefined || message.id === undefined) return undefined;
    return this.pending.get(idKey(message.id))?.trace?.toBackend(upstream);
  }

  /** Who asks: set once the key is known. */
  identify(principal: Principal): void {
    this.identity.tenant = principal.tenant;
    this.identity.key_id = principal.keyId;
    this.identity.user = principal.user;
    this.identity.auth_method = principal.authMethod ?? 'key';
  }

  /** The session the exchange belongs to, and the client it names (from its claims or initialize). */
  joinSession(token: string | undefined, claims: SessionClaims | undefined): void {
    const who = this.identity;
    if (claims) {
      who.session_id = token ?? null;
      who.client_name = claims.cn ?? null;
      who.client_version = claims.cv ?? null;
      who.protocol_version ??= claims.pv ?? null;
    }
    const initialize = this.parsed?.messages.find((message) => message.method === 'initialize');
    if (!initialize) return;
    const params = initialize.value.params as
      { clientInfo?: { name?: unknown; version?: unknown }; protocolVersion?: unknown } | undefined;
    who.client_name = str(params?.clientInfo?.name);
    who.client_version = str(params?.clientInfo?.version);
    who.protocol_version = str(params?.protocolVersion);
  }

  /** Ids of requests still waiting for a response. */
  pendingIds(): RpcId[] {
    return [...this.pending.values()].map((pending) => pending.message.id!);
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  clientMessage(message: RpcMessage, bytes: number): void {
    if (message.kind === 'request' && message.id !== undefined) {
      this.pending.set(idKey(message.id), {
        message,
        started: performance.now(),
        bytesIn: bytes,
        trace: this.trace?.request(message),
      });
      return;
    }
    if (this.trace && message.kind === 'notification') this.trace.notification(message);
    this.emit({
      direction: 'client_to_server',
      kind: message.kind,
      jsonrpc_id: message.id === undefined ? null : String(message.id),
      method: message.method ?? null,
      outcome: 'ok',
      bytes_in: bytes,
    });
  }

  /**
   * A message the gateway answered itself and never delivered (a hidden tool): the request with
   * its duration (this exchange's own time to answer) and the gateway's answer, or a notification.
   */
  answeredLocally(
    message: RpcMessage,
    outcome: EventOutcome,
    bytesIn: number,
    answer: Record<string, unknown> | null,
  ): void {
    const common = {
      jsonrpc_id: message.id === undefined ? null : String(message.id),
      method: message.method ?? null,
      tool: message.tool ?? null,
    };
    if (message.kind === 'request') this.metrics.countRequest(this.metricsNamespace, outcome);
    this.trace?.refused(message, outcome, rpcCodeOf(answer));
    this.emit({
      ...common,
      direction: 'client_to_server',
      kind: message.kind,
      outcome,
      http_status: 200,
      bytes_in: bytesIn,
      duration_ms: this.elapsed(performance.now()),
    });
    if (!answer) return;
    this.emit({
      ...common,
      direction: 'server_to_client',
      kind: 'response',
      outcome,
      bytes_out: Buffer.byteLength(JSON.stringify(answer)),
    });
  }

  /** Ends one pending request with a failure the gateway answered (timeout, backend gone). */
  failRequest(id: RpcId, outcome: EventOutcome, httpStatus: number, errorCode: string): void {
    const pending = this.pending.get(idKey(id));
    if (!pending) return;
    this.pending.delete(idKey(id));
    this.completeRequest(pending, outcome, httpStatus, null, errorCode);
    pending.trace?.end(outcome, errorCode);
  }

  /**
   * A message from the backend. `listed`: on a `tools/list` result, the tools the client receives
   * (after the tap filtered them) with their definitions' tokens (SPEC §7 v2 context budget).
   */
  serverMessage(
    value: Record<string, unknown>,
    bytes: number,
    httpStatus: number,
    listed?: ListedTool[],
  ): void {
    if (!isResponse(value)) {
      this.emit({
        direction: 'server_to_client',
        kind: 'id' in value ? 'request' : 'notification',
        jsonrpc_id: 'id' in value ? String(value.id) : null,
        method: typeof value.method === 'string' ? value.method : null,
        outcome: 'ok',
        bytes_out: bytes,
      });
      return;
    }
    const id = value.id as RpcId;
    const outcome = responseOutcome(value);
    const error = value.error as { code?: unknown; message?: unknown } | undefined;
    const pending = this.pending.get(idKey(id));
    if (pending) {
      this.pending.delete(idKey(id));
      const code = error && typeof error.code === 'number' ? String(error.code) : null;
      this.completeRequest(pending, outcome, httpStatus, bytes, code);
      pending.trace?.end(outcome, code, errorMessage(error));
    }
    this.emit({
      direction: 'server_to_client',
      kind: 'response',
      jsonrpc_id: String(id),
      method: pending?.message.method ?? null,
      tool: pending?.message.tool ?? null,
      outcome,
      http_status: httpStatus,
      bytes_out: bytes,
      tools_listed: listed,
    });
  }

  /**
   * A pinned tool's definition changed (SPEC §7 v2 Pinning): one `tool_drift` event, with who
   * and which session saw it, written by the edge whose write recorded the drift.
   */
  toolDrift(tool: string, detail: ToolDriftDetail): void {
    // The diff is cut (from its end) until the detail fits an event; the pin keeps it whole.
    let text = JSON.stringify(detail);
    for (let keep = detail.diff.length; text.length > MAX_EVENT_DETAIL;) {
      keep = Math.floor(keep / 2);
      text = JSON.stringify({ ...detail, diff: `${detail.diff.slice(0, keep)}\n… (cut)` });
    }
    this.emit({
      direction: 'server_to_client',
      kind: 'notification',
      method: TOOL_DRIFT_METHOD,
      tool,
      outcome: 'ok',
      detail: text,
    });
  }

  /** Ends the exchange: requests still without a response get `outcome`. */
  finish(outcome: EventOutcome, httpStatus: number | null, errorCode: string | null = null): void {
    for (const pending of this.pending.values()) {
      this.completeRequest(pending, outcome, httpStatus, null, errorCode);
      pending.trace?.end(outcome, errorCode);
    }
    this.pending.clear();
  }

  /**
   * A rejected HTTP request: one event, carrying the first request's id when there was one. A
   * request without a valid credential (nobody identified) is marked with its client network, so
   * the RejectionTally in front of the publisher folds it into a per-minute count.
   */
  rejected(
    outcome: EventOutcome,
    httpStatus: number,
    errorCode: string,
    messages: RpcMessage[],
    bytesIn: number,
  ): void {
    const first = messages.find((m) => m.kind === 'request') ?? messages[0];
    this.metrics.countRequest(this.metricsNamespace, outcome);
    // Spans only for a body that was parsed: before that (origin, auth, namespace) there is no
    // MCP method to name a span by, and an unauthenticated caller writes nothing into traces.
    if (this.trace) {
      for (const message of messages)
        if (message.kind !== 'response') this.trace.refused(message, errorCode);
    }
    this.emit({
      direction: 'client_to_server',
      kind: first?.kind ?? null,
      jsonrpc_id: first?.id === undefined ? null : String(first.id),
      method: first?.method ?? null,
      tool: first?.tool ?? null,
      outcome,
      http_status: httpStatus,
      error_code: errorCode,
      bytes_in: bytesIn,
      duration_ms: this.elapsed(performance.now()),
      // The path's name only when configured (`_unknown` otherwise), whoever asked: names are the
      // client's to invent, and `_admin` is the audit log's.
      namespace: this.metricsNamespace,
      ...(this.identity.key_id === null && { client_network: this.clientNetwork() }),
    });
  }

  private completeRequest(
    pending: Pending,
    outcome: EventOutcome,
    httpStatus: number | null,
    bytesOut: number | null,
    errorCode: string | null,
  ): void {
    const now = performance.now();
    const duration = now - pending.started;
    this.metrics.countRequest(this.metricsNamespace, outcome);
    this.metrics.observeDuration(this.metricsNamespace, duration / 1000);
    this.emit({
      direction: 'client_to_server',
      kind: 'request',
      jsonrpc_id: String(pending.message.id),
      method: pending.message.method ?? null,
      tool: pending.message.tool ?? null,
      outcome,
      http_status: httpStatus,
      duration_ms: round(duration),
      upstream_ms: this.upstreamStarted
        ? round(now - Math.max(this.upstreamStarted, pending.started))
        : null,
      bytes_in: pending.bytesIn,
      bytes_out: bytesOut,
      error_code: errorCode,
    });
  }

  private elapsed(now: number): number {
    return round(now - this.started);
  }

  /**
   * One event, built as one object literal of a fixed shape (no spreads): cheap to allocate and
   * to serialise, once per JSON-RPC message on the hot path. The key order is the one events
   * have always had on the wire.
   */
  private emit(fields: EventFields): void {
    const who = this.identity;
    let namespace = fields.namespace ?? who.namespace;
    let tool = fields.tool ?? null;
    let clientTool: string | null = null;
    let transport = who.transport;
    if (who.route && tool !== null) {
      const routed = who.route(tool);
      if (routed) {
        namespace = routed.namespace;
        transport = routed.transport ?? transport;
        if (routed.tool !== tool) clientTool = tool;
        tool = routed.tool;
      }
    }
    this.publisher.publish({
      id: randomUUID(),
      ts: new Date().toISOString(),
      edge_id: who.edge_id,
      request_id: who.request_id,
      namespace,
      transport,
      tenant: who.tenant,
      key_id: who.key_id,
      user: who.user,
      protocol_version: who.protocol_version,
      session_id: who.session_id,
      client_name: who.client_name,
      client_version: who.client_version,
      kind: fields.kind ?? null,
      jsonrpc_id: fields.jsonrpc_id ?? null,
      method: fields.method ?? null,
      tool,
      http_status: fields.http_status ?? null,
      error_code: fields.error_code ?? null,
      duration_ms: fields.duration_ms ?? null,
      upstream_ms: fields.upstream_ms ?? null,
      bytes_in: fields.bytes_in ?? null,
      bytes_out: fields.bytes_out ?? null,
      direction: fields.direction,
      outcome: fields.outcome,
      server: who.server,
      auth_method: who.auth_method,
      client_tool: clientTool,
      upstream_protocol_version: who.upstream_protocol_version ?? who.protocol_version,
      count: 1,
      client_network: fields.client_network ?? null,
      tools_listed: fields.tools_listed ?? null,
      detail: fields.detail ?? null,
    });
  }
}

/** What differs between the events of one exchange. */
type EventFields = Partial<McpEvent> & Pick<McpEvent, 'direction' | 'outcome'>;

function rpcCodeOf(answer: Record<string, unknown> | null): number | undefined {
  const code = (answer?.error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function errorMessage(error: { message?: unknown } | undefined): string | undefined {
  return typeof error?.message === 'string' ? error.message : undefined;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, 128) : null;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
