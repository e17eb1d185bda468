import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { type Gateway, roundRobinFetch, startGateway } from '../support/gateway.js';
import { eventually, ROOT, startEverything } from '../support/processes.js';
import { RecordingBackend } from '../support/recording-backend.js';

const key = `key-${randomUUID()}`;
const otherKey = `other-${randomUUID()}`;
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

type ClientKind = 'streamable' | 'sse';

function clientTransport(kind: ClientKind, edges: string[], ns: string, apiKey = key): Transport {
  const fetchAll = roundRobinFetch(edges, { Authorization: `Bearer ${apiKey}` });
  return kind === 'streamable'
    ? new StreamableHTTPClientTransport(new URL(`${edges[0]}/mcp/${ns}`), { fetch: fetchAll })
    : new SSEClientTransport(new URL(`${edges[0]}/mcp/${ns}/sse`), {
        fetch: fetchAll,
        eventSourceInit: {
          fetch: roundRobinFetch([edges[0]], { Authorization: `Bearer ${apiKey}` }),
        },
      });
}

async function connect(kind: ClientKind, edges: string[], ns: string): Promise<Client> {
  const client = new Client(
    { name: 'transport-e2e', version: '1.0.0' },
    { capabilities: { sampling: {} } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, () => ({
    role: 'assistant',
    content: { type: 'text', text: 'answer from the client' },
    model: 'test-model',
    stopReason: 'endTurn',
  }));
  await client.connect(clientTransport(kind, edges, ns));
  return client;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

const initialize = (id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  },
});

