import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http';
import { connect, Socket } from 'node:net';
import { join } from 'node:path';
import { eventually } from '../../../test/support/eventually.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { sha256Hex } from '#common';
import { credentialOf } from '../src/auth/credential.js';
import { ForwardingMarks } from '../src/sessions/forwarding-mark.js';
import { FORWARDED_HEADER } from '../src/upstream/forwarded.js';
import { drainedOrClosed } from '../src/upstream/sse-relay.js';
import { LegacyRawClient, StreamableRawClient } from '../../../test/support/raw-client.js';

// The delivery paths against wire-level peers: what a bridged HTTP backend is sent, what a
// client may point the edge at, what a dead owner edge means, and a slow reader's cost.

const key = `key-${randomUUID()}`;
const backends = new HostileBackends();
const stdio = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/hostile-stdio.mjs')}"]`;
let gateway: InProcessGateway;
/** A server no request may ever reach: a client tries to point the edge at it. */
let trap: Server;
let trapHits = 0;
let trapUrl = '';

beforeAll(async () => {
  await backends.start();
  trap = createServer((_req, res) => {
    trapHits++;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end('{"jsonrpc":"2.0","id":1,"result":{}}');
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  const address = trap.address();
  trapUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const token = 'Bearer backend-token';
  gateway = await startInProcessGateway(
    `
namespaces:
  legacy: { upstream: { url: "${backends.url}/legacy/sse", transport: sse, headers: { Authorization: "${token}" } } }
  http: { upstream: { url: "${backends.url}/json", headers: { authorization: "${token}" } } }
  flood: { upstream: { url: "${backends.url}/flood" } }
  limited: { upstream: { url: "${backends.url}/json" }, rate_limit: { requests: 1, per: 1h } }
  stdio: { upstream: { ${stdio} } }
keys:
  - { id: up, key: "${key}", namespaces: ["*"] }
`,
    { edges: 2 },
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backends.stop();
  await new Promise((resolve) => trap.close(resolve));
});

/** Sends `head` (and `body`) as raw bytes and returns the status line's code. */
function rawRequest(port: number, head: string, body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${head}\r\n\r\n${body}`));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) {
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
    socket.on('error', reject);
  });
}

describe('what a bridged HTTP backend is sent', () => {
  it.each([
    ['a legacy SSE backend', 'streamable', 'legacy'],
    ['a Streamable HTTP backend behind a legacy SSE client', 'legacy', 'http'],
  ] as const)('sends %s its configured headers once', async (_name, client, ns) => {
    const from = backends.headers.length;
    if (client === 'streamable') {
      const raw = new StreamableRawClient([gateway.edges[0].url], ns, key);
      await raw.initialize();
      await raw.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    } else {
      const raw = new LegacyRawClient(gateway.edges[0].url, ns, key);
      await raw.initialize();
      await raw.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      await raw.answersTo([1]);
      raw.close();
    }
    const seen = backends.headers.slice(from).map((headers) => headers.authorization);
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen)).toEqual(new Set(['Bearer backend-token']));
  });
});

describe('the client side of a bridged session', () => {
  it('refuses a protocol revision it does not speak (400), as an MCP server does', async () => {
    const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    await client.initialize();
    const answer = await client.post(
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-protocol-version': '1999-01-01' },
    );
    expect(answer.status).toBe(400);
    expect(answer.messages[0]).toMatchObject({ id: 1, error: { data: { code: 'bad_request' } } });
  });

  it.each([
    ['a POST that does not accept event streams', 'POST', 'application/json'],
    ['a GET that does not accept event streams', 'GET', 'application/json'],
  ])('refuses %s (406)', async (_name, method, accept) => {
    const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    await client.initialize();
    const response = await fetch(`${gateway.edges[0].url}/mcp/stdio`, {
      method,
      headers: client.headers({ accept }),
      body:
        method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) : undefined,
    });
    expect(response.status).toBe(406);
  });

  it('answers a DELETE by ending the session: its id is then unknown', async () => {
    const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    await client.initialize();
    const deleted = await fetch(`${gateway.edges[0].url}/mcp/stdio`, {
      method: 'DELETE',
      headers: client.headers(),
    });
    expect(deleted.status).toBe(200);
    expect((await client.post({ jsonrpc: '2.0', id: 2, method: 'ping' })).status).toBe(404);
  });
});

describe('request targets', () => {
  it.each(['/mcp/stdio', '/mcp/stdio/sse', '/mcp/stdio/messages?session=x', '/healthz'])(
    'refuses an absolute-form target for %s (400) and reaches no host it names',
    async (path) => {
      const session = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
      await session.initialize();
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
      const status = await rawRequest(
        gateway.edges[1].port,
        [
          `POST ${trapUrl}${path} HTTP/1.1`,
          `Host: ${trapUrl.slice(7)}`,
          `Authorization: Bearer ${key}`,
          `Mcp-Session-Id: ${session.sessionId}`,
          'Content-Type: application/json',
          'Accept: application/json, text/event-stream',
          `Content-Length: ${body.length}`,
        ].join('\r\n'),
        body,
      );
      expect(status).toBe(400);
      expect(trapHits).toBe(0);
    },
  );
});

describe('forwarding marks', () => {
  it('skips the limit for the one request a mark was made for, and never again', async () => {
    const marks = new ForwardingMarks(gateway.sessionSecret);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const send = (mark: string, payload = body) =>
      fetch(`${gateway.edges[0].url}/mcp/limited`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-request-id': 'marked-1',
          [FORWARDED_HEADER]: mark,
        },
        body: payload,
      });
    const mark = marks.make({
      method: 'POST',
      target: '/mcp/limited',
      body: Buffer.from(body),
      principal: JSON.stringify(['up', credentialOf(sha256Hex(key))]),
      requestId: 'marked-1',
    });
    expect((await send(mark)).status).toBe(200); // counted on the edge that forwarded it
    // The same mark again, or on another body: counted here like any request (1 per hour).
    expect((await send(mark)).status).toBe(200);
    expect((await send(mark, body.replace('ping', 'tools/list'))).status).toBe(429);
  });
});

describe('a slow SSE reader', () => {
  it('gets every event of a stream larger than the socket buffers can hold', async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'flood-1',
      method: 'tools/call',
      params: { name: 'echo', arguments: {} },
    });
    const text = await slowRead(
      gateway.edges[0].port,
      [
        'POST /mcp/flood HTTP/1.1',
        'Host: edge',
        `Authorization: Bearer ${key}`,
        'Content-Type: application/json',
        'Accept: application/json, text/event-stream',
        `Content-Length: ${body.length}`,
      ].join('\r\n'),
      body,
    );
    expect(text.match(/notifications\/message/g)).toHaveLength(80);
    expect(text).toContain('"id":"flood-1"');
  });

  it('waits for a drain without leaving a listener behind, however often', async () => {
    const res = new ServerResponse(new IncomingMessage(new Socket()));
    const before = [res.listenerCount('drain'), res.listenerCount('close')];
    for (let i = 0; i < 50; i++) {
      const drained = drainedOrClosed(res);
      res.emit('drain');
      await drained;
    }
    expect([res.listenerCount('drain'), res.listenerCount('close')]).toEqual(before);
  });
});

/** Reads an answer in small bites with pauses, so the edge's writes to it stall many times. */
function slowRead(port: number, head: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${head}\r\n\r\n${body}`));
    socket.setNoDelay(true);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      socket.pause();
      setTimeout(() => socket.resume(), 3);
      if (chunk.includes('"id":"flood-1"')) {
        socket.destroy();
        resolve(Buffer.concat(chunks).toString());
      }
    });
    socket.on('error', reject);
  });
}

