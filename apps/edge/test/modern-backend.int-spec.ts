import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, inputRequired, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { textOf } from '../../../test/support/mcp.js';
import { type Message, postModern, sseMessages } from '../../../test/support/raw-client.js';

// A 2025-era client (the SDK v1) on a backend that answers only 2026-07-28 (the SDK v2 server
// with `legacy: 'reject'`): directly, its initialize is refused (-32022); through the gateway,
// which keeps the session the backend does not have, everything works (SPEC §4 behaviour 10).

const key = `modern-${randomUUID()}`;
let gateway: InProcessGateway;
let backend: Server;
let backendUrl = '';
const ran: string[] = [];
let handler: ReturnType<typeof createMcpHandler>;

function modernServer(): McpServer {
  const server = new McpServer(
    { name: 'modern-only', version: '2.0.0' },
    { capabilities: { tools: { listChanged: true } } },
  );
  server.registerTool(
    'echo',
    { description: 'echo', inputSchema: z.object({ message: z.string() }) },
    ({ message }) => {
      ran.push('echo');
      return { content: [{ type: 'text', text: `echo: ${message}` }] };
    },
  );
  server.registerTool('hidden', { description: 'never listed nor run' }, () => {
    ran.push('hidden');
    return { content: [{ type: 'text', text: 'ran' }] };
  });
  server.registerTool(
    'slow',
    { description: 'progress', inputSchema: z.object({ steps: z.number() }) },
    async ({ steps }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        if (token !== undefined)
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken: token, progress: i, total: steps },
          });
      }
      return { content: [{ type: 'text', text: `done ${steps}` }] };
    },
  );
  server.registerTool(
    'confirm',
    { description: 'asks the user', inputSchema: z.object({ what: z.string() }) },
    ({ what }, ctx) => {
      const answer = ctx.mcpReq.inputResponses?.ok as
        { action?: string; content?: { ok?: boolean } } | undefined;
      if (!answer) {
        return inputRequired({
          inputRequests: {
            ok: inputRequired.elicit({
              message: `Really ${what}?`,
              requestedSchema: {
                type: 'object',
                properties: { ok: { type: 'boolean' } },
                required: ['ok'],
              },
            }),
          },
          requestState: 'round-1',
        });
      }
      return {
        content: [{ type: 'text', text: `${what}: ${answer.content?.ok ? 'confirmed' : 'no'}` }],
      };
    },
  );
  server.registerTool('touch', { description: 'changes the tool list' }, () => {
    setTimeout(() => handler.notify.toolsChanged(), 20);
    return { content: [{ type: 'text', text: 'touched' }] };
  });
  return server;
}

beforeAll(async () => {
  handler = createMcpHandler(() => modernServer(), { legacy: 'reject', keepAliveMs: 1_000 });
  const node = toNodeHandler(handler);
  backend = createServer((req, res) => void node(req, res));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/mcp`;
  gateway = await startInProcessGateway(`
namespaces:
  modern: { upstream: { url: "${backendUrl}" }, tools: { deny: ["hidden"] } }
servers:
  solo: { namespaces: [modern] }
keys:
  - { id: m, key: "${key}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await handler?.close();
  backend?.closeAllConnections();
  await new Promise((resolve) => backend?.close(resolve));
});

async function legacyClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client(
    { name: 'legacy-client', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  );
  client.setRequestHandler(ElicitRequestSchema, () => ({
    action: 'accept',
    content: { ok: true },
  }));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }),
  );
  return client;
}

it('directly, the backend refuses a 2025 client', async () => {
  await expect(legacyClient(backendUrl)).rejects.toThrow(/-32022|Unsupported protocol version/);
});

