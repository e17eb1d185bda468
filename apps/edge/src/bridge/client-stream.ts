import type { ServerResponse } from 'node:http';

const HEARTBEAT_MS = 20_000;
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
  onclose?: () => void;

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string>,
    preamble = '',
  ) {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    if (preamble) res.write(preamble);
    else res.flushHeaders();
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
    res.once('close', () => {
      clearInterval(this.heartbeat);
      this.onclose?.();
    });
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(message: unknown): void {
    this.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
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
    clearInterval(this.heartbeat);
    if (this.open) this.res.end();
  }
}
