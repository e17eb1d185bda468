import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { type Gateway, startGateway } from '../support/gateway.js';
import { ROOT, startEverything } from '../support/processes.js';
import { textOf } from '../support/mcp.js';

// SPEC §4 behaviour 10 with real peers: the TypeScript SDK v2 client, pinned to 2026-07-28 (no
// fallback) or in auto mode, against server-everything (a 2025-era server) over Streamable HTTP,
// legacy SSE and stdio, through the gateway's processes.

const key = `era-e2e-${randomUUID()}`;
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

async function modernClient(
  edge: string,
  ns: string,
  mode: 'auto' | { pin: string } = { pin: '2026-07-28' },
): Promise<Client> {
  const client = new Client(
    { name: 'era-e2e', version: '2.0.0' },
    {
      capabilities: { sampling: {}, elicitation: { form: {} } },
      versionNegotiation: { mode },
    },
  );
  client.setRequestHandler('sampling/createMessage', (request) => ({
    model: 'test-model',
    role: 'assistant',
    content: {
      type: 'text',
      text: `sampled ${(request.params.messages[0].content as { text?: string }).text ?? ''}`,
    },
  }));
  client.setRequestHandler('elicitation/create', () => ({
    action: 'accept',
    content: { name: 'Ada Lovelace', check: true },
  }));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${edge}/mcp/${ns}`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    }),
  );
  return client;
}

describe('2026-07-28 clients on 2025-era server-everything, every backend kind', () => {
  let gateway: Gateway;
  let streamable: Awaited<ReturnType<typeof startEverything>>;
  let sse: Awaited<ReturnType<typeof startEverything>>;

  beforeAll(async () => {
    [streamable, sse] = await Promise.all([
      startEverything('streamableHttp'),
      startEverything('sse'),
    ]);
    gateway = await startGateway({
      config: `
namespaces:
  http: { upstream: { url: "${streamable.url}" } }
  legacy: { upstream: { url: "${sse.url}", transport: sse } }
  local: { upstream: { command: "${process.execPath}", args: ["${EVERYTHING}", "stdio"] } }
keys:
  - { id: e2e, key: "${key}", namespaces: ["*"] }
`,
    });
  }, 90_000);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([streamable?.proc.stop(), sse?.proc.stop()]);
  });

  it.each(['http', 'legacy', 'local'])(
    'a pinned client on %s: discover, list, call, progress, and sampling and elicitation as input_required round trips',
    async (ns) => {
      const client = await modernClient(gateway.edges[0], ns);
      try {
        expect(client.getProtocolEra()).toBe('modern');
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        expect(names).toEqual(
          expect.arrayContaining([
            'echo',
            'trigger-sampling-request',
            'trigger-elicitation-request',
          ]),
        );
        expect(
          textOf(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })),
        ).toContain('hi');
        const progress: number[] = [];
        await client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
          { onprogress: (p: { progress: number }) => progress.push(p.progress) },
        );
        expect(progress).toEqual([1, 2, 3]);
        const sampled = await client.callTool({
          name: 'trigger-sampling-request',
          arguments: { prompt: `from ${ns}`, maxTokens: 5 },
        });
        expect(textOf(sampled)).toMatch(new RegExp(`sampled [^"]*from ${ns}`));
        const elicited = await client.callTool({
          name: 'trigger-elicitation-request',
          arguments: {},
        });
        expect(textOf(elicited)).toContain('Ada Lovelace');
        const resource = (await client.listResources()).resources[0];
        expect((await client.readResource({ uri: resource.uri })).contents.length).toBeGreaterThan(
          0,
        );
      } finally {
        await client.close();
      }
    },
    60_000,
  );

  it.each(['http', 'legacy', 'local'])(
    'a client in auto mode gets the modern era on %s',
    async (ns) => {
      const client = await modernClient(gateway.edges[0], ns, 'auto');
      try {
        expect(client.getProtocolEra()).toBe('modern');
        expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      } finally {
        await client.close();
      }
    },
    60_000,
  );
});
