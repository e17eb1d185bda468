import { connect, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, Pool, request } from 'undici';
import { ConfigStore, parseConfig } from '#common';
import { IdleConnections, MAX_IDLE_PER_ADDRESS } from '../src/http/idle-connections.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { eventually } from '../../../test/support/eventually.js';

// Slow headers are cut at request_timeout; and one client's idle sockets must not hurt others
// (SPEC §9 v2): per client address at most MAX_IDLE_PER_ADDRESS connections sit idle for long;
// beyond that the longest-idle ones close, never a connection serving a request, never the pool
// of a busy client, never another address's.

const backends = new HostileBackends();
const opened: Socket[] = [];

beforeAll(() => backends.start());

afterAll(async () => {
  for (const socket of opened) socket.destroy();
  await backends.stop();
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
  // The guard on a plain HTTP server of its own, with a short minimum idle time: the same class
  // the edge attaches to its server (EdgeServer), at the edge's bound.
  let server: Server;
  let guarded: number;
  const MIN_IDLE = 300;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hang') return; // never answered: a connection serving a request
      res.end('ok');
    });
    new IdleConnections(
      new ConfigStore(parseConfig('{}', {})),
      MAX_IDLE_PER_ADDRESS,
      MIN_IDLE,
    ).attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    guarded = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const open = (from: string) =>
    new Promise<{ socket: Socket; closed: () => boolean }>((resolve, reject) => {
      let closed = false;
      const socket = connect({ host: '127.0.0.1', port: guarded, localAddress: from }, () =>
        resolve({ socket, closed: () => closed }),
      );
      socket.on('close', () => (closed = true));
      socket.on('error', () => undefined);
      socket.once('error', reject);
      opened.push(socket);
    });

  it('closes the longest-idle ones beyond the bound once idle long enough; the address is still served', async () => {
    const from = '127.0.0.51';
    const sockets: Array<{ closed: () => boolean }> = [];
    for (let i = 0; i < MAX_IDLE_PER_ADDRESS + 30; i++) sockets.push(await open(from));
    await eventually(
      () => (sockets.filter((s) => s.closed()).length === 30 ? true : undefined),
      5_000,
      '30 idle connections closed',
    );
    expect(sockets.slice(0, 30).every((s) => s.closed())).toBe(true);
    expect(sockets.slice(30).some((s) => s.closed())).toBe(false);
    const agent = new Agent({ connect: { localAddress: from } });
    const res = await request(`http://127.0.0.1:${guarded}/`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    await agent.close();
  });

  it("never closes a busy client's pool, a connection serving a request, nor another address's", async () => {
    // A client with far more keep-alive connections than the bound, all busy in turn.
    const pool = new Pool(`http://127.0.0.1:${guarded}`, {
      connections: MAX_IDLE_PER_ADDRESS * 2,
      connect: { localAddress: '127.0.0.55' },
    });
    let failures = 0;
    const until = Date.now() + MIN_IDLE * 4;
    await Promise.all(
      Array.from({ length: MAX_IDLE_PER_ADDRESS * 2 }, async () => {
        while (Date.now() < until) {
          try {
            const res = await pool.request({ path: '/', method: 'POST', body: 'x' });
            await res.body.text();
          } catch {
            failures++;
          }
        }
      }),
    );
    await pool.close();
    expect(failures).toBe(0);

    const busy = await open('127.0.0.52');
    busy.socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
    const neighbour = await open('127.0.0.53');
    const flood: Array<{ closed: () => boolean }> = [];
    for (let i = 0; i < MAX_IDLE_PER_ADDRESS * 2; i++) flood.push(await open('127.0.0.52'));
    await eventually(
      () => (flood.filter((s) => s.closed()).length >= MAX_IDLE_PER_ADDRESS ? true : undefined),
      5_000,
      'the flood trimmed',
    );
    expect(busy.closed()).toBe(false);
    expect(neighbour.closed()).toBe(false);
  });
});
