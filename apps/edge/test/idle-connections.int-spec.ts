import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { MAX_IDLE_PER_ADDRESS } from '../src/http/idle-connections.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { eventually } from '../../../test/support/eventually.js';

// One client's idle sockets must not hurt others (SPEC §9 v2): per client address at most
// MAX_IDLE_PER_ADDRESS connections sit idle; more close the address's oldest idle ones, never a
// connection serving a request, never another address's.

const key = `key-${randomUUID()}`;
const backends = new HostileBackends();
let gateway: InProcessGateway;
let port: number;
const opened: Socket[] = [];

beforeAll(async () => {
  await backends.start();
  gateway = await startInProcessGateway(`
namespaces:
  open: { upstream: { url: "${backends.url}/json" }, timeout_ms: 60000 }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
  port = gateway.edges[0].port;
}, 30_000);

afterAll(async () => {
  for (const socket of opened) socket.destroy();
  await gateway?.stop();
  await backends.stop();
});

/** A connection from `from` that sends nothing; resolves once connected. */
function idleSocket(from: string): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = connect({ host: '127.0.0.1', port, localAddress: from }, () =>
      resolve({ socket, closed: () => closed }),
    );
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    socket.once('error', reject);
    opened.push(socket);
  });
}

/** One whole request on a socket of its own from `from`; keeps it open when `hang`. */
function rawRequest(from: string, body: string): { socket: Socket; answer: Promise<string> } {
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  opened.push(socket);
  socket.on('error', () => undefined);
  socket.write(
    `POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
      `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
  });
  return { socket, answer };
}

const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
const never = JSON.stringify({
  jsonrpc: '2.0',
  id: 2,
  method: 'tools/call',
  params: { name: 'slow', arguments: {} },
});

describe('slow headers', () => {
  let strict: InProcessGateway;
  beforeAll(async () => {
    strict = await startInProcessGateway(`
server: { request_timeout: 1s }
namespaces:
  open: { upstream: { url: "${backends.url}/json" } }
`);
  });
  afterAll(() => strict?.stop());

  it('headers not complete within server.request_timeout: 408, then the connection is closed', async () => {
    const socket = connect({ host: '127.0.0.1', port: strict.edges[0].port });
    opened.push(socket);
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const trickle = setInterval(() => socket.write('X-Slow: 1\r\n'), 200);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    expect(text).toMatch(/^HTTP\/1.1 408/);
  }, 10_000);
});

describe('idle connections per client address', () => {
  it('closes the oldest idle ones beyond the bound; the address still gets served', async () => {
    const from = '127.0.0.51';
    const sockets: Array<{ closed: () => boolean }> = [];
    for (let i = 0; i < MAX_IDLE_PER_ADDRESS + 30; i++) sockets.push(await idleSocket(from));
    await eventually(
      () => (sockets.filter((s) => s.closed()).length === 30 ? true : undefined),
      5_000,
      '30 idle connections closed',
    );
    // The oldest went first.
    expect(sockets.slice(0, 30).every((s) => s.closed())).toBe(true);
    expect(sockets.slice(30).some((s) => s.closed())).toBe(false);
    expect(await rawRequest(from, ping).answer).toMatch(/^HTTP\/1.1 200/);
  });

  it('never closes a connection serving a request, nor another address’s idle ones', async () => {
    const busy = rawRequest('127.0.0.52', never);
    let busyClosed = false;
    busy.socket.on('close', () => (busyClosed = true));
    const neighbour = await idleSocket('127.0.0.53');
    const flood: Array<{ closed: () => boolean }> = [];
    for (let i = 0; i < MAX_IDLE_PER_ADDRESS * 2; i++) flood.push(await idleSocket('127.0.0.52'));
    await eventually(
      () => (flood.filter((s) => s.closed()).length >= MAX_IDLE_PER_ADDRESS ? true : undefined),
      5_000,
      'the flood trimmed',
    );
    expect(busyClosed).toBe(false);
    expect(neighbour.closed()).toBe(false);
  });
});
