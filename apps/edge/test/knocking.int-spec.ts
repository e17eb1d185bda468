import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';

// Knocking costs the knocker (SPEC §6 and §7 v2): requests without a valid credential are limited
// per client address on a counter of their own (a client's good key keeps working, its failed-key
// allowance is untouched), and they are stored as counts per minute, not one row each.

const key = `key-${randomUUID()}`;
const backend = new HostileBackends();

beforeAll(() => backend.start());
afterAll(() => backend.stop());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A POST from a chosen loopback address (the whole 127/8 is local on Linux). */
function post(
  url: string,
  options: { from?: string; key?: string; body?: string } = {},
): Promise<Answer> {
  const body = options.body ?? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(options.key && { authorization: `Bearer ${options.key}` }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('requests without a credential are limited per client address', () => {
  let gateway: InProcessGateway;
  let edge: string;

  beforeAll(async () => {
    gateway = await startInProcessGateway(`
auth: { max_failures: { count: 5, per: 1m } }
namespaces:
  open: { upstream: { url: "${backend.url}/json" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
    edge = gateway.edges[0].url;
  }, 30_000);
  afterAll(() => gateway?.stop());

  it('answers 401 up to the allowance, then 429 with an honest Retry-After and a message saying what to send', async () => {
    const from = '127.0.0.11';
    for (let i = 0; i < 5; i++) {
      expect((await post(`${edge}/mcp/open`, { from })).status).toBe(401);
    }
    const refused = await post(`${edge}/mcp/open`, { from });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    const { error } = JSON.parse(refused.body) as {
      error: { message: string; data: { code: string } };
    };
    expect(error.data.code).toBe('too_many_auth_failures');
    expect(error.message).toMatch(/without a valid credential.*API key/);
  });

  it("never blocks the same client's good key, nor spends its failed-key allowance", async () => {
    const from = '127.0.0.12';
    for (let i = 0; i < 8; i++) await post(`${edge}/mcp/open`, { from });
    expect((await post(`${edge}/mcp/open`, { from })).status).toBe(429);
    expect((await post(`${edge}/mcp/open`, { from, key })).status).toBe(200);
    // Failed keys have their own five.
    for (let i = 0; i < 5; i++) {
      expect((await post(`${edge}/mcp/open`, { from, key: `wrong-${randomUUID()}` })).status).toBe(
        401,
      );
    }
    expect((await post(`${edge}/mcp/open`, { from, key: `wrong-${randomUUID()}` })).status).toBe(
      429,
    );
  });

  it.each(['key', 'api_key', 'access_token', 'token'])(
    'never reads a key from the query string (?%s=): 401',
    async (name) => {
      const url = `${edge}/mcp/open?${name}=${encodeURIComponent(key)}`;
      expect((await post(url, { from: '127.0.0.15' })).status).toBe(401);
    },
  );

  it('counts each client address on its own', async () => {
    for (let i = 0; i < 6; i++) await post(`${edge}/mcp/open`, { from: '127.0.0.13' });
    expect((await post(`${edge}/mcp/open`, { from: '127.0.0.13' })).status).toBe(429);
    expect((await post(`${edge}/mcp/open`, { from: '127.0.0.14' })).status).toBe(401);
  });
});

describe('rejected requests without a valid credential are stored as counts per minute', () => {
  let gateway: InProcessGateway;
  let edge: string;

  beforeAll(async () => {
    gateway = await startInProcessGateway(`
auth: { max_failures: { count: 1000, per: 1m } }
namespaces:
  open: { upstream: { url: "${backend.url}/json" } }
  legacy: { upstream: { url: "${backend.url}/sse", transport: sse } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
    edge = gateway.edges[0].url;
  }, 30_000);
  afterAll(() => gateway?.stop());

  it('one row per minute, namespace, outcome and network, whose count is the number of requests', async () => {
    const knocks: Array<Promise<Answer>> = [];
    for (let i = 0; i < 40; i++) knocks.push(post(`${edge}/mcp/open`, { from: '127.0.0.21' }));
    for (let i = 0; i < 25; i++) {
      knocks.push(post(`${edge}/mcp/open`, { from: '127.0.0.22', key: `wrong-${randomUUID()}` }));
    }
    // A row says the namespace's backend kind, as its served requests do.
    for (let i = 0; i < 5; i++) knocks.push(post(`${edge}/mcp/legacy`, { from: '127.0.0.21' }));
    // Invented namespace names do not make rows of their own.
    for (let i = 0; i < 15; i++) {
      knocks.push(post(`${edge}/mcp/made-up-${i}`, { from: '127.0.0.21' }));
    }
    const answers = await Promise.all(knocks);
    expect(answers.every((answer) => answer.status === 401)).toBe(true);
    // A good key's requests are recorded one by one, as ever.
    expect((await post(`${edge}/mcp/open`, { from: '127.0.0.21', key })).status).toBe(200);
    await gateway.flush();

    const rejected = gateway.events.filter((event) => event.outcome === 'unauthorized');
    expect(rejected).toHaveLength(4);
    const rows = rejected
      .map((e) => ({
        namespace: e.namespace,
        transport: e.transport,
        client_network: e.client_network,
        count: e.count,
        auth_method: e.auth_method,
        key_id: e.key_id,
        kind: e.kind,
        http_status: e.http_status,
      }))
      .sort((a, b) =>
        `${a.namespace}${a.client_network}`.localeCompare(`${b.namespace}${b.client_network}`),
      );
    const common = { auth_method: 'none', key_id: null, kind: null, http_status: 401 };
    const http = { ...common, transport: 'streamable' };
    expect(rows).toEqual([
      { ...http, namespace: '_unknown', client_network: '127.0.0.21', count: 15 },
      { ...common, transport: 'sse', namespace: 'legacy', client_network: '127.0.0.21', count: 5 },
      { ...http, namespace: 'open', client_network: '127.0.0.21', count: 40 },
      { ...http, namespace: 'open', client_network: '127.0.0.22', count: 25 },
    ]);
    for (const row of rejected) expect(Date.parse(row.ts) % 60_000).toBe(0);
    const served = gateway.events.filter((event) => event.key_id === 'main');
    expect(served.length).toBeGreaterThanOrEqual(2);
    expect(served.every((event) => event.count === 1 && event.auth_method === 'key')).toBe(true);
  });

  it("records an identified caller's request to a name the config does not hold under _unknown, never under the name (not even the audit log's _admin)", async () => {
    for (const name of ['_admin', 'made-up']) {
      expect((await post(`${edge}/mcp/${name}`, { from: '127.0.0.23', key })).status).toBe(404);
    }
    await gateway.flush();
    const refused = gateway.events.filter(
      (event) => event.key_id === 'main' && event.outcome !== 'ok' && event.http_status === 404,
    );
    expect(refused.map((event) => [event.namespace, event.error_code, event.count])).toEqual([
      ['_unknown', 'unknown_namespace', 1],
      ['_unknown', 'unknown_namespace', 1],
    ]);
  });
});
