import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

const HEARTBEAT_MS = 20_000;
/** A legacy client that stops reading loses its stream rather than growing the edge's memory. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * The client side of a legacy HTTP+SSE (2024-11-05) session: the `endpoint` event names the
 * gateway's own `/mcp/{ns}/messages?session=…` URL, then every server message is a `message`
 * event. Comments keep idle connections alive through proxies.
 */
export class LegacySseStream {
  private readonly heartbeat: NodeJS.Timeout;
  onclose?: () => void;

  constructor(
    private readonly res: ServerResponse,
    endpoint: string,
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    res.write(`event: endpoint\ndata: ${endpoint}\n\n`);
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

  send(message: JSONRPCMessage): Promise<void> {
    this.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return Promise.resolve();
  }

  private write(text: string): void {
    if (!this.open) return;
    if (this.res.writableLength > MAX_BUFFERED_BYTES) {
      this.res.destroy(new Error('client too slow'));
      return;
    }
    this.res.write(text);
  }

  close(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.open) this.res.end();
    return Promise.resolve();
  }
}
