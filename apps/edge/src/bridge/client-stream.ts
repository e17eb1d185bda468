import type { ServerResponse } from 'node:http';

const HEARTBEAT_MS = 20_000;
/**
 * A POST's answer stream sends its headers with its first event (one write instead of three),
 * or after this long when no event came yet, so a client waiting on a long call still sees it.
 */
const LAZY_HEADERS_MS = 500;
/** A client that stops reading loses its stream rather than growing the edge's memory. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * An SSE stream from a bridged session to its client: the answer stream of one POST, the GET
 * stream of a Streamable HTTP session, or the one stream of a legacy HTTP+SSE client (whose
 * first event is `endpoint`). Every message is a `message` event; comments keep idle connections
 * alive through proxies; a client too far behind is cut off.
 */
export class ClientStream {
  private readonly heartbeat: NodeJS.Timeout;
  private flush?: NodeJS.Timeout;
  onclose?: () => void;

  /**
   * @param lazy a POST's answer stream: its headers leave with its first event (or after
   *   LAZY_HEADERS_MS); a GET or legacy stream shows its headers at once.
   */
  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string>,
    preamble = '',
    lazy = false,
  ) {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    if (preamble) res.write(preamble);
    else if (!lazy) res.flushHeaders();
    else {
      this.flush = setTimeout(() => {
        if (this.open) res.flushHeaders();
      }, LAZY_HEADERS_MS);
      this.flush.unref();
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

  /** The stream's last message, and its end, in one write. */
  sendLast(message: unknown): void {
    this.stopTimers();
    if (this.open) this.res.end(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
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
    this.res.write(text);
  }

  end(): void {
    this.stopTimers();
    if (this.open) this.res.end();
  }
}
