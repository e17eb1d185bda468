import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient, summary } from '../support/mcp.js';
import {
  eventually,
  freePort,
  type Proc,
  startEverything,
  startNats,
  startService,
  sleep,
  tempDir,
  waitForHttp,
} from '../support/processes.js';

// The foundation slice in distributed mode: a real nats-server (JetStream), the shared Redis,
// auth, analytics and an edge as separate processes, a real server-everything over Streamable
// HTTP and a real server-everything child over stdio, driven by the official MCP SDK client.
describe('distributed mode: client → edge → auth/backends → JetStream → analytics', () => {
  const userKey = `user-${randomUUID()}`;
  const adminKey = `admin-${randomUUID()}`;
  const dir = tempDir('dist');
  let nats: Awaited<ReturnType<typeof startNats>>;
  let backend: Awaited<ReturnType<typeof startEverything>>;
  const procs: Proc[] = [];
  let edgeUrl = '';
  let analyticsUrl = '';

  beforeAll(async () => {
    [nats, backend] = await Promise.all([startNats(), startEverything('streamableHttp')]);
    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(
      configPath,
      `
namespaces:
  remote:
    upstream: { url: "${backend.url}" }
    tools: { deny: ["get-env"] }
  local:
    upstream:
      command: node
      args: ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"]
    tools: { deny: ["get-env"] }
keys:
  - { id: user-1, user: user@example.test, tenant: acme, key: "\${USER_KEY}", namespaces: ["remote", "local"] }
  - { id: admin-1, key: "\${ADMIN_KEY}", role: admin, namespaces: ["*"] }
`,
    );
    const [edgePort, analyticsPort] = await Promise.all([freePort(), freePort()]);
    const env = {
      GATEWAY_CONFIG: configPath,
      NATS_URL: nats.url,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `test-${randomUUID()}`,
      GATEWAY_SESSION_SECRET: randomUUID(),
      USER_KEY: userKey,
      ADMIN_KEY: adminKey,
      EDGE_PORT: String(edgePort),
      ANALYTICS_PORT: String(analyticsPort),
      ANALYTICS_DB: join(dir, 'analytics.duckdb'),
      HOST: '127.0.0.1',
    };
    const auth = startService('auth', env);
    const analytics = startService('analytics', env);
    const edge = startService('edge', env);
    procs.push(auth, analytics, edge);
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    analyticsUrl = `http://127.0.0.1:${analyticsPort}`;
    await Promise.all([
      waitForHttp(`${edgeUrl}/readyz`, edge),
      waitForHttp(`${analyticsUrl}/readyz`, analytics),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((proc) => proc.stop()));
    await backend?.proc.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['a Streamable HTTP backend', 'remote'],
    ['a stdio backend (one child per session)', 'local'],
  ])('proxies initialize, tools/list and tools/call to %s', async (_label, ns) => {
    const { client, transport } = await connectClient(`${edgeUrl}/mcp/${ns}`, userKey);
    try {
      expect(client.getServerVersion()?.name).toBeTruthy();
      const tools = await client.listTools();
      const names = tools.tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(['echo', 'get-sum']));
      expect(names).not.toContain('get-env');
      const result = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
      expect(JSON.stringify(result.content)).toContain('42');
      await transport.terminateSession();
    } finally {
      await client.close();
    }
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { Authorization: 'Bearer not-a-real-key-0000000000' }],
    ['an unknown X-API-Key', { 'X-API-Key': 'not-a-real-key-0000000000' }],
  ])('answers 401 with WWW-Authenticate and the request id to %s', async (_label, headers) => {
    const response = await fetch(`${edgeUrl}/mcp/remote`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer .*error_description=".*X-API-Key/,
    );
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const body = (await response.json()) as { id: number; error: { data: { code: string } } };
    expect(body.id).toBe(7);
    expect(body.error.data.code).toBe('unauthorized');
  });

  it('records every call in DuckDB and counts it in /api/v1/summary', async () => {
    // 2 sessions × (initialize + tools/list + tools/call) = 6 requests, plus 3 rejected (401).
    const figures = await eventually(
      async () => {
        const current = await summary(analyticsUrl, adminKey);
        return current.requests >= 9 ? current : undefined;
      },
      20_000,
      'summary to count 9 requests',
    );
    expect(figures.requests).toBe(9);
    // The 401s were refused before a backend saw them: rejected, not errors (SPEC §7 v2).
    expect(figures.rejected).toBe(3);
    expect(figures.errors).toBe(0);
    expect(figures.error_rate).toBe(0);
    expect(figures.tool_calls).toBe(2);
    // Which keys, when it is not one: the figure alone says nothing of who the other was.
    const keys = await fetch(`${analyticsUrl}/api/v1/keys`, {
      headers: { Authorization: `Bearer ${adminKey}` },
    });
    const keyIds = ((await keys.json()) as Array<{ key_id: string | null; requests: number }>)
      .filter((row) => row.key_id !== null)
      .map((row) => `${row.key_id} (${row.requests})`);
    expect({ unique_keys: figures.unique_keys, keyIds }).toEqual({
      unique_keys: 1,
      keyIds: ['user-1 (6)'],
    });
    const perNamespace = await summary(analyticsUrl, adminKey, '?namespace=local');
    expect(perNamespace.requests).toBe(3);
    expect(perNamespace.rejected).toBe(0);
    expect(perNamespace.errors).toBe(0);
  });

  it('stores a minute of knocking as one row per group, its count growing as the knocks go on', async () => {
    // Both waves in one minute, more than one 5 s publication apart.
    const second = new Date().getUTCSeconds();
    if (second > 40) await sleep((61 - second) * 1_000);
    const knock = (n: number) =>
      Promise.all(
        Array.from({ length: n }, () =>
          fetch(`${edgeUrl}/mcp/local`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
          }).then((response) => response.status),
        ),
      );
    const rows = async () => {
      const response = await fetch(`${analyticsUrl}/api/v1/events?namespace=local&limit=100`, {
        headers: { Authorization: `Bearer ${adminKey}` },
      });
      const page = (await response.json()) as { events: Array<Record<string, unknown>> };
      return page.events
        .filter((e) => e.auth_method === 'none')
        .map((e) => ({ id: e.id, count: e.count, outcome: e.outcome }));
    };
    // Within the allowance of requests without a credential (10 a minute per address).
    expect(await knock(4)).toEqual(Array(4).fill(401));
    const first = await eventually(
      async () => ((await rows())[0]?.count === 4 ? rows() : undefined),
      20_000,
      'the first count',
    );
    expect(await knock(3)).toEqual(Array(3).fill(401));
    const grown = await eventually(
      async () => ((await rows())[0]?.count === 7 ? rows() : undefined),
      20_000,
      'the grown count',
    );
    expect(grown).toEqual([{ id: first[0].id, count: 7, outcome: 'unauthorized' }]);
    const figures = await summary(analyticsUrl, adminKey, '?namespace=local');
    expect(figures.rejected).toBe(7);
  }, 60_000);

  it('refuses the analytics API to a key without the admin role, as to no key (401, no oracle)', async () => {
    const response = await fetch(`${analyticsUrl}/api/v1/summary`, {
      headers: { Authorization: `Bearer ${userKey}` },
    });
    expect(response.status).toBe(401);
    const anonymous = await fetch(`${analyticsUrl}/api/v1/summary`);
    expect(anonymous.status).toBe(401);
  });
});
