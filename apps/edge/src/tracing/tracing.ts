import type { IncomingMessage } from 'node:http';
import type { EventOutcome, NamespaceConfig } from '#common';
import type { Logger } from 'pino';
import type { ExchangeIdentity } from '../events/exchange-recorder.js';
import type { RpcMessage } from '../jsonrpc/messages.js';

/**
 * OpenTelemetry traces (SPEC §8), on when the edge is given `TraceOptions` (main.ts derives them
 * from the standard OTEL_* variables). This file holds only the shapes the request path sees: the
 * SDK is imported (`otel-tracing.ts`) when tracing is on, never otherwise, so an edge without
 * tracing loads none of it and pays one `undefined` check per exchange and per request.
 */
export interface TraceOptions {
  /** Where spans are POSTed (OTLP/HTTP, JSON); the OTEL_EXPORTER_OTLP_* variables otherwise. */
  url?: string;
}

/** W3C trace context headers (or `params._meta` entries) to pass to a backend. */
export interface TraceContext {
  traceparent?: string;
  tracestate?: string;
}

/** An edge's tracer; one per edge (an edge in a test process has its own exporter). */
export interface Tracing {
  /** The spans of one HTTP exchange; `identity` is read when its spans end (session, version). */
  exchange(
    req: IncomingMessage,
    identity: ExchangeIdentity,
    started: number,
    clientAddress: () => string,
  ): ExchangeTrace;
  /** Exports every ended span now. */
  flush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

/** One exchange's server spans: one per JSON-RPC request or notification of the client. */
export interface ExchangeTrace {
  /** A request the tap lets through: its server span starts (at the exchange's start). */
  request(message: RpcMessage): RequestTrace;
  /** A notification the tap lets through: a server span, ended at once. */
  notification(message: RpcMessage): void;
  /** A message answered or refused by the gateway itself: a server span with `error.type`. */
  refused(message: RpcMessage, errorType: string, rpcCode?: number): void;
}

/** One request's spans: the server span, and the client span of its call to the backend. */
export interface RequestTrace {
  /** The backend call starts: its client span; returns that span's context to pass on. */
  toBackend(upstream: NamespaceConfig['upstream']): TraceContext;
  /** The request is answered (or failed): both spans end. */
  end(outcome: EventOutcome, errorCode: string | null, description?: string): void;
}

/**
 * Traces are on when an OTLP endpoint is set, unless the SDK is disabled or the traces exporter
 * is `none` (the standard variables; the exporter and sampler read the rest of them themselves).
 */
export function traceOptionsFromEnv(
  env: Record<string, string | undefined>,
): TraceOptions | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  if (!env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT && !env.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol?.trim().toLowerCase() === 'grpc') {
    throw new Error(
      "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: the edge exports OTLP over HTTP (JSON); point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)",
    );
  }
  return {};
}

/** Loads the OpenTelemetry SDK (only now) and starts this edge's tracer. */
export async function startTracing(
  options: TraceOptions,
  edgeId: string,
  logger: Logger,
): Promise<Tracing> {
  const { OtelTracing } = await import('./otel-tracing.js');
  return new OtelTracing(options, edgeId, logger);
}

/**
 * Writes `context` into a request's `params._meta` (the MCP semantic conventions' carrier), over
 * any trace context the client put there. Only for messages the gateway serialises anyway, or
 * whose own `_meta.traceparent` would otherwise name the client's span to the backend. False
 * when the message has no place for it (positional params, a `_meta` that is not an object).
 */
export function writeTraceMeta(value: Record<string, unknown>, context: TraceContext): boolean {
  const params = value.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return false;
  const meta = (params as { _meta?: unknown })._meta ?? {};
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return false;
  const rest = { ...(meta as Record<string, unknown>) };
  delete rest.traceparent;
  delete rest.tracestate;
  value.params = { ...params, _meta: { ...rest, ...context } };
  return true;
}

/** Whether a message carries its own trace context in `params._meta`. */
export function hasTraceMeta(value: Record<string, unknown>): boolean {
  const params = value.params as { _meta?: { traceparent?: unknown } } | undefined;
  return typeof params === 'object' && params !== null && params._meta?.traceparent !== undefined;
}
