import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { Agent, errors as undiciErrors } from 'undici';
import { ERROR_MAP, ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { formatSseEvent, SseFramingError, SseParser } from './sse-parser.js';
import { clientResponseHeaders } from './upstream-headers.js';
import { AnswerTooLargeError, UpstreamExchange } from './upstream-exchange.js';

export interface UpstreamCall {
  url: string;
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body?: Buffer;
  /** Answers the gateway gives itself (hidden tools in a batch), merged into the response. */
  localAnswers?: Record<string, unknown>[];
  timeoutMs: number;
  namespace: string;
  recorder: ExchangeRecorder;
  filter: ToolFilter;
  /** Maps the backend's Mcp-Session-Id to the gateway's own. */
  rewriteSessionId: (backendSessionId: string) => string;
  /** Called when the backend confirmed a DELETE of the session. */
  onSessionDeleted?: () => void;
}

const MAX_JSON_BYTES = 32 * 1024 * 1024;
const HEARTBEAT_MS = 20_000;

/**
 * Streamable HTTP to a Streamable HTTP backend: bytes in, bytes out. JSON bodies are parsed only
 * to record events and filter tools/list; SSE is parsed incrementally and each event written
 * and flushed as soon as it is complete, with upstream reading paused while the client is slow.
 */
export class HttpUpstream {
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

  constructor(
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {}

  /** Open GET streams, ended (cleanly) when the edge shuts down. */
  private readonly streams = new Set<UpstreamExchange>();

  /** Ends every open GET stream: the client sees a clean end and reconnects elsewhere. */
  endStreams(): void {
    for (const exchange of this.streams) exchange.abort();
  }

  async forward(call: UpstreamCall, res: ServerResponse): Promise<void> {
    const exchange = new UpstreamExchange(MAX_JSON_BYTES);
    const onClientClose = () => {
      if (!res.writableFinished) exchange.abort();
    };
    res.on('close', onClientClose);
    if (call.method === 'GET') this.streams.add(exchange);
    try {
      await this.forwardWith(call, res, exchange);
    } finally {
      res.removeListener('close', onClientClose);
      this.streams.delete(exchange);
    }
  }

  private async forwardWith(
    call: UpstreamCall,
    res: ServerResponse,
    exchange: UpstreamExchange,
  ): Promise<void> {
    const target = this.targetOf(call.url);
    call.recorder.upstreamStarted = performance.now();
    this.agent.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: call.method,
        headers: call.headers,
        body: call.body,
        headersTimeout: call.timeoutMs,
        bodyTimeout: 0, // idle time between SSE events is governed by our own, progress-aware timer
      },
      exchange,
    );
    try {
      await exchange.ready;
    } catch (error) {
      if (exchange.aborted) {
        call.recorder.finish('client_closed', null);
        return;
      }
      if (error instanceof AnswerTooLargeError) {
        this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'malformed' });
        throw new GatewayError(ErrorCode.UpstreamError, 'Backend answer too large');
      }
      const timeout = error instanceof undiciErrors.HeadersTimeoutError;
      this.metrics.upstreamErrors.inc({
        namespace: call.namespace,
        kind: timeout ? 'timeout' : 'connect',
      });
      throw new GatewayError(
        timeout ? ErrorCode.UpstreamTimeout : ErrorCode.UpstreamError,
        timeout ? 'Backend timed out' : `Backend unreachable: ${(error as Error).message}`,
      );
    }

    const status = exchange.status;
    if (status >= 500) {
      this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'status' });
      throw new GatewayError(ErrorCode.UpstreamError, `Backend answered HTTP ${status}`);
    }
    const headers = clientResponseHeaders(exchange.headers);
    const backendSession = exchange.headers['mcp-session-id'];
    if (typeof backendSession === 'string' && backendSession) {
      headers['mcp-session-id'] = call.rewriteSessionId(backendSession);
    }
    if (exchange.stream) {
      await this.relaySse(call, exchange.stream, status, headers, res, exchange);
      return;
    }
    const contentType = headers['content-type'];
    if (contentType !== undefined && contentType.startsWith('application/json') && status < 300) {
      this.relayJson(call, exchange.body, status, headers, res);
      return;
    }
    // 202 for notifications, 4xx protocol errors, 405 for GET/DELETE: relayed as they are.
    if (status === 202 && call.localAnswers?.length) {
      // The forwarded part needed no answer; the gateway's own answers still do.
      const answers = Buffer.from(JSON.stringify(call.localAnswers));
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(answers.length);
      res.writeHead(200, headers);
      res.end(answers);
      call.recorder.finish('ok', 200);
      return;
    }
    if (call.method === 'DELETE' && status < 300) call.onSessionDeleted?.();
    if (status === 404 && call.headers['mcp-session-id'] !== undefined) {
      // The backend no longer knows the session: answer as for any unknown session.
      throw new GatewayError(ErrorCode.UnknownSession, 'Unknown session');
    }
    res.writeHead(status, headers);
    res.end(exchange.body);
    call.recorder.finish(status < 400 ? 'ok' : 'rpc_error', status);
  }

  private relayJson(
    call: UpstreamCall,
    answer: Buffer,
    status: number,
    headers: Record<string, string>,
    res: ServerResponse,
  ): void {
    let body = answer;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'malformed' });
      throw new GatewayError(ErrorCode.UpstreamError, 'Backend answered malformed JSON');
    }
    const messages: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    let changed = false;
    for (const message of messages) {
      if (!isJsonRpc(message)) {
        this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'malformed' });
        throw new GatewayError(
          ErrorCode.UpstreamError,
          'Backend answered something that is not JSON-RPC',
        );
      }
      changed = this.filterServerMessage(call, message) || changed;
    }
    const share = Math.round(body.length / messages.length);
    if (call.localAnswers?.length) {
      parsed = [...messages, ...call.localAnswers];
      changed = true;
    }
    if (changed) body = Buffer.from(JSON.stringify(parsed));
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    res.end(body);
    // Recorded after the answer is on its way: events never delay a response.
    for (const message of messages)
      call.recorder.serverMessage(message as Record<string, unknown>, share, status);
    call.recorder.finish('upstream_error', status, 'no_response');
  }

  private targetOf(url: string): { origin: string; path: string } {
    let target = this.targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
      this.targets.set(url, target);
    }
    return target;
  }

  private async relaySse(
    call: UpstreamCall,
    stream: Readable,
    status: number,
    headers: Record<string, string>,
    res: ServerResponse,
    exchange: UpstreamExchange,
  ): Promise<void> {
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
    res.writeHead(status, headers);
    for (const answer of call.localAnswers ?? [])
      res.write(formatSseEvent(JSON.stringify(answer), undefined, 'message'));
    res.flushHeaders();
    this.metrics.activeStreams.inc();
    const parser = new SseParser();
    let resumable = false;
    let timedOut = false;
    let lastWrite = Date.now();
    // Reset by every event, so a long call that keeps sending progress is never cut. A stream
    // with no request waiting (a GET stream) has no timeout at all: idle streams stay open.
    const onIdle = () => {
      if (!call.recorder.hasPending) {
        timer = setTimeout(onIdle, call.timeoutMs);
        return;
      }
      timedOut = true;
      exchange.abort();
    };
    let timer = setTimeout(onIdle, call.timeoutMs);
    // Comments keep an idle stream alive through proxies and load balancers; written only
    // between events, never inside one.
    const heartbeat = setInterval(() => {
      if (Date.now() - lastWrite >= HEARTBEAT_MS && parser.pending === '' && !res.destroyed) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
    }, HEARTBEAT_MS);
    let outcome: 'ok' | 'upstream_error' | 'upstream_timeout' | 'client_closed' = 'ok';
    try {
      for await (const chunk of stream) {
        for (const event of parser.push(chunk as Buffer)) {
          clearTimeout(timer);
          timer = setTimeout(onIdle, call.timeoutMs);
          if (event.id) resumable = true;
          let raw = event.raw;
          if (event.data) {
            const rewritten = this.inspectSseData(call, event.data, status);
            if (rewritten !== undefined) raw = formatSseEvent(rewritten, event.id, event.event);
          }
          lastWrite = Date.now();
          if (!res.write(raw)) {
            // Slow client: stop reading upstream until the socket drains (bounded memory).
            await Promise.race([once(res, 'drain'), once(res, 'close')]);
            if (res.destroyed) throw new ClientGone();
          }
        }
      }
    } catch (error) {
      if (error instanceof ClientGone || (exchange.aborted && !timedOut)) outcome = 'client_closed';
      else if (timedOut) outcome = 'upstream_timeout';
      else {
        outcome = 'upstream_error';
        const kind = error instanceof SseFramingError ? 'malformed' : 'stream';
        this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind });
        this.logger.warn(
          {
            request_id: call.recorder.identity.request_id,
            namespace: call.namespace,
            err: String(error),
          },
          'backend stream failed',
        );
      }
    } finally {
      clearTimeout(timer);
      clearInterval(heartbeat);
      this.metrics.activeStreams.dec();
    }
    if (outcome === 'upstream_timeout') {
      this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'timeout' });
    }
    if (outcome === 'upstream_error' || outcome === 'upstream_timeout') {
      // Answer every request left waiting, so the client fails now instead of hanging.
      const message =
        outcome === 'upstream_timeout' ? 'Backend timed out' : 'Backend stream failed';
      const code =
        ERROR_MAP[
          outcome === 'upstream_timeout' ? ErrorCode.UpstreamTimeout : ErrorCode.UpstreamError
        ].rpcCode;
      for (const id of call.recorder.pendingIds()) {
        if (!res.destroyed)
          res.write(
            formatSseEvent(
              JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }),
              undefined,
              'message',
            ),
          );
      }
    }
    if (outcome !== 'ok') call.recorder.finish(outcome, status, outcome);
    // A resumable stream may end before its responses (2025-11-25 `retry:`); the client resumes
    // with Last-Event-ID on another exchange, so the request counts without an error here.
    else
      call.recorder.finish(
        resumable ? 'ok' : 'upstream_error',
        status,
        resumable ? null : 'no_response',
      );
    if (!res.destroyed) res.end();
  }

  /** Returns replacement data when the message had to be filtered, else undefined. */
  private inspectSseData(call: UpstreamCall, data: string, status: number): string | undefined {
    if (data === '') return undefined; // a priming event
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      throw new SseFramingError('backend sent an SSE event that is not JSON');
    }
    if (!isJsonRpc(message))
      throw new SseFramingError('backend sent an SSE event that is not a JSON-RPC message');
    const changed = this.filterServerMessage(call, message);
    call.recorder.serverMessage(message, Buffer.byteLength(data), status);
    return changed ? JSON.stringify(message) : undefined;
  }

  /** Applies the namespace's tool filter to a tools/list result; true when it changed. */
  private filterServerMessage(call: UpstreamCall, message: Record<string, unknown>): boolean {
    if (
      !('result' in message) ||
      call.recorder.methodOf(message.id as string | number) !== 'tools/list'
    )
      return false;
    return call.filter.filterListResult(message.result);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

class ClientGone extends Error {}

function isJsonRpc(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    (value as { jsonrpc?: unknown }).jsonrpc === '2.0'
  );
}
