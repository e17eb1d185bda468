import type { ServerResponse } from 'node:http';

const HEARTBEAT_MS = 20_000;
/**
 * A POST's answer stream sends its headers with its first event (one write instead of three),
 * or after this long when no event came yet, so a client waiting on a long call still sees it.
 */
const LAZY_HEADERS_MS = 500;
/** A client that stops reading loses its stream rather than growing the edge's memory. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** Whether a client's Accept takes a JSON body (a lone answer is then sent as one). */
export function acceptsJson(accept: string | undefined): boolean {
  return accept !== undefined && /application\/json|application\/\*|\*\/\*/i.test(accept);
}

/**
 * An SSE stream from a bridged session to its client: the answer stream of one POST, the GET
 * stream of a Streamable HTTP session, or the one stream of a legacy HTTP+SSE client (whose
 * first event is `endpoint`). Every message is a `message` event; comments keep idle connections
 * alive through proxies; a client too far behind is cut off.
 *
 * A POST's answer stream whose only message is its answer, arriving before the stream had to
 * show its headers, is sent as one `application/json` body instead, when the client accepts it
 * (Streamable HTTP lets the server pick either for every POST): no SSE for the client to parse.
 */
export class ClientStream {
  private readonly heartbeat: NodeJS.Timeout;
  private flush?: NodeJS.Timeout;
  /** Lazy headers not yet written (a POST's answer stream before its first event). */
  private deferred?: Record<string, string>;
  onclose?: () => void;

  /**
   * @param lazy a POST's answer stream: its headers leave with its first event (or after
   *   LAZY_HEADERS_MS); a GET or legacy stream shows its headers at once.
   * @param json with `lazy`: the client accepts `application/json`, so a lone answer may be sent
   *   as JSON.
   */
  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string>,
    preamble = '',
    lazy = false,
    readonly json = false,
  ) {
    if (lazy && !preamble) {
      this.deferred = headers;
      this.flush = setTimeout(() => {
        if (this.open) this.showHeaders().flushHeaders();
      }, LAZY_HEADERS_MS);
      this.flush.unref();
    } else {
      res.writeHead(200, { ...headers, ...SSE_HEADERS });
      if (preamble) res.write(preamble);
      else res.flushHeaders();
    }
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
    res.once('close', () => {
      this.stopTimers();
      this.onclose?.();
    });
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(message: unknown): void {
    this.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  /**
   * The stream's last message, and its end, in one write. `status`: the HTTP status when it
   * goes as one JSON body (a stream that already started is 200).
   */
  sendLast(message: unknown, status = 200): void {
    this.stopTimers();
    if (!this.open) return;
    if (this.deferred && this.json) {
      const body = JSON.stringify(message);
      this.res
        .writeHead(status, {
          ...this.deferred,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        })
        .end(body);
      this.deferred = undefined;
      return;
    }
    this.showHeaders().end(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  /** Writes the lazy headers if they are still waiting. */
  private showHeaders(): ServerResponse {
    if (this.deferred) {
      this.res.writeHead(200, { ...this.deferred, ...SSE_HEADERS });
      this.deferred = undefined;
    }
    return this.res;
  }

  private stopTimers(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.flush);
  }

  private write(text: string): void {
    if (!this.open) return;
    if (this.res.writableLength > MAX_BUFFERED_BYTES) {
      this.res.destroy(new Error('client too slow'));
      return;
    }
    this.showHeaders().write(text);
  }

  end(): void {
    this.stopTimers();
    if (this.open) this.showHeaders().end();
  }
}
