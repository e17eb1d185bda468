import type { IncomingMessage } from 'node:http';
import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  DiagLogLevel,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_NETWORK_TRANSPORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import {
  ERROR_MAP,
  ErrorCode,
  type EventOutcome,
  isStdioUpstream,
  type NamespaceConfig,
} from '#common';
import type { Logger } from 'pino';
import type { ExchangeIdentity } from '../events/exchange-recorder.js';
import type { RpcMessage } from '../jsonrpc/messages.js';
import type {
  ExchangeTrace,
  RequestTrace,
  TraceContext,
  TraceOptions,
  Tracing,
} from './tracing.js';

// The MCP semantic conventions' attributes (development status: the SDK's `incubating` entry
// point may rename them in a minor release, so they are spelled here, as its docs advise).
const MCP_METHOD_NAME = 'mcp.method.name';
const MCP_SESSION_ID = 'mcp.session.id';
const MCP_PROTOCOL_VERSION = 'mcp.protocol.version';
const MCP_RESOURCE_URI = 'mcp.resource.uri';
const GEN_AI_TOOL_NAME = 'gen_ai.tool.name';
const GEN_AI_PROMPT_NAME = 'gen_ai.prompt.name';
const GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
const JSONRPC_REQUEST_ID = 'jsonrpc.request.id';
const RPC_RESPONSE_STATUS_CODE = 'rpc.response.status_code';
// The gateway's own: ties a span to the edge's logs and analytics events.
const GATEWAY_NAMESPACE = 'mcp_gateway.namespace';
const GATEWAY_REQUEST_ID = 'mcp_gateway.request_id';

const SERVICE_NAME = 'mcp-gateway-edge';
const propagator = new W3CTraceContextPropagator();

/**
 * The edge's tracer over the OpenTelemetry SDK: its own provider and OTLP/HTTP exporter (never
 * registered as the process's global one, so edges in one process keep theirs apart), spans
 * batched (`OTEL_BSP_*`), sampled as `OTEL_TRACES_SAMPLER` says (parent-based by default),
 * exported where `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` points with `OTEL_EXPORTER_OTLP_HEADERS`.
 * Parents are passed explicitly, so no context manager is needed.
 */
export class OtelTracing implements Tracing {
  private readonly provider: BasicTracerProvider;
  readonly tracer: Tracer;
  /** Per backend URL: what a client span says of the peer. */
  private readonly peers = new Map<string, Attributes>();

  constructor(options: TraceOptions, edgeId: string, logger: Logger) {
    const log = logger.child({ component: 'otel' });
    // Export failures are reported through the SDK's diagnostics: into the edge's log.
    diag.setLogger(
      {
        error: (message, ...args) => log.warn({ args }, message),
        warn: (message, ...args) => log.warn({ args }, message),
        info: (message, ...args) => log.debug({ args }, message),
        debug: () => undefined,
        verbose: () => undefined,
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    const resource = defaultResource()
      .merge(
        resourceFromAttributes({
          [ATTR_SERVICE_NAME]: SERVICE_NAME,
          [ATTR_SERVICE_INSTANCE_ID]: edgeId,
        }),
      )
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults.
      .merge(detectResources({ detectors: [envDetector] }));
    const exporter = new OTLPTraceExporter(options.url ? { url: options.url } : {});
    this.provider = new BasicTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    this.tracer = this.provider.getTracer(SERVICE_NAME);
  }

  exchange(
    req: IncomingMessage,
    identity: ExchangeIdentity,
    started: number,
    clientAddress: () => string,
  ): ExchangeTrace {
    return new OtelExchangeTrace(this, req, identity, started, clientAddress);
  }

  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }

  /** `server.address`, `server.port` and `network.transport` of a backend (a child: a pipe). */
  peerOf(upstream: NamespaceConfig['upstream']): Attributes {
    if (isStdioUpstream(upstream)) return { [ATTR_NETWORK_TRANSPORT]: 'pipe' };
    let peer = this.peers.get(upstream.url);
    if (!peer) {
      const url = new URL(upstream.url);
      peer = {
        [ATTR_NETWORK_TRANSPORT]: 'tcp',
        [ATTR_NETWORK_PROTOCOL_NAME]: 'http',
        [ATTR_SERVER_ADDRESS]: url.hostname.replace(/^\[|\]$/g, ''),
        [ATTR_SERVER_PORT]: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
      };
      this.peers.set(upstream.url, peer);
    }
    return peer;
  }
}

/** One HTTP exchange: the client's trace context is read from its headers once, when needed. */
class OtelExchangeTrace implements ExchangeTrace {
  private headerContext: Context | undefined;

