import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Gateway, startGateway } from '../support/gateway.js';
import { eventually, freePort } from '../support/processes.js';

const key = `key-${randomUUID()}`;
const EVENT = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(64 * 1024) } })}\n\n`;
const FLOOD_EVENTS = 1_600; // ~100 MiB

/** Fakes at the wire: a backend that floods, one that dies mid-stream, one that answers garbage. */
class FaultyBackend {
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
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } })}\n\n`);
        this.floodDone = true;
      };
      pump();
    } else if (req.url === '/die') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`id: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`);
      setTimeout(() => res.socket?.destroy(), 200);
    } else if (req.url === '/malformed') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":');
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

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0);
}

const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: {} } });
const headers = {
  Authorization: `Bearer ${key}`,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

describe('streams under stress and failure (SPEC §9)', () => {
  const backend = new FaultyBackend();
  let gateway: Gateway;

  beforeAll(async () => {
    await backend.start();
    const closedPort = await freePort();
    gateway = await startGateway({
      config: `
namespaces:
  flood: { upstream: { url: "${backend.url}/flood" } }
  die: { upstream: { url: "${backend.url}/die" } }
  malformed: { upstream: { url: "${backend.url}/malformed" } }
  error500: { upstream: { url: "${backend.url}/error500" } }
  down: { upstream: { url: "http://127.0.0.1:${closedPort}/mcp" } }
keys:
  - { id: k, key: "${key}", namespaces: ["*"], rate_limit: { requests: 100000, per: 1m } }
`,
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    await backend.stop();
  });

  it('pauses the backend while a client does not read, bounded in memory, and delivers everything after', async () => {
    const edgePid = gateway.edgeProcs[0].child.pid!;
    const rssBefore = rssKiB(edgePid);
    let received = 0;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${gateway.edges[0]}/mcp/flood`, { method: 'POST', headers }, resolve);
      req.once('error', reject);
      req.end(call);
    });
    expect(response.headers['content-type']).toContain('text/event-stream');
    response.pause();
    // Let the pipes fill: the backend must stall far below the 100 MiB it wants to send.
    await eventually(async () => {
      const before = backend.written;
      await new Promise((r) => setTimeout(r, 500));
      return backend.written === before && backend.written > 0;
    }, 15_000, 'the backend writes to stall');
    expect(backend.floodDone).toBe(false);
    expect(backend.written).toBeLessThan(60 * 1024 * 1024);
    expect(rssKiB(edgePid) - rssBefore).toBeLessThan(64 * 1024);
    response.on('data', (chunk: Buffer) => (received += chunk.length));
    response.resume();
    await new Promise((resolve) => response.once('end', resolve));
    expect(backend.floodDone).toBe(true);
    expect(received).toBeGreaterThanOrEqual(FLOOD_EVENTS * EVENT.length);
  }, 60_000);

  it('closes the client stream promptly when the backend dies mid-stream, answering the pending request', async () => {
    const started = Date.now();
    const response = await fetch(`${gateway.edges[0]}/mcp/die`, { method: 'POST', headers, body: call });
    const text = await response.text();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(text).toContain('notifications/progress');
    const errorEvent = text.split('\n\n').find((event) => event.includes('"error"'));
    expect(JSON.parse(errorEvent!.split('data: ')[1])).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32052 } });
    expect((await fetch(`${gateway.edges[0]}/healthz`)).status).toBe(200);
  });

  it.each([
    ['malformed JSON from the backend', 'malformed'],
    ['a 500 from the backend', 'error500'],
    ['a backend that refuses connections', 'down'],
  ])('answers 502 upstream_error with the request id to %s', async (_name, ns) => {
    const response = await fetch(`${gateway.edges[0]}/mcp/${ns}`, { method: 'POST', headers, body: call });
    expect(response.status).toBe(502);
    const body = (await response.json()) as { id: number; error: { data: { code: string } } };
    expect(body.id).toBe(1);
    expect(body.error.data.code).toBe('upstream_error');
    expect((await fetch(`${gateway.edges[0]}/healthz`)).status).toBe(200);
  });
});