describe('through the gateway, a 2025 client gets a session the backend does not have', () => {
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    client = new Client(
      { name: 'legacy-client', version: '1.0.0' },
      { capabilities: { elicitation: {} } },
    );
    client.setRequestHandler(ElicitRequestSchema, (request) => ({
      action: 'accept',
      content: { ok: request.params.message === 'Really deploy?' },
    }));
    transport = new StreamableHTTPClientTransport(
      new URL(`http://127.0.0.1:${gateway.edges[0].port}/mcp/modern`),
      { requestInit: { headers: { Authorization: `Bearer ${key}` } } },
    );
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('initializes from server/discover, with a gateway session id', () => {
    expect(client.getServerVersion()).toMatchObject({ name: 'modern-only' });
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    expect(transport.sessionId).toBeTruthy();
  });

  it('lists and calls, the namespace’s filter applied', async () => {
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'slow', 'confirm']));
    expect(names).not.toContain('hidden');
    expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toBe(
      'echo: hi',
    );
    await expect(client.callTool({ name: 'hidden', arguments: {} })).rejects.toThrow(
      'Tool not found: hidden',
    );
    expect(ran).not.toContain('hidden');
  });

  it('records both eras on its events: the client’s, and 2026-07-28 for the backend', async () => {
    await client.callTool({ name: 'echo', arguments: { message: 'era' } });
    await gateway.flush();
    const call = gateway.events.findLast(
      (e) => e.method === 'tools/call' && e.direction === 'client_to_server',
    );
    expect(call?.protocol_version).not.toBe('2026-07-28');
    expect(call?.upstream_protocol_version).toBe('2026-07-28');
  });

  it('passes progress', async () => {
    const progress: number[] = [];
    await client.callTool({ name: 'slow', arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
  });

  it('turns input_required into an elicitation request to the client, and retries with its answer', async () => {
    expect(textOf(await client.callTool({ name: 'confirm', arguments: { what: 'deploy' } }))).toBe(
      'deploy: confirmed',
    );
  });

  it('feeds the session’s list_changed from subscriptions/listen', async () => {
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    await client.callTool({ name: 'touch', arguments: {} });
    await eventually(() => changed > 0, 5_000, 'list_changed on the session');
  });
});

it('is a member of a virtual server like any other: listed, filtered and called, for 2025 and 2026-07-28 clients', async () => {
  const url = `http://127.0.0.1:${gateway.edges[0].port}/mcp/solo`;
  const client = new Client({ name: 'legacy-client', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    }),
  );
  try {
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(expect.arrayContaining(['modern__echo', 'modern__slow']));
    expect(names).not.toContain('modern__hidden');
    const called = await client.callTool({ name: 'modern__echo', arguments: { message: 'vs' } });
    expect(textOf(called)).toBe('echo: vs');
  } finally {
    await client.close();
  }
  const modern = await postModern(url, key, 9, 'tools/list', {});
  expect(modern.status).toBe(200);
  const text = await modern.text();
  const [answer] = text.startsWith('{') ? [JSON.parse(text) as Message] : sseMessages(text);
  const listed = (answer.result as { tools: Array<{ name: string }> }).tools;
  expect(listed.map((tool) => tool.name)).toContain('modern__echo');
  expect(listed.map((tool) => tool.name)).not.toContain('modern__hidden');
});

it('ends a 2026-07-28 client’s subscriptions/listen stream at shutdown rather than waiting on it', async () => {
  // A second edge in front of the same backend, stopped by this test with a long grace: a listen
  // stream is a POST, but like a GET stream it is ended, not waited for (it never ends by
  // itself: before, shutdown waited the grace twice, here 2 × 30 s, past this test's timeout).
  const own = await startInProcessGateway(`
namespaces:
  modern: { upstream: { url: "${backendUrl}" } }
keys:
  - { id: m, key: "${key}", namespaces: ["*"] }
`);
  const response = await postModern(
    `${own.edges[0].url}/mcp/modern`,
    key,
    1,
    'subscriptions/listen',
    {
      notifications: { toolsListChanged: true },
    },
  );
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('notifications/subscriptions/acknowledged')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before its acknowledgement: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  const ended = (async () => {
    try {
      while (!(await reader.read()).done);
    } catch {
      // cut rather than ended: still over
    }
  })();
  await own.edges[0].close(30_000);
  await own.stop();
  await ended;
}, 20_000);

it('answers a 2026-07-28 client 502 while the backend is down, and relays to it once it is up (never bridged by a stale verdict)', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const own = await startInProcessGateway(`
namespaces:
  later: { upstream: { url: "http://127.0.0.1:${port}/mcp" } }
keys:
  - { id: m, key: "${key}", namespaces: ["*"] }
`);
  const late = createMcpHandler(() => modernServer(), { legacy: 'reject' });
  const lateNode = toNodeHandler(late);
  const lateServer = createServer((req, res) => void lateNode(req, res));
  const discover = () => postModern(`${own.edges[0].url}/mcp/later`, key, 7, 'server/discover', {});
  try {
    const down = await discover();
    expect(down.status).toBe(502);
    expect(await down.json()).toMatchObject({ id: 7, error: { code: -32052 } });
    await new Promise<void>((resolve) => lateServer.listen(port, '127.0.0.1', resolve));
    // Past the second an unreachable backend is remembered, the next request probes again and
    // is relayed: the backend's own discover result, its name, not the bridge's view of it.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const up = await discover();
    expect(up.status).toBe(200);
    const text = await up.text();
    expect(text).toContain('modern-only');
    expect(text).toContain('2026-07-28');
  } finally {
    await own.stop();
    await late.close();
    lateServer.closeAllConnections();
    await new Promise((resolve) => lateServer.close(resolve));
  }
}, 30_000);
