import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { textOf } from '../../../test/support/mcp.js';
import { ROOT } from '../../../test/support/processes.js';
import { StreamableRawClient } from '../../../test/support/raw-client.js';

// How a bridged session (here a stdio child) answers a POST: a lone answer that comes before
// anything else is one `application/json` body when the client accepts JSON (no SSE for it to
// parse); anything more (progress first, a batch, a server-to-client request) is an SSE stream,
// as is every answer for a client that accepts only text/event-stream.

const key = `alice-${randomUUID()}`;
const SERVER = join(ROOT, 'test/support/stateless-stdio.mjs');
let gateway: InProcessGateway;
const url = () => gateway.edges[0].url;

const call = (id: number, name: string, args: Record<string, unknown>, meta?: object) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

beforeAll(async () => {
  gateway = await startInProcessGateway(`
namespaces:
  kit:
    upstream: { command: "${process.execPath}", args: ["${SERVER}"] }
    tools: { deny: ["get-env"] }
keys:
  - { id: alice, key: "${key}", namespaces: ["*"] }
`);
});

afterAll(async () => {
  await gateway?.stop();
});

async function session(version = '2025-06-18'): Promise<StreamableRawClient> {
  const client = new StreamableRawClient([url()], 'kit', key);
  expect((await client.initialize(version)).status).toBe(200);
  return client;
}

describe('answers of a bridged session', () => {
  it('sends a lone answer as one JSON body', async () => {
    const client = await session();
    const answer = await client.post(call(1, 'echo', { text: 'hi' }));
    expect(answer.status).toBe(200);
    expect(answer.type).toBe('application/json');
    expect(JSON.parse(answer.text)).toMatchObject({ jsonrpc: '2.0', id: 1 });
    expect(textOf(answer.messages[0].result)).toContain('hi');
  });

  it('answers the gateway’s own refusal (a hidden tool) as JSON too', async () => {
    const client = await session();
    const answer = await client.post(call(2, 'get-env', {}));
    expect(answer.type).toBe('application/json');
    expect(answer.messages).toHaveLength(1);
    expect(answer.messages[0]).toMatchObject({ id: 2, error: { code: -32602 } });
  });

  it('streams SSE when something comes before the answer (progress)', async () => {
    const client = await session();
    const answer = await client.post(call(3, 'progress', { text: 'p' }, { progressToken: 'tok' }));
    expect(answer.type).toBe('text/event-stream');
    expect(answer.messages.map((m) => m.method ?? m.id)).toEqual([
      'notifications/progress',
      'notifications/progress',
      3,
    ]);
  });

  it('streams SSE for a client that accepts only text/event-stream', async () => {
    const client = await session();
    const answer = await client.post(call(4, 'echo', { text: 'sse' }), {
      accept: 'text/event-stream',
    });
    expect(answer.type).toBe('text/event-stream');
    expect(answer.messages).toEqual([expect.objectContaining({ id: 4 })]);
  });

  it('streams SSE for a batch of requests (2025-03-26)', async () => {
    const client = await session('2025-03-26');
    const answer = await client.post([
      call(5, 'echo', { text: 'a' }),
      call(6, 'echo', { text: 'b' }),
    ]);
    expect(answer.type).toBe('text/event-stream');
    expect(answer.messages.map((m) => m.id).sort()).toEqual([5, 6]);
  });

  it('streams SSE for a batch of one request (never a lone object for a batch)', async () => {
    const client = await session('2025-03-26');
    const answer = await client.post([call(7, 'echo', { text: 'one' })]);
    expect(answer.type).toBe('text/event-stream');
    expect(answer.messages).toHaveLength(1);
    expect(answer.messages[0]).toMatchObject({ id: 7 });
  });

  it('serves the official SDK client either way', async () => {
    const client = new Client({ name: 'sdk', version: '1' }, { capabilities: {} });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url()}/mcp/kit`), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    try {
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'sdk' } }))).toContain(
        'sdk',
      );
      const progress: number[] = [];
      await client.callTool({ name: 'progress', arguments: { text: 'x' } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(progress).toEqual([1, 2]);
    } finally {
      await client.close();
    }
  });
});
