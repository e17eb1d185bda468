import type { ServerResponse } from 'node:http';
import { Agent, errors as undiciErrors } from 'undici';
import { ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import { dispatchTarget } from '../bridge/backend-http.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { Admitted } from '../pipeline/admission.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../proxy/upstream-headers.js';
import { AnswerTooLargeError, UpstreamExchange } from '../proxy/upstream-exchange.js';
import type { ClosedSessions } from '../sessions/closed-sessions.js';
import type { SessionCodec } from '../sessions/session-codec.js';
import { isJsonRpc } from '../jsonrpc/messages.js';
import { MessageTap } from '../tap/message-tap.js';
import { hasTraceMeta, type TraceContext, writeTraceMeta } from '../tracing/tracing.js';
import { relaySse } from './sse-relay.js';
import type { Upstream } from './upstream.js';
import { principalRef } from '../auth/credential.js';

const MAX_JSON_BYTES = 32 * 1024 * 1024;

/** What goes to the backend after the tap: the body, and the gateway's own answers to merge in. */
interface Outbound {
  body: Buffer | undefined;
  localAnswers: Record<string, unknown>[];
  /** The trace context for the backend's `traceparent` header, when tracing is on. */
  trace?: TraceContext;
}

/**
 * Streamable HTTP client on a Streamable HTTP backend: bytes in, bytes out, any edge. Each
 * message of the body crosses the tap on the way in (a hidden tool's call never leaves); each
 * message of the answer crosses it on the way out, JSON or SSE, whatever stream carries it (a
 * POST's answer, a GET stream, a stream resumed with Last-Event-ID). Backend calls are undici
 * `dispatch()`es with a lean handler (proxy/upstream-exchange.ts).
 */
export class HttpPassthrough implements Upstream {
  private readonly agent = new Agent({
    // No cap: every open SSE stream holds a connection, and a cap would let a client that
    // opens many streams starve the namespace's unary calls.
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connectTimeout: 5_000,
  });
  /** Parsed once per backend URL: undici dispatches by origin and path. */
  private readonly targets = new Map<string, { origin: string; path: string }>();
  /** Open GET and `subscriptions/listen` streams, ended (cleanly) when the edge shuts down. */
  private readonly streams = new Set<UpstreamExchange>();

  constructor(
    private readonly sessions: SessionCodec,
    private readonly closedSessions: ClosedSessions,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {}

  async deliver(admitted: Admitted): Promise<void> {
    const outbound = this.inbound(admitted);
    if (!outbound) return;
    const res = admitted.request.res;
    const exchange = new UpstreamExchange(MAX_JSON_BYTES);
    const onClientClose = () => {
      if (!res.writableFinished) exchange.abort();
    };
    res.on('close', onClientClose);
    const stream =
      admitted.request.raw.method === 'GET' ||
      admitted.parsed?.messages[0]?.method === 'subscriptions/listen';
    if (stream) this.streams.add(exchange);
    try {
      await this.exchangeWith(admitted, outbound, exchange);
    } finally {
      res.removeListener('close', onClientClose);
      if (stream) this.streams.delete(exchange);
    }
  }

  /**
   * The body through the tap. Where the filter decides, the backend gets exactly the objects
   * that were checked, re-serialised: no duplicate key or escape can make it read another name.
   * Returns undefined when the gateway answered everything itself.
   */
  private inbound(admitted: Admitted): Outbound | undefined {
    const { parsed, gate, exchange, request } = admitted;
    if (!parsed) return { body: request.body, localAnswers: [] };
    const share = Math.round(request.body!.length / parsed.messages.length);
    const localAnswers: Record<string, unknown>[] = [];
    const forward: Record<string, unknown>[] = [];
    for (const message of parsed.messages) {
      const verdict = MessageTap.inbound(message, share, gate, exchange);
      if (verdict.deliver) forward.push(message.value);
      else if (verdict.answer) localAnswers.push(verdict.answer);
    }
    if (forward.length === 0) {
      answerLocally(request.res, localAnswers, parsed.batch);
      return undefined;
    }
    let checked = forward.length < parsed.messages.length || gate.decidesCalls;
    let trace: TraceContext | undefined;
    if (exchange.tracing) {
      const traced = traceToBackend(admitted, checked);
      trace = traced.header;
      checked ||= traced.rewritten;
    }
    if (!checked) return { body: request.body, localAnswers, trace };
    const body = Buffer.from(JSON.stringify(parsed.batch ? forward : forward[0]));
    return { body, localAnswers, trace };
  }

  private async exchangeWith(
    admitted: Admitted,
    outbound: Outbound,
    exchange: UpstreamExchange,
  ): Promise<void> {
    const { request, namespace, claims } = admitted;
    const upstream = namespace.upstream as { url: string; headers: Record<string, string> };
    const target = this.targetOf(upstream.url);
    admitted.exchange.upstreamStarted = performance.now();
    const headers = upstreamRequestHeaders(
      request.raw.headers,
      upstream.headers,
      claims?.b,
      request.requestId,
      outbound.body !== undefined,
    );
    if (outbound.trace) withTraceHeaders(headers, outbound.trace);
    this.agent.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: request.raw.method as 'GET' | 'POST' | 'DELETE',
        headers,
        body: outbound.body,
        headersTimeout: namespace.timeout_ms,
        bodyTimeout: 0, // idle time between SSE events is governed by our own, progress-aware timer
      },
      exchange,
    );
    if (!(await this.answered(admitted, exchange))) return;
    await this.relay(admitted, outbound, exchange);
  }

  /** Waits for the backend's answer; false when the client left first. */
  private async answered(admitted: Admitted, exchange: UpstreamExchange): Promise<boolean> {
    const namespace = admitted.request.namespace;
    try {
      await exchange.ready;
      return true;
    } catch (error) {
      if (exchange.aborted) {
        admitted.exchange.finish('client_closed', null);
        return false;
      }
      if (error instanceof AnswerTooLargeError) {
        this.metrics.upstreamErrors.inc({ namespace, kind: 'malformed' });
        throw new GatewayError(ErrorCode.UpstreamError, 'Backend answer too large');
      }
      const timeout = error instanceof undiciErrors.HeadersTimeoutError;
      this.metrics.upstreamErrors.inc({ namespace, kind: timeout ? 'timeout' : 'connect' });
      this.logger.warn(
        { request_id: admitted.request.requestId, namespace, err: (error as Error).message },
        'backend request failed',
      );
      throw timeout
        ? new GatewayError(ErrorCode.UpstreamTimeout, 'Backend timed out')
        : new GatewayError(ErrorCode.UpstreamError, 'Backend unreachable');
    }
  }

  /** The backend's answer to the client: SSE event by event, JSON through the tap, the rest as is. */
  private async relay(
    admitted: Admitted,
    outbound: Outbound,
    exchange: UpstreamExchange,
  ): Promise<void> {
    const { request } = admitted;
    const status = exchange.status;
    if (status >= 500) {
      this.metrics.upstreamErrors.inc({ namespace: request.namespace, kind: 'status' });
      throw new GatewayError(ErrorCode.UpstreamError, `Backend answered HTTP ${status}`);
    }
    if (status === 401 || status === 403) {
      // The backend refused the gateway's own credentials (`upstream.headers`): nothing the
      // client can fix, and its WWW-Authenticate would send the client into a useless OAuth flow.
      this.metrics.upstreamErrors.inc({ namespace: request.namespace, kind: 'status' });
      this.logger.warn(
        { request_id: request.requestId, namespace: request.namespace, status },
        'backend refused the gateway: check upstream.headers',
      );
      throw new GatewayError(
        ErrorCode.UpstreamError,
        `Backend refused the gateway (HTTP ${status})`,
      );
    }
    const headers = clientResponseHeaders(exchange.headers);
    const backendSession = exchange.headers['mcp-session-id'];
    if (typeof backendSession === 'string' && backendSession) {
      headers['mcp-session-id'] = this.gatewaySessionId(admitted, backendSession);
    }
    if (exchange.stream) {
      await relaySse(
        admitted,
        exchange,
        status,
        headers,
        outbound.localAnswers,
        this.metrics,
        this.logger,
      );
      return;
    }
    const json = headers['content-type'] === 'application/json';
    if (json && status < 300) {
      this.relayJson(admitted, exchange.body, status, headers, outbound.localAnswers);
      return;
    }
    if (status < 300 && exchange.body.length > 0 && !json) {
      // Requests are answered in JSON or SSE; anything else would reach the client unread by
      // the tap (a client may still parse it).
      if (admitted.exchange.hasPending) {
        this.metrics.upstreamErrors.inc({ namespace: request.namespace, kind: 'malformed' });
        throw new GatewayError(
          ErrorCode.UpstreamError,
          'Backend answered with an unsupported media type',
        );
      }
      exchange.body = Buffer.alloc(0);
      delete headers['content-type'];
    }
    this.relayOther(admitted, exchange, status, headers, outbound.localAnswers);
  }

  /**
   * 202 for notifications, 4xx protocol errors, 405 for GET/DELETE: relayed with their status. A
   * JSON-RPC body among them crosses the tap like any other answer (a hostile backend could put
   * a tool list in a 400); a body that is not JSON-RPC is relayed as it is.
   */
  private relayOther(
    admitted: Admitted,
    exchange: UpstreamExchange,
    status: number,
    headers: Record<string, string>,
    localAnswers: Record<string, unknown>[],
  ): void {
    const { request } = admitted;
    if (status === 202 && localAnswers.length > 0) {
      // The forwarded part needed no answer; the gateway's own answers still do.
      answerLocally(request.res, localAnswers, true, headers);
      admitted.exchange.finish('ok', 200);
      return;
    }
    if (request.raw.method === 'DELETE' && status < 300 && admitted.claims) {
      this.closedSessions.close(admitted.claims);
    }
    if (status === 404 && admitted.claims) {
      // The backend no longer knows the session: answer as for any unknown session.
      throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session');
    }
    let body = exchange.body;
    if (headers['content-type'] === 'application/json' && body.length > 0) {
      body = tappedErrorBody(body, status, admitted);
      headers['content-length'] = String(body.length);
    }
    request.res.writeHead(status, headers);
    request.res.end(body);
    admitted.exchange.finish(status < 400 ? 'ok' : 'rpc_error', status);
  }

  private relayJson(
    admitted: Admitted,
    answer: Buffer,
    status: number,
    headers: Record<string, string>,
    localAnswers: Record<string, unknown>[],
  ): void {
    const { messages, batch } = parseBackendJson(answer, admitted.request.namespace, this.metrics);
    const share = Math.round(answer.length / messages.length);
    let changed = false;
    for (const message of messages) {
      changed =
        MessageTap.outbound(message, share, status, admitted.gate, admitted.exchange) || changed;
    }
    let body = answer;
    if (localAnswers.length > 0) {
      body = Buffer.from(JSON.stringify([...messages, ...localAnswers]));
    } else if (changed) {
      body = Buffer.from(JSON.stringify(batch ? messages : messages[0]));
    }
    headers['content-length'] = String(body.length);
    admitted.request.res.writeHead(status, headers);
    admitted.request.res.end(body);
    admitted.exchange.finish('upstream_error', status, 'no_response');
  }

  /** The client sees the gateway's session id, bound to its key and namespace, never the backend's. */
  private gatewaySessionId(admitted: Admitted, backendSessionId: string): string {
    const who = admitted.exchange.identity;
    return this.sessions.encode({
      k: principalRef(admitted.principal),
      n: admitted.request.namespace,
      t: 'h',
      b: backendSessionId,
      cn: who.client_name ?? undefined,
      cv: who.client_version ?? undefined,
      pv: who.protocol_version ?? undefined,
      // The session keeps its expiry, so the same session keeps the same id.
      x: admitted.claims?.x,
    });
  }

  private targetOf(url: string): { origin: string; path: string } {
    let target = this.targets.get(url);
    if (!target) {
      target = dispatchTarget(url);
      this.targets.set(url, target);
    }
    return target;
  }

  /** Ends every open stream: the client sees a clean end and reconnects elsewhere. */
  endStreams(): void {
    for (const exchange of this.streams) exchange.abort();
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** The gateway's own answers as the whole response (a body of only hidden calls or notifications). */
function answerLocally(
  res: ServerResponse,
  answers: Record<string, unknown>[],
  batch: boolean,
  headers: Record<string, string> = {},
): void {
  if (answers.length === 0) {
    res.writeHead(202, headers).end();
    return;
  }
  const body = JSON.stringify(batch ? answers : answers[0]);
  res
    .writeHead(200, {
      ...headers,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    })
    .end(body);
}

/**
 * Each delivered request's backend call starts (its client span), and the trace context goes
 * with it: the first request's in the `traceparent` header (a body is one request but in a
 * batch), and each request's in its `params._meta` when the body is re-serialised anyway, or
 * when the client put its own context there (else the backend would take the client's span, not
 * the gateway's, for its parent). Bytes are never re-serialised for the header alone.
 */
function traceToBackend(
  admitted: Admitted,
  reserialised: boolean,
): { header: TraceContext | undefined; rewritten: boolean } {
  const { exchange, namespace } = admitted;
  let header: TraceContext | undefined;
  let rewritten = false;
  for (const message of admitted.parsed!.messages) {
    if (message.kind !== 'request') continue;
    const context = exchange.backendTrace(message, namespace.upstream);
    if (!context) continue;
    header ??= context;
    if (reserialised || hasTraceMeta(message.value))
      rewritten = writeTraceMeta(message.value, context) || rewritten;
  }
  return { header, rewritten };
}

/** The gateway's span replaces whatever trace context the client sent. */
function withTraceHeaders(headers: Record<string, string>, trace: TraceContext): void {
  if (trace.traceparent) headers.traceparent = trace.traceparent;
  if (trace.tracestate) headers.tracestate = trace.tracestate;
  else delete headers.tracestate;
}

/** A non-2xx JSON body: its JSON-RPC messages through the tap; anything else as it is. */
function tappedErrorBody(body: Buffer, status: number, admitted: Admitted): Buffer {
  let parsed: unknown;
  try {
    const text = body.toString('utf8');
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return body;
  }
  const messages: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
  if (messages.length === 0 || !messages.every(isJsonRpc)) return body;
  const share = Math.round(body.length / messages.length);
  let changed = false;
  for (const message of messages) {
    changed =
      MessageTap.outbound(message, share, status, admitted.gate, admitted.exchange) || changed;
  }
  return changed ? Buffer.from(JSON.stringify(parsed)) : body;
}

function parseBackendJson(
  answer: Buffer,
  namespace: string,
  metrics: EdgeMetrics,
): { messages: Record<string, unknown>[]; batch: boolean } {
  let parsed: unknown;
  try {
    // A byte-order mark is dropped as fetch's json() drops it, so the gateway reads what clients read.
    const text = answer.toString('utf8');
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    metrics.upstreamErrors.inc({ namespace, kind: 'malformed' });
    throw new GatewayError(ErrorCode.UpstreamError, 'Backend answered malformed JSON');
  }
  const messages: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
  for (const message of messages) {
    if (!isJsonRpc(message)) {
      metrics.upstreamErrors.inc({ namespace, kind: 'malformed' });
      throw new GatewayError(
        ErrorCode.UpstreamError,
        'Backend answered something that is not JSON-RPC',
      );
    }
  }
  return { messages: messages as Record<string, unknown>[], batch: Array.isArray(parsed) };
}
