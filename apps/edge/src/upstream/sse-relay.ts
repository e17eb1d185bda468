import type { ServerResponse } from 'node:http';
import { ErrorCode } from '#common';
import type { Logger } from 'pino';
import { rpcErrorFor } from '../errors/error-writer.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { Admitted } from '../pipeline/admission.js';
import { formatSseEvent, SseFramingError, SseParser } from '../proxy/sse-parser.js';
import type { UpstreamExchange } from '../proxy/upstream-exchange.js';
import { isJsonRpc } from '../jsonrpc/messages.js';
import { MessageTap } from '../tap/message-tap.js';

const HEARTBEAT_MS = 20_000;

type StreamOutcome = 'ok' | 'upstream_error' | 'upstream_timeout' | 'client_closed';

/**
 * Relays a backend's SSE answer event by event: each event is written and flushed the moment it
 * is whole, byte for byte (ids, priming events, `retry:`, comments), unless the tap changed its
 * message. While the client's socket is full the backend is not read (bounded memory). The
 * namespace timeout restarts on every event, so a call that reports progress is never cut; a
 * stream with no request waiting (a GET stream) has no timeout, and a comment every 20 s of
 * silence keeps it open through proxies. When the stream fails or times out, every request still
 * waiting on it is answered with a JSON-RPC error event, so the client fails now, not later.
 */
export async function relaySse(
  admitted: Admitted,
  exchange: UpstreamExchange,
  status: number,
  headers: Record<string, string>,
  localAnswers: Record<string, unknown>[],
  metrics: EdgeMetrics,
  logger: Logger,
): Promise<void> {
  const res = admitted.request.res;
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  res.writeHead(status, headers);
  for (const answer of localAnswers)
    res.write(formatSseEvent(JSON.stringify(answer), undefined, 'message'));
  res.flushHeaders();
  metrics.activeStreams.inc();
  const relay = new SseRelay(admitted, exchange, status);
  let outcome: StreamOutcome;
  try {
    outcome = await relay.run();
  } finally {
    relay.stop();
    metrics.activeStreams.dec();
  }
  const namespace = admitted.request.namespace;
  if (outcome === 'upstream_error' || outcome === 'upstream_timeout') {
    const framing = relay.failure instanceof SseFramingError;
    metrics.upstreamErrors.inc({
      namespace,
      kind: outcome === 'upstream_timeout' ? 'timeout' : framing ? 'malformed' : 'stream',
    });
    logger.warn(
      {
        request_id: admitted.request.requestId,
        namespace,
        err: relay.failure instanceof Error ? relay.failure.message : outcome,
      },
      'backend stream failed',
    );
    answerPending(admitted, outcome);
  }
  if (outcome !== 'ok') admitted.exchange.finish(outcome, status, outcome);
  // A resumable stream may end before its responses (2025-11-25 `retry:`); the client resumes
  // with Last-Event-ID on another exchange, so the request counts without an error here.
  else if (relay.resumable) admitted.exchange.finish('ok', status);
  else admitted.exchange.finish('upstream_error', status, 'no_response');
  if (!res.destroyed) res.end();
}

/** Every request of the exchange still waiting gets its error, as the one error writer words it. */
function answerPending(admitted: Admitted, outcome: 'upstream_error' | 'upstream_timeout'): void {
  const res = admitted.request.res;
  const code = outcome === 'upstream_timeout' ? ErrorCode.UpstreamTimeout : ErrorCode.UpstreamError;
  const message = outcome === 'upstream_timeout' ? 'Backend timed out' : 'Backend stream failed';
  for (const id of admitted.exchange.pendingIds()) {
    if (res.destroyed) return;
    const answer = rpcErrorFor(code, id, message, admitted.request.requestId);
    res.write(formatSseEvent(JSON.stringify(answer), undefined, 'message'));
  }
}

class ClientGone extends Error {}

/**
 * Resolves when the client's socket drains or closes, and leaves no listener behind either way
 * (racing two `once()`s would leave the loser registered: a long stream to a slow client would
 * gather one per pause).
 */
export function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.removeListener('drain', done);
      res.removeListener('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** One SSE relay's loop and its timers. */
class SseRelay {
  resumable = false;
  failure: unknown;
  private readonly parser = new SseParser();
  private timedOut = false;
  private lastWrite = Date.now();
  private timer: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly admitted: Admitted,
    private readonly exchange: UpstreamExchange,
    private readonly status: number,
  ) {
    this.timer = setTimeout(this.onIdle, admitted.namespace.timeout_ms);
    // Comments keep an idle stream alive through proxies; written only between events.
    this.heartbeat = setInterval(() => {
      const res = admitted.request.res;
      if (
        Date.now() - this.lastWrite >= HEARTBEAT_MS &&
        this.parser.pending === '' &&
        !res.destroyed
      ) {
        res.write(': keep-alive\n\n');
        this.lastWrite = Date.now();
      }
    }, HEARTBEAT_MS);
  }

  /** Reset by every event; with no request waiting (a GET stream) the stream may idle forever. */
  private readonly onIdle = () => {
    if (!this.admitted.exchange.hasPending) {
      this.timer = setTimeout(this.onIdle, this.admitted.namespace.timeout_ms);
      return;
    }
    this.timedOut = true;
    this.exchange.abort();
  };

  async run(): Promise<StreamOutcome> {
    const res = this.admitted.request.res;
    try {
      for await (const chunk of this.exchange.stream!) {
        for (const event of this.parser.push(chunk as Buffer)) {
          clearTimeout(this.timer);
          this.timer = setTimeout(this.onIdle, this.admitted.namespace.timeout_ms);
          if (event.id) this.resumable = true;
          let raw = event.raw;
          if (event.data) {
            const rewritten = this.tap(event.data);
            if (rewritten !== undefined) raw = formatSseEvent(rewritten, event.id, event.event);
          }
          this.lastWrite = Date.now();
          if (!res.write(raw)) {
            // Slow client: stop reading upstream until the socket drains (bounded memory).
            await drainedOrClosed(res);
            if (res.destroyed) throw new ClientGone();
          }
        }
      }
      return 'ok';
    } catch (error) {
      if (error instanceof ClientGone || (this.exchange.aborted && !this.timedOut))
        return 'client_closed';
      if (this.timedOut) return 'upstream_timeout';
      this.failure = error;
      return 'upstream_error';
    }
  }

  /** An event's message through the tap: replacement data when it changed, else undefined. */
  private tap(data: string): string | undefined {
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      throw new SseFramingError('backend sent an SSE event that is not JSON');
    }
    if (!isJsonRpc(message))
      throw new SseFramingError('backend sent an SSE event that is not a JSON-RPC message');
    const value = message;
    const { admitted } = this;
    const changed = MessageTap.outbound(
      value,
      Buffer.byteLength(data),
      this.status,
      admitted.gate,
      admitted.exchange,
    );
    return changed ? JSON.stringify(value) : undefined;
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
  }
}
