import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { EVENT, FaultyBackend, FLOOD_EVENTS } from '../support/faulty-backend.js';
import { type Gateway, startGateway } from '../support/gateway.js';
import { eventually, freePort } from '../support/processes.js';

const key = `key-${randomUUID()}`;
function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0);
}

const call = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'x', arguments: {} },
});
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
  garbage: { upstream: { url: "${backend.url}/garbage-sse" } }
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
      const req = httpRequest(
        `${gateway.edges[0]}/mcp/flood`,
        { method: 'POST', headers },
        resolve,
      );
      req.once('error', reject);
      req.end(call);
    });
    expect(response.headers['content-type']).toContain('text/event-stream');
    response.pause();
    // Let the pipes fill: the backend must stall far below the 100 MiB it wants to send.
    await eventually(
      async () => {
        const before = backend.written;
        await new Promise((r) => setTimeout(r, 500));
        return backend.written === before && backend.written > 0;
      },
      15_000,
      'the backend writes to stall',
    );
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
    const response = await fetch(`${gateway.edges[0]}/mcp/die`, {
      method: 'POST',
      headers,
      body: call,
    });
    const text = await response.text();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(text).toContain('notifications/progress');
    const errorEvent = text.split('\n\n').find((event) => event.includes('"error"'));
    expect(JSON.parse(errorEvent!.split('data: ')[1])).toMatchObject({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32052 },
    });
    expect((await fetch(`${gateway.edges[0]}/healthz`)).status).toBe(200);
  });

  it('closes the stream when the backend sends SSE that is not JSON-RPC, answering the pending request', async () => {
    const started = Date.now();
    const response = await fetch(`${gateway.edges[0]}/mcp/garbage`, {
      method: 'POST',
      headers,
      body: call,
    });
    const text = await response.text();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(text).not.toContain('this is not json');
    expect(text).toContain('"error"');
  });

  it.each([
    ['malformed JSON from the backend', 'malformed'],
    ['a 500 from the backend', 'error500'],
    ['a backend that refuses connections', 'down'],
  ])('answers 502 upstream_error with the request id to %s', async (_name, ns) => {
    const response = await fetch(`${gateway.edges[0]}/mcp/${ns}`, {
      method: 'POST',
      headers,
      body: call,
    });
    expect(response.status).toBe(502);
    const body = (await response.json()) as { id: number; error: { data: { code: string } } };
    expect(body.id).toBe(1);
    expect(body.error.data.code).toBe('upstream_error');
    expect((await fetch(`${gateway.edges[0]}/healthz`)).status).toBe(200);
  });
});
