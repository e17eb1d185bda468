import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CreateMessageRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { type Gateway, roundRobinFetch, startGateway } from '../support/gateway.js';
import { ROOT, startEverything } from '../support/processes.js';
import { textOf } from '../support/mcp.js';

// Virtual servers (SPEC §4 behaviour 12) as users run them: the official SDK client, both client
// transports, requests spread over two edges, and server-everything as every member — over
// Streamable HTTP, legacy SSE and stdio at once, so every tool name exists three times.

const key = `key-${randomUUID()}`;
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

type ClientKind = 'streamable' | 'sse';

function clientTransport(kind: ClientKind, edges: string[], path: string): Transport {
  const fetchAll = roundRobinFetch(edges, { Authorization: `Bearer ${key}` });
  return kind === 'streamable'
    ? new StreamableHTTPClientTransport(new URL(`${edges[0]}/mcp/${path}`), { fetch: fetchAll })
    : new SSEClientTransport(new URL(`${edges[0]}/mcp/${path}/sse`), {
        fetch: fetchAll,
        eventSourceInit: { fetch: roundRobinFetch([edges[0]], { Authorization: `Bearer ${key}` }) },
      });
}

async function connect(kind: ClientKind, edges: string[], path: string): Promise<Client> {
  const client = new Client(
    { name: 'virtual-e2e', version: '1.0.0' },
    { capabilities: { sampling: {} } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, (request) => ({
    role: 'assistant',
    content: {
      type: 'text',
      text: `sampled: ${(request.params.messages[0].content as { text?: string }).text ?? ''}`,
    },
    model: 'test-model',
    stopReason: 'endTurn',
  }));
  await client.connect(clientTransport(kind, edges, path));
  return client;
}

async function allTools(client: Client): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return tools;
}

describe('a virtual server over server-everything on three backend kinds, served by two edges', () => {
  let gateway: Gateway;
  let streamable: Awaited<ReturnType<typeof startEverything>>;
  let sse: Awaited<ReturnType<typeof startEverything>>;

  beforeAll(async () => {
    [streamable, sse] = await Promise.all([
      startEverything('streamableHttp'),
      startEverything('sse'),
    ]);
    gateway = await startGateway({
      edges: 2,
      config: `
namespaces:
  http: { upstream: { url: "${streamable.url}" } }
  legacy: { upstream: { url: "${sse.url}", transport: sse } }
  local: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"] } }
servers:
  everything:
    namespaces: [http, legacy, local]
    tools: { deny: ["*__gzip-file-as-resource"] }
    overrides:
      local__echo: { name: say, description: "Says it back (stdio)" }
  solo: { namespaces: [http], prefix: "" }
keys:
  - { id: e2e, key: "${key}", namespaces: ["*"] }
`,
    });
  }, 90_000);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([streamable?.proc.stop(), sse?.proc.stop()]);
  });

  it.each<ClientKind>(['streamable', 'sse'])(
    'a %s client lists every member’s tools prefixed and calls each member by its own name',
    async (kind) => {
      const client = await connect(kind, gateway.edges, 'everything');
      try {
        expect(client.getServerVersion()?.name).toBe('everything');
        const tools = await allTools(client);
        const names = tools.map((tool) => tool.name);
        expect(names).toEqual(
          expect.arrayContaining(['http__echo', 'legacy__echo', 'say', 'local__get-sum']),
        );
        expect(names).not.toContain('local__echo');
        expect(names.filter((name) => name.endsWith('gzip-file-as-resource'))).toEqual([]);
        expect(tools.find((tool) => tool.name === 'say')?.description).toBe('Says it back (stdio)');
        for (const name of ['http__echo', 'legacy__echo', 'say']) {
          const result = await client.callTool({ name, arguments: { message: name } });
          expect(textOf(result)).toContain(name);
        }
        await expect(
          client.callTool({ name: 'http__gzip-file-as-resource', arguments: {} }),
        ).rejects.toThrow('Tool not found: http__gzip-file-as-resource');
      } finally {
        await client.close();
      }
    },
    60_000,
  );

  it('routes a member’s sampling request to the client and back, and its progress to the client', async () => {
    const client = await connect('streamable', gateway.edges, 'everything');
    try {
      for (const member of ['local', 'legacy']) {
        const sampled = await client.callTool({
          name: `${member}__trigger-sampling-request`,
          arguments: { prompt: `hello ${member}`, maxTokens: 5 },
        });
        expect(textOf(sampled)).toMatch(new RegExp(`"text": "sampled: [^"]*hello ${member}"`));
      }
      const progress: number[] = [];
      const result = await client.callTool(
        { name: 'http__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(textOf(result)).toContain('completed');
      expect(progress).toEqual([1, 2, 3]);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('a one-member server with prefix "" lists and answers as the namespace itself', async () => {
    const solo = await connect('streamable', gateway.edges, 'solo');
    const direct = await connect('streamable', gateway.edges, 'http');
    try {
      const shape = (tools: Tool[]) =>
        tools
          .map((t) => ({ name: t.name, description: t.description }))
          .sort((a, b) => a.name.localeCompare(b.name));
      expect(shape(await allTools(solo))).toEqual(shape(await allTools(direct)));
      const args = { name: 'get-sum', arguments: { a: 2, b: 3 } };
      expect(await solo.callTool(args)).toEqual(await direct.callTool(args));
      const [soloPrompts, directPrompts] = await Promise.all([
        solo.listPrompts(),
        direct.listPrompts(),
      ]);
      expect(soloPrompts.prompts.map((p) => p.name).sort()).toEqual(
        directPrompts.prompts.map((p) => p.name).sort(),
      );
      const uri = (await direct.listResources()).resources[0].uri;
      expect(await solo.readResource({ uri })).toEqual(await direct.readResource({ uri }));
    } finally {
      await solo.close();
      await direct.close();
    }
  }, 60_000);
});
