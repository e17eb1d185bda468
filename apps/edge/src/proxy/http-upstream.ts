import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Agent, errors as undiciErrors, request } from 'undici';
import { ERROR_MAP, ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { formatSseEvent, SseFramingError, SseParser } from './sse-parser.js';
import { clientResponseHeaders } from './upstream-headers.js';

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
  /** Headers to add to the client response (request id, rate limits). */
  responseHeaders: Record<string, string>;
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

  constructor(
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {}

  /** Open GET streams, ended (cleanly) when the edge shuts down. */
  private readonly streams = new Set<AbortController>();

  /** Ends every open GET stream: the client sees a clean end and reconnects elsewhere. */
  endStreams(): void {
    for (const abort of this.streams) abort.abort();
  }

  async forward(call: UpstreamCall, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    if (call.method === 'GET') this.streams.add(abort);
    try {
      await this.forwardWith(call, res, abort);
    } finally {
      this.streams.delete(abort);
    }
  }

  private async forwardWith(
    call: UpstreamCall,
    res: ServerResponse,
    abort: AbortController,
  ): Promise<void> {
    const onClientClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClientClose);
    call.recorder.upstreamStarted = performance.now();
    let upstream: Awaited<ReturnType<typeof request>>;
    try {
      upstream = await request(call.url, {
        method: call.method,
        headers: call.headers,
        body: call.body,
        dispatcher: this.agent,
        signal: abort.signal,
        headersTimeout: call.timeoutMs,
        bodyTimeout: 0, // idle time between SSE events is governed by our own, progress-aware timer
      });
    } catch (error) {
      res.off('close', onClientClose);
      if (abort.signal.aborted) {
        call.recorder.finish('client_closed', null);
        return;
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

    const status = upstream.statusCode;
    const contentType = String(upstream.headers['content-type'] ?? '');
    const headers = { ...call.responseHeaders, ...clientResponseHeaders(upstream.headers) };
    const backendSession = upstream.headers['mcp-session-id'];
    if (typeof backendSession === 'string' && backendSession) {
      headers['mcp-session-id'] = call.rewriteSessionId(backendSession);
    }

    try {
      if (status >= 500) {
        await upstream.body.dump();
        this.metrics.upstreamErrors.inc({ namespace: call.namespace, kind: 'status' });
        throw new GatewayError(ErrorCode.UpstreamError, `Backend answered HTTP ${status}`);
      }
      if (contentType.startsWith('text/event-stream')) {
        await this.relaySse(call, upstream, status, headers, res, abort);
      } else if (contentType.startsWith('application/json') && status < 300) {
        await this.relayJson(call, upstream, status, headers, res);
      } else {
        // 202 for notifications, 4xx protocol errors, 405 for GET/DELETE: relayed as they are.
        const body = Buffer.from(await upstream.body.arrayBuffer());
        if (status === 202 && call.localAnswers?.length) {
          // The forwarded part needed no answer; the gateway's own answers still do.
          const answers = Buffer.from(JSON.stringify(call.localAnswers));
          res.writeHead(200, {
            ...headers,
            'content-type': 'application/json',
            'content-length': String(answers.length),
          });
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
        res.end(body);
        call.recorder.finish(status < 400 ? 'ok' : 'rpc_error', status);
      }
    } finally {
      res.off('close', onClientClose);
    }
  }

  private async relayJson(
    call: UpstreamCall,
    upstream: Awaited<ReturnType<typeof request>>,
    status: number,
    headers: Record<string, string>,
    res: ServerResponse,
  ): Promise<void> {
    const length = Number(upstream.headers['content-length'] ?? 0);
    if (length > MAX_JSON_BYTES) {
      await upstream.body.dump();
      throw new GatewayError(ErrorCode.UpstreamError, 'Backend answer too large');
    }
    let body = Buffer.from(await upstream.body.arrayBuffer());
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

  private async relaySse(
    call: UpstreamCall,
    upstream: Awaited<ReturnType<typeof request>>,
    status: number,
    headers: Record<string, string>,
    res: ServerResponse,
    abort: AbortController,
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
      abort.abort();
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
      for await (const chunk of upstream.body) {
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
      if (error instanceof ClientGone || (abort.signal.aborted && !timedOut))
        outcome = 'client_closed';
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