describe('the MCP proxy across transports, backends and three edge replicas', () => {
  let gateway: Gateway;
  let streamable: Awaited<ReturnType<typeof startEverything>>;
  let sse: Awaited<ReturnType<typeof startEverything>>;
  const recording = new RecordingBackend();

  beforeAll(async () => {
    [streamable, sse] = await Promise.all([
      startEverything('streamableHttp'),
      startEverything('sse'),
      recording.start(),
    ]);
    const hide = `tools: { deny: ["get-env"] }`;
    gateway = await startGateway({
      edges: 3,
      config: `
namespaces:
  http: { upstream: { url: "${streamable.url}" }, ${hide} }
  legacy: { upstream: { url: "${sse.url}", transport: sse }, ${hide} }
  stdio: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"] }, ${hide} }
  recorded:
    upstream: { url: "${recording.url}", headers: { X-Backend-Token: configured-secret } }
  recorded2: { upstream: { url: "${recording.url}" } }
  recordedmodern: { upstream: { url: "${recording.modernUrl}" } }
  quick: { upstream: { url: "${streamable.url}" }, timeout_ms: 1200 }
  quickstdio: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"] }, timeout_ms: 1200 }
  reaped: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"], idle_timeout: 1s, warm: 0 } }
  capped: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"], max_children: 1 } }
  crashing: { upstream: { command: "${process.execPath}", args: ["${join(ROOT, 'test/support/crashing-server.mjs')}"] } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
  - { id: other, key: "${otherKey}", namespaces: ["*"] }
`,
    });
  }, 90_000);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([streamable?.proc.stop(), sse?.proc.stop(), recording.stop()]);
  });

  describe.each([
    ['Streamable HTTP', 'streamable', 'a Streamable HTTP backend', 'http'],
    ['Streamable HTTP', 'streamable', 'a legacy SSE backend', 'legacy'],
    ['Streamable HTTP', 'streamable', 'a stdio backend', 'stdio'],
    ['legacy HTTP+SSE', 'sse', 'a Streamable HTTP backend', 'http'],
    ['legacy HTTP+SSE', 'sse', 'a legacy SSE backend', 'legacy'],
    ['legacy HTTP+SSE', 'sse', 'a stdio backend', 'stdio'],
  ] as const)('a %s client to %s, requests spread over three edges', (_c, kind, _b, ns) => {
    let client: Client;
    beforeAll(async () => {
      client = await connect(kind, gateway.edges, ns);
    });
    afterAll(async () => {
      await client?.close();
    });

    it('lists the filtered tools and calls one', async () => {
      const names = (await client.listTools()).tools.map((tool) => tool.name);
      expect(names).toEqual(
        expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']),
      );
      expect(names).not.toContain('get-env');
      const result = await client.callTool({ name: 'echo', arguments: { message: `via ${ns}` } });
      expect(JSON.stringify(result.content)).toContain(`via ${ns}`);
      await expect(client.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(
        /Tool not found: get-env/,
      );
    });

    it('reads resources and prompts', async () => {
      const resources = await client.listResources();
      expect(resources.resources.length).toBeGreaterThan(0);
      const read = await client.readResource({ uri: resources.resources[0].uri });
      expect(read.contents.length).toBeGreaterThan(0);
      const prompts = await client.listPrompts();
      expect(prompts.prompts.map((prompt) => prompt.name)).toContain('simple-prompt');
      const prompt = await client.getPrompt({ name: 'simple-prompt' });
      expect(prompt.messages.length).toBeGreaterThan(0);
    });

    it('relays progress notifications as they are sent, not at the end', async () => {
      const arrivals: number[] = [];
      const started = Date.now();
      await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
        undefined,
        { onprogress: () => arrivals.push(Date.now() - started), timeout: 20_000 },
      );
      const finished = Date.now() - started;
      expect(arrivals.length).toBeGreaterThanOrEqual(2);
      // The backend spaces them 500 ms apart; buffering would deliver them with the result.
      expect(finished - arrivals[0]).toBeGreaterThanOrEqual(700);
    });

    it('carries a server-to-client sampling request and the client answer', async () => {
      const result = await client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'hi' },
      });
      expect(JSON.stringify(result.content)).toContain('answer from the client');
    });
  });

  describe('headers and sessions', () => {
    it('never forwards the client credentials or Host, and sends the configured backend headers', async () => {
      const before = recording.headers.length;
      const client = new Client({ name: 'headers', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gateway.edges[0]}/mcp/recorded`), {
          requestInit: {
            headers: {
              Authorization: `Bearer ${key}`,
              Cookie: 'session=abc',
              'X-Custom': 'kept-out',
            },
          },
        }),
      );
      await client.callTool({ name: 'echo', arguments: { message: 'x' } });
      await client.close();
      const seen = recording.headers.slice(before);
      expect(seen.length).toBeGreaterThan(1);
      for (const headers of seen) {
        expect(JSON.stringify(headers)).not.toContain(key);
        expect(headers.authorization).toBeUndefined();
        expect(headers.cookie).toBeUndefined();
        expect(headers['x-custom']).toBeUndefined();
        expect(headers.host).toBe(new URL(recording.url).host);
        expect(headers['x-backend-token']).toBe('configured-secret');
        expect(headers['x-request-id']).toBeTruthy();
      }
      const later = seen.filter((headers) => headers['mcp-session-id'] !== undefined);
      expect(later.length).toBeGreaterThan(0);
      for (const headers of later) expect(String(headers['mcp-session-id'])).toMatch(/^backend-/);
      expect(later.some((headers) => headers['mcp-protocol-version'])).toBe(true);
    });

    it("gives the client the gateway's session id, bound to key and namespace, dead after DELETE", async () => {
      const response = await post(`${gateway.edges[0]}/mcp/recorded`, initialize());
      expect(response.status).toBe(200);
      const session = response.headers.get('mcp-session-id')!;
      expect(session).toBeTruthy();
      expect(session).not.toMatch(/^backend-/);
      await response.text();
      const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      const ping = { jsonrpc: '2.0', id: 2, method: 'ping' };
      expect((await post(`${gateway.edges[1]}/mcp/recorded`, ping, headers)).status).toBe(200);
      const foreignKey = await post(`${gateway.edges[1]}/mcp/recorded`, ping, {
        ...headers,
        Authorization: `Bearer ${otherKey}`,
      });
      expect(foreignKey.status).toBe(404);
      expect(
        ((await foreignKey.json()) as { error: { data: { code: string } } }).error.data.code,
      ).toBe('unknown_session');
      expect((await post(`${gateway.edges[2]}/mcp/recorded2`, ping, headers)).status).toBe(404);
      const deleted = await fetch(`${gateway.edges[2]}/mcp/recorded`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${key}`, ...headers },
      });
      expect(deleted.status).toBe(200);
      await eventually(
        async () => (await post(`${gateway.edges[0]}/mcp/recorded`, ping, headers)).status === 404,
        5_000,
        '404 after DELETE on every edge',
      );
      expect((await post(`${gateway.edges[1]}/mcp/recorded`, ping, headers)).status).toBe(404);
    });

    it('passes 2026-07-28 stateless requests through with their Mcp-* headers to a backend of that revision', async () => {
      const request = {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: {
          name: 'echo',
          arguments: { message: 'x' },
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': {},
          },
        },
      };
      const headers2026 = {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo',
      };
      // The first request makes the gateway ask the backend's era (server/discover).
      await (await post(`${gateway.edges[0]}/mcp/recordedmodern`, request, headers2026)).text();
      const before = recording.headers.length;
      await post(`${gateway.edges[0]}/mcp/recordedmodern`, request, {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo',
        'mcp-param-region': 'eu',
      });
      const seen = recording.headers[before];
      expect(seen['mcp-protocol-version']).toBe('2026-07-28');
      expect(seen['mcp-method']).toBe('tools/call');
      expect(seen['mcp-name']).toBe('echo');
      expect(seen['mcp-param-region']).toBe('eu');
    });

    it('passes GET streams with Last-Event-ID through', async () => {
      const response = await post(`${gateway.edges[0]}/mcp/recorded`, initialize());
      const session = response.headers.get('mcp-session-id')!;
      await response.text();
      const before = recording.headers.length;
      const abort = new AbortController();
      const stream = await fetch(`${gateway.edges[1]}/mcp/recorded`, {
        headers: {
          Authorization: `Bearer ${key}`,
          accept: 'text/event-stream',
          'mcp-session-id': session,
          'mcp-protocol-version': '2025-06-18',
          'last-event-id': 'evt-42',
        },
        signal: abort.signal,
      });
      expect(stream.headers.get('content-type')).toContain('text/event-stream');
      expect(stream.headers.get('x-accel-buffering')).toBe('no');
      abort.abort();
      expect(
        recording.headers.slice(before).some((headers) => headers['last-event-id'] === 'evt-42'),
      ).toBe(true);
    });

    it("rewrites a legacy SSE backend's endpoint event to the gateway's messages URL", async () => {
      const abort = new AbortController();
      const response = await fetch(`${gateway.edges[0]}/mcp/legacy/sse`, {
        headers: { Authorization: `Bearer ${key}`, accept: 'text/event-stream' },
        signal: abort.signal,
      });
      const reader = response.body!.getReader();
      const { value } = (await reader.read()) as { value: Uint8Array };
      abort.abort();
      const text = new TextDecoder().decode(value);
      expect(text).toMatch(/^event: endpoint\ndata: \/mcp\/legacy\/messages\?session=[^&\s]+\n\n/);
    });

    it('forwards cancellation to the backend', async () => {
      const client = new Client({ name: 'cancel', version: '1' });
      await client.connect(clientTransport('streamable', gateway.edges, 'recorded'));
      const abort = new AbortController();
      const call = client.callTool({ name: 'wait', arguments: { ms: 10_000 } }, undefined, {
        signal: abort.signal,
      });
      await eventually(
        () => recording.toolCalls.includes('wait'),
        5_000,
        'the call to reach the backend',
      );
      abort.abort();
      await expect(call).rejects.toThrow();
      await eventually(
        () => recording.cancelled.length > 0,
        5_000,
        'the backend to see notifications/cancelled',
      );
      await client.close();
    });
  });

  describe('timeouts', () => {
    it.each(['quick', 'quickstdio'])(
      'a long call that reports progress is not cut by a shorter timeout (%s)',
      async (ns) => {
        const client = await connect('streamable', gateway.edges, ns);
        const result = await client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 6 } },
          undefined,
          { onprogress: () => undefined, timeout: 20_000 },
        );
        expect(JSON.stringify(result.content)).toContain('completed');
        await client.close();
      },
    );

    it.each(['quick', 'quickstdio'])(
      'a call silent for longer than timeout_ms fails with a timeout error (%s)',
      async (ns) => {
        const client = await connect('streamable', gateway.edges, ns);
        const started = Date.now();
        await expect(
          client.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: 4, steps: 1 } },
            undefined,
            { timeout: 20_000 },
          ),
        ).rejects.toThrow(/timed out/i);
        expect(Date.now() - started).toBeLessThan(3_900);
        await client.close();
      },
    );
  });

  describe('stdio lifecycle', () => {
    it('reaps an idle child and then answers 404 for its session', async () => {
      const response = await post(`${gateway.edges[0]}/mcp/reaped`, initialize());
      const session = response.headers.get('mcp-session-id')!;
      await response.text();
      await eventually(
        async () => {
          const metrics = await (await fetch(`${gateway.edges[0]}/metrics`)).text();
          return /mcp_gateway_stdio_children\{namespace="reaped"\} 0/.test(metrics);
        },
        10_000,
        'the idle child to be reaped',
      );
      const ping = await post(
        `${gateway.edges[0]}/mcp/reaped`,
        { jsonrpc: '2.0', id: 2, method: 'ping' },
        { 'mcp-session-id': session },
      );
      expect(ping.status).toBe(404);
    });

    it('caps children per namespace', async () => {
      const first = await post(`${gateway.edges[0]}/mcp/capped`, initialize());
      expect(first.status).toBe(200);
      await first.text();
      const second = await post(`${gateway.edges[0]}/mcp/capped`, initialize());
      expect(second.status).toBe(503);
    });

    it('ends the session of a crashing child with an error, and logs its stderr', async () => {
      const client = await connect('streamable', [gateway.edges[0]], 'crashing');
      const started = Date.now();
      await expect(
        client.callTool({ name: 'crash', arguments: {} }, undefined, { timeout: 20_000 }),
      ).rejects.toThrow(/Backend unavailable/);
      expect(Date.now() - started).toBeLessThan(5_000);
      await expect(client.listTools()).rejects.toThrow();
      await client.close();
      expect(gateway.edgeProcs[0].output).toContain('crashing-server started');
      const health = await fetch(`${gateway.edges[0]}/healthz`);
      expect(health.status).toBe(200);
    });
  });
});