describe('an owner edge that is gone', () => {
  it('answers 404 unknown_session on the other edge, and records it', async () => {
    const pair = await startInProcessGateway(
      `
namespaces:
  stdio: { upstream: { ${stdio} } }
keys:
  - { id: owner, key: "${key}", namespaces: ["*"] }
`,
      { edges: 2 },
    );
    try {
      const client = new StreamableRawClient([pair.edges[0].url], 'stdio', key);
      await client.initialize();
      await pair.edges[0].close(1_000);
      const other = new StreamableRawClient([pair.edges[1].url], 'stdio', key);
      other.sessionId = client.sessionId;
      const answer = await other.post(
        { jsonrpc: '2.0', id: 'after', method: 'tools/list' },
        { 'x-request-id': 'after-owner-died' },
      );
      expect(answer.status).toBe(404);
      expect(answer.messages[0]).toMatchObject({ error: { data: { code: 'unknown_session' } } });
      const event = await eventually(
        async () => {
          await pair.flush();
          return pair.events.find((e) => e.request_id === 'after-owner-died');
        },
        5_000,
        'the event of the request',
        20,
      );
      expect(event).toMatchObject({
        outcome: 'bad_request',
        error_code: 'unknown_session',
        http_status: 404,
      });
    } finally {
      await pair.edges[1].close(1_000);
      await pair.stop().catch(() => undefined);
    }
  });
});