  constructor(
    private readonly tracing: OtelTracing,
    private readonly req: IncomingMessage,
    readonly identity: ExchangeIdentity,
    private readonly started: number,
    private readonly clientAddress: () => string,
  ) {}

  request(message: RpcMessage): RequestTrace {
    return new OtelRequestTrace(this.tracing, this, message, this.serverSpan(message));
  }

  notification(message: RpcMessage): void {
    this.serverSpan(message).end(performance.now());
  }

  refused(message: RpcMessage, errorType: string, rpcCode?: number): void {
    const span = this.serverSpan(message);
    const code = rpcCode ?? ERROR_MAP[errorType as ErrorCode]?.rpcCode;
    failed(span, errorType, code === undefined ? undefined : String(code));
    this.ended(span);
    span.end(performance.now());
  }

  /** What every server span learns at its end: the session and revision may be known by then. */
  ended(span: Span): void {
    const { session_id: session, protocol_version: version } = this.identity;
    if (session !== null) span.setAttribute(MCP_SESSION_ID, session);
    if (version !== null) span.setAttribute(MCP_PROTOCOL_VERSION, version);
  }

  /**
   * The server span of one message, started when the exchange started. Its parent is the trace
   * context of the message's `params._meta` (each message of a batch may carry its own), else
   * the HTTP request's `traceparent`; with both, the HTTP one is linked (MCP conventions).
   */
  private serverSpan(message: RpcMessage): Span {
    const attributes = messageAttributes(message);
    attributes[ATTR_NETWORK_TRANSPORT] = 'tcp';
    attributes[ATTR_NETWORK_PROTOCOL_NAME] = 'http';
    attributes[ATTR_NETWORK_PROTOCOL_VERSION] = this.req.httpVersion;
    attributes[ATTR_CLIENT_ADDRESS] = this.clientAddress();
    attributes[GATEWAY_NAMESPACE] = this.identity.namespace;
    attributes[GATEWAY_REQUEST_ID] = this.identity.request_id;
    this.headerContext ??= propagator.extract(ROOT_CONTEXT, this.req.headers, defaultTextMapGetter);
    let parent = this.headerContext;
    let links: Link[] | undefined;
    const meta = metaOf(message);
    if (meta?.traceparent !== undefined) {
      const fromMeta = propagator.extract(ROOT_CONTEXT, meta, defaultTextMapGetter);
      const metaSpan = trace.getSpanContext(fromMeta);
      if (metaSpan) {
        const headerSpan = trace.getSpanContext(parent);
        if (headerSpan && headerSpan.spanId !== metaSpan.spanId) links = [{ context: headerSpan }];
        parent = fromMeta;
      }
    }
    return this.tracing.tracer.startSpan(
      spanName(message),
      { kind: SpanKind.SERVER, startTime: this.started, attributes, links },
      parent,
    );
  }
}

/** A request's server span, and the client span of its backend call once it starts. */
class OtelRequestTrace implements RequestTrace {
  private client: Span | undefined;
  private context: TraceContext | undefined;

  constructor(
    private readonly tracing: OtelTracing,
    private readonly exchange: OtelExchangeTrace,
    private readonly message: RpcMessage,
    private readonly server: Span,
  ) {}

