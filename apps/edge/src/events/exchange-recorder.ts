import { randomUUID } from 'node:crypto';
import type { EventOutcome, EventTransport, McpEvent } from '#common';
import { idKey, type RpcId, type RpcMessage, responseOutcome } from '../jsonrpc/messages.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
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
}

interface Pending {
  message: RpcMessage;
  started: number;
  bytesIn: number;
}

/**
 * Turns the JSON-RPC messages of one exchange into analytics events (SPEC §7): one per message
 * in each direction. A request's event is written when its response is seen, so it carries the
 * outcome and the duration; requests left without a response get the exchange's end outcome.
 */
export class ExchangeRecorder {
  private readonly pending = new Map<string, Pending>();
  upstreamStarted = 0;

  constructor(
    readonly identity: ExchangeIdentity,
    private readonly publisher: EventPublisher,
    private readonly metrics: EdgeMetrics,
    private readonly started = performance.now(),
  ) {}

  /** Pending request's method (for response handling, e.g. tools/list filtering). */
  methodOf(id: RpcId | undefined): string | undefined {
    return id === undefined ? undefined : this.pending.get(idKey(id))?.message.method;
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
      this.pending.set(idKey(message.id), { message, started: performance.now(), bytesIn: bytes });
      return;
    }
    this.emit({
      direction: 'client_to_server',
      kind: message.kind,
      jsonrpc_id: message.id === undefined ? null : String(message.id),
      method: message.method ?? null,
      outcome: 'ok',
      bytes_in: bytes,
    });
  }

  /** A request the gateway answered itself (a hidden tool): request and its error response. */
  answeredLocally(
    message: RpcMessage,
    outcome: EventOutcome,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const common = {
      jsonrpc_id: String(message.id),
      method: message.method ?? null,
      tool: message.tool ?? null,
    };
    this.metrics.requests.inc({ namespace: this.identity.namespace, outcome });
    this.emit({
      ...common,
      direction: 'client_to_server',
      kind: 'request',
      outcome,
      http_status: 200,
      bytes_in: bytesIn,
      duration_ms: this.elapsed(performance.now()),
    });
    this.emit({
      ...common,
      direction: 'server_to_client',
      kind: 'response',
      outcome,
      bytes_out: bytesOut,
    });
  }

  serverMessage(value: Record<string, unknown>, bytes: number, httpStatus: number): void {
    const isResponse =
      'id' in value && ('result' in value || 'error' in value) && !('method' in value);
    if (!isResponse) {
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
    const error = value.error as { code?: unknown } | undefined;
    const pending = this.pending.get(idKey(id));
    if (pending) {
      this.pending.delete(idKey(id));
      this.completeRequest(pending, outcome, httpStatus, {
        bytes_out: bytes,
        error_code: error && typeof error.code === 'number' ? String(error.code) : null,
      });
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
    });
  }

  /** Ends the exchange: requests still without a response get `outcome`. */
  finish(outcome: EventOutcome, httpStatus: number | null, errorCode: string | null = null): void {
    for (const pending of this.pending.values()) {
      this.completeRequest(pending, outcome, httpStatus, { error_code: errorCode });
    }
    this.pending.clear();
  }

  /** A rejected HTTP request: one event, carrying the first request's id when there was one. */
  rejected(
    outcome: EventOutcome,
    httpStatus: number,
    errorCode: string,
    messages: RpcMessage[],
    bytesIn: number,
  ): void {
    const first = messages.find((m) => m.kind === 'request') ?? messages[0];
    this.metrics.requests.inc({ namespace: this.identity.namespace, outcome });
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
    });
  }

  private completeRequest(
    pending: Pending,
    outcome: EventOutcome,
    httpStatus: number | null,
    extra: Partial<McpEvent>,
  ): void {
    const now = performance.now();
    const duration = now - pending.started;
    this.metrics.requests.inc({ namespace: this.identity.namespace, outcome });
    this.metrics.duration.observe({ namespace: this.identity.namespace }, duration / 1000);
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
      ...extra,
    });
  }

  private elapsed(now: number): number {
    return round(now - this.started);
  }

  private emit(fields: Partial<McpEvent> & Pick<McpEvent, 'direction' | 'outcome'>): void {
    this.publisher.publish({
      id: randomUUID(),
      ts: new Date().toISOString(),
      ...this.identity,
      kind: null,
      jsonrpc_id: null,
      method: null,
      tool: null,
      http_status: null,
      error_code: null,
      duration_ms: null,
      upstream_ms: null,
      bytes_in: null,
      bytes_out: null,
      ...fields,
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
