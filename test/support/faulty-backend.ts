import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export const EVENT = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(64 * 1024) } })}\n\n`;
export const FLOOD_EVENTS = 1_600; // ~100 MiB

/** Fakes at the wire: a backend that floods, one that dies mid-stream, one that answers garbage. */
export class FaultyBackend {
  written = 0;
  floodDone = false;
  private server?: Server;
  url = '';

  handle(req: IncomingMessage, res: ServerResponse): void {
    const id = 1;
    if (req.url === '/flood') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const pump = () => {
        while (sent < FLOOD_EVENTS) {
          sent++;
          this.written += EVENT.length;
          if (!res.write(EVENT)) return void res.once('drain', pump);
        }
        res.end(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } })}\n\n`,
        );
        this.floodDone = true;
      };
      pump();
    } else if (req.url === '/die') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        `id: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`,
      );
      setTimeout(() => res.socket?.destroy(), 200);
    } else if (req.url === '/garbage-sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: this is not json\n\n');
      // keeps the connection open: the gateway must close it, not wait
    } else if (req.url === '/malformed') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"jsonrpc":"2.0","id":1,"result":');
    } else if (req.url === '/error500') {
      res.writeHead(500).end('boom');
    }
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => req.resume().once('end', () => this.handle(req, res)));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