  toBackend(upstream: NamespaceConfig['upstream']): TraceContext {
    if (this.context) return this.context;
    const attributes = messageAttributes(this.message);
    Object.assign(attributes, this.tracing.peerOf(upstream));
    this.client = this.tracing.tracer.startSpan(
      spanName(this.message),
      { kind: SpanKind.CLIENT, startTime: performance.now(), attributes },
      trace.setSpan(ROOT_CONTEXT, this.server),
    );
    const context: TraceContext = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, this.client), context, defaultTextMapSetter);
    this.context = context;
    return context;
  }

  end(outcome: EventOutcome, errorCode: string | null, description?: string): void {
    const error = errorTypeOf(outcome, errorCode);
    if (error) {
      failed(this.server, error.type, error.rpcCode, description);
      if (this.client) failed(this.client, error.type, error.rpcCode, description);
    }
    this.exchange.ended(this.server);
    const now = performance.now();
    this.client?.end(now);
    this.server.end(now);
  }
}

/** `{mcp.method.name} {target}`: the tool or prompt name when there is one (MCP conventions). */
function spanName(message: RpcMessage): string {
  const target = message.tool ?? promptOf(message);
  return target === undefined ? message.method! : `${message.method} ${target}`;
}

function messageAttributes(message: RpcMessage): Attributes {
  const attributes: Attributes = { [MCP_METHOD_NAME]: message.method };
  if (message.id !== undefined) attributes[JSONRPC_REQUEST_ID] = String(message.id);
  if (message.tool !== undefined) {
    attributes[GEN_AI_TOOL_NAME] = message.tool;
    attributes[GEN_AI_OPERATION_NAME] = 'execute_tool';
  }
  const prompt = promptOf(message);
  if (prompt !== undefined) attributes[GEN_AI_PROMPT_NAME] = prompt;
  const uri = resourceOf(message);
  if (uri !== undefined) attributes[MCP_RESOURCE_URI] = uri;
  return attributes;
}

function paramsOf(message: RpcMessage): Record<string, unknown> | undefined {
  const params = message.value.params;
  return typeof params === 'object' && params !== null && !Array.isArray(params)
    ? (params as Record<string, unknown>)
    : undefined;
}

function promptOf(message: RpcMessage): string | undefined {
  if (message.method !== 'prompts/get') return undefined;
  const name = paramsOf(message)?.name;
  return typeof name === 'string' ? name : undefined;
}

function resourceOf(message: RpcMessage): string | undefined {
  const method = message.method;
  if (
    method !== 'resources/read' &&
    method !== 'resources/subscribe' &&
    method !== 'resources/unsubscribe'
  )
    return undefined;
  const uri = paramsOf(message)?.uri;
  return typeof uri === 'string' ? uri : undefined;
}

function metaOf(message: RpcMessage): Record<string, unknown> | undefined {
  const meta = paramsOf(message)?._meta;
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta)
    ? (meta as Record<string, unknown>)
    : undefined;
}

/**
 * `error.type` of a request's end: `tool_error` for a result with `isError`, the JSON-RPC code of
 * a backend's error, else the gateway's own code (`upstream_timeout`, `no_response`, …) or
 * outcome (`client_closed`). `rpc.response.status_code` is the JSON-RPC code the client got.
 */
function errorTypeOf(
  outcome: EventOutcome,
  errorCode: string | null,
): { type: string; rpcCode?: string } | undefined {
  switch (outcome) {
    case 'ok':
      return undefined;
    case 'tool_error':
      return { type: 'tool_error' };
    case 'rpc_error':
      return errorCode === null ? { type: '_OTHER' } : { type: errorCode, rpcCode: errorCode };
    default: {
      const mapped = errorCode === null ? undefined : ERROR_MAP[errorCode as ErrorCode];
      return { type: errorCode ?? outcome, rpcCode: mapped && String(mapped.rpcCode) };
    }
  }
}

function failed(span: Span, type: string, rpcCode?: string, description?: string): void {
  span.setAttribute(ATTR_ERROR_TYPE, type);
  if (rpcCode !== undefined) span.setAttribute(RPC_RESPONSE_STATUS_CODE, rpcCode);
  span.setStatus({ code: SpanStatusCode.ERROR, message: description });
}
