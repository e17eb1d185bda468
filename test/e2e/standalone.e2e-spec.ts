import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connectClient, summary } from '../support/mcp.js';
import {
  eventually,
  freePort,
  type Proc,
  ROOT,
  startEverything,
  startService,
  tempDir,
  waitForHttp,
} from '../support/processes.js';

async function startStandalone(
  env: Record<string, string>,
): Promise<{ proc: Proc; edgeUrl: string; analyticsUrl: string }> {
  const [edgePort, analyticsPort] = await Promise.all([freePort(), freePort()]);
  const proc = startService('standalone', {
    EDGE_PORT: String(edgePort),
    ANALYTICS_PORT: String(analyticsPort),
    HOST: '127.0.0.1',
    NATS_URL: '',
    REDIS_URL: '',
    ...env,
  });
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const analyticsUrl = `http://127.0.0.1:${analyticsPort}`;
  await Promise.all([
    waitForHttp(`${edgeUrl}/readyz`, proc),
    waitForHttp(`${analyticsUrl}/healthz`, proc),
  ]);
  return { proc, edgeUrl, analyticsUrl };
}

// Standalone mode: the three services in one process over the in-process transport, no NATS,
// no Redis; the same slice as in distributed mode.
describe('standalone mode (npm start)', () => {
  const dir = tempDir('standalone');
  const key = `key-${randomUUID()}`;
  let backend: Awaited<ReturnType<typeof startEverything>>;
  let gateway: Awaited<ReturnType<typeof startStandalone>>;

  const configPath = join(dir, 'gateway.yaml');
  const config = () => `
namespaces:
  remote: { upstream: { url: "${backend.url}" } }
  local:
    upstream: { command: node, args: ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"] }
keys:
  - { id: ops, key: "${key}", role: admin, namespaces: ["*"] }
`;

  beforeAll(async () => {
    backend = await startEverything('streamableHttp');
    writeFileSync(configPath, config());
    gateway = await startStandalone({
      GATEWAY_CONFIG: configPath,
      ANALYTICS_DB: join(dir, 'data', 'analytics.duckdb'),
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.proc.stop();
    await backend?.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a start banner with the MCP and analytics URLs', () => {
    expect(gateway.proc.output).toContain(`/mcp/remote`);
    expect(gateway.proc.output).toContain(`/mcp/local`);
    expect(gateway.proc.output).toContain('/api/v1/summary');
  });

  it.each(['remote', 'local'])(
    'proxies a full session to the %s namespace and records it',
    async (ns) => {
      const { client, transport } = await connectClient(`${gateway.edgeUrl}/mcp/${ns}`, key);
      const result = await client.callTool({ name: 'echo', arguments: { message: `hello ${ns}` } });
      expect(JSON.stringify(result.content)).toContain(`hello ${ns}`);
      await transport.terminateSession();
      await client.close();
      const figures = await eventually(
        async () => {
          const current = await summary(gateway.analyticsUrl, key, `?namespace=${ns}`);
          return current.requests >= 2 ? current : undefined;
        },
        15_000,
        `events of ${ns}`,
      );
      expect(figures).toMatchObject({
        requests: 2,
        rejected: 0,
        errors: 0,
        tool_calls: 1,
        unique_keys: 1,
      });
    },
  );

  it('pins what it relays and counts its tokens; the analytics thread answers for both', async () => {
    const { client, transport } = await connectClient(`${gateway.edgeUrl}/mcp/remote`, key);
    const listed = (await client.listTools()).tools.map((tool) => tool.name);
    await transport.terminateSession();
    await client.close();
    const get = async (path: string) => {
      const response = await fetch(`${gateway.analyticsUrl}${path}`, {
        headers: { Authorization: `Bearer ${key}` },
      });
      expect(response.status).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };
    // The edge wrote the pins file on the main thread; the analytics thread reads it over its link.
    const pins = await eventually(
      async () => {
        const answer = (await get('/api/v1/pins?namespace=remote')) as unknown as unknown[];
        return answer.length === listed.length && answer;
      },
      10_000,
      'every listed tool pinned',
    );
    expect(pins).toContainEqual(
      expect.objectContaining({
        tool: 'echo',
        status: 'pinned',
        hash: expect.stringMatching(/^sha256:/) as string,
      }),
    );
    const context = await eventually(
      async () => {
        const answer = (await get('/api/v1/context?namespace=remote')) as { tools?: unknown[] };
        return (answer.tools?.length ?? 0) === listed.length && answer;
      },
      15_000,
      'the listing in /api/v1/context',
    );
    expect(context.tools).toContainEqual(
      expect.objectContaining({
        namespace: 'remote',
        tool: 'echo',
        tokens: expect.any(Number) as number,
      }),
    );
  });

  // SPEC §8: logs never contain a key. A YAML parser quotes the source around a syntax error,
  // and after a stray brace every later token is one: the edge, auth and analytics log it.
  const broken = (secrets: string[]) =>
    `keys:\n  - { id: a, key: ${secrets[0]} }}\n${secrets.map((secret, i) => `  - { id: k${i}, key: "${secret}" }\n`).join('')}`;

  it('logs a broken config reload by line and column, never a secret of it', async () => {
    const secrets = [key, `reload-secret-${randomUUID()}`];
    const before = gateway.proc.output.length;
    writeFileSync(configPath, broken(secrets));
    try {
      await eventually(
        () => gateway.proc.output.slice(before).includes('YAML syntax error'),
        10_000,
        'the reload to be refused',
      );
    } finally {
      writeFileSync(configPath, config());
    }
    for (const secret of secrets) expect(gateway.proc.output).not.toContain(secret);
    // The old config stays in force.
    const { client } = await connectClient(`${gateway.edgeUrl}/mcp/remote`, key);
    await client.close();
  });

  it('refuses to start on a broken config without printing a secret of it', async () => {
    const secrets = [`start-secret-${randomUUID()}`, `start-secret-${randomUUID()}`];
    const path = join(dir, 'broken.yaml');
    writeFileSync(path, broken(secrets));
    const proc = startService('standalone', {
      GATEWAY_CONFIG: path,
      EDGE_PORT: '0',
      ANALYTICS_PORT: '0',
      NATS_URL: '',
      REDIS_URL: '',
    });
    expect(await proc.exited).not.toBe(0);
    expect(proc.output).toMatch(/YAML syntax error: .* \(line 2, column \d+\)/);
    for (const secret of secrets) expect(proc.output).not.toContain(secret);
  });

  it('answers 401 to a wrong key', async () => {
    const response = await fetch(`${gateway.edgeUrl}/mcp/remote`, {
      method: 'POST',
      headers: {
        Authorization: 'Bearer wrong-key-wrong-key-wrong',
        'content-type': 'application/json',
      },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    expect(response.status).toBe(401);
  });
});

// The repo's own gateway.yaml must work on a fresh clone: `npm install && npm start`.
describe('the shipped demo config', () => {
  const dir = tempDir('demo');
  let gateway: Awaited<ReturnType<typeof startStandalone>>;

  beforeAll(async () => {
    gateway = await startStandalone({
      GATEWAY_CONFIG: 'gateway.yaml',
      ANALYTICS_DB: join(dir, 'analytics.duckdb'),
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the demo key, and that key reaches both demo namespaces', async () => {
    const match = /Demo key \(demo, role admin\): (\S+)/.exec(gateway.proc.output);
    expect(match).not.toBeNull();
    const demoKey = match![1];
    const everything = await connectClient(`${gateway.edgeUrl}/mcp/everything`, demoKey);
    const names = (await everything.client.listTools()).tools.map((tool) => tool.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('get-env');
    await everything.client.close();
    const filesystem = await connectClient(`${gateway.edgeUrl}/mcp/filesystem`, demoKey);
    const listing = await filesystem.client.callTool({
      name: 'list_directory',
      arguments: { path: join(ROOT, 'demo/files') },
    });
    expect(JSON.stringify(listing.content)).toContain('people.csv');
    const fsTools = (await filesystem.client.listTools()).tools.map((tool) => tool.name);
    expect(fsTools).not.toContain('write_file');
    await filesystem.client.close();
  });
});

// `npm start` with a key of the user's own and no HOST: the secret is not printed, and the demo
// is not on the network (its admin key is in the README).
describe('the demo with DEMO_KEY set and HOST unset', () => {
  const dir = tempDir('demo-own-key');
  const secret = `own-secret-${randomUUID()}`;
  let gateway: Awaited<ReturnType<typeof startStandalone>>;

  beforeAll(async () => {
    gateway = await startStandalone({
      GATEWAY_CONFIG: 'gateway.yaml',
      ANALYTICS_DB: join(dir, 'analytics.duckdb'),
      DEMO_KEY: secret,
      HOST: '',
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never prints the secret, and says it listens on loopback only', async () => {
    expect(gateway.proc.output).not.toContain(secret);
    expect(gateway.proc.output).toContain('Demo key (demo, role admin): set by you (not shown)');
    expect(gateway.proc.output).toContain('Listening on 127.0.0.1 only');
    const { client } = await connectClient(`${gateway.edgeUrl}/mcp/everything`, secret);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
    // Another address of this machine is refused (when it has one).
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((address) => address?.family === 'IPv4' && !address.internal);
    if (lan) {
      const port = new URL(gateway.edgeUrl).port;
      await expect(fetch(`http://${lan.address}:${port}/healthz`)).rejects.toThrow();
    }
  });
});
