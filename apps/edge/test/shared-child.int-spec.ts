import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { type Message, StreamableRawClient } from '../../../test/support/raw-client.js';

// One stdio child for many sessions (`upstream.shared: true`, issue 19). Sessions use the same
// JSON-RPC ids at the same time and each gets its own answers only; every message still crosses
// the tap with its own session's exchange and filter (a hidden tool stays hidden, a key's own
// scope stays its own); the child is initialized once; notifications that answer nothing reach
// every session; a request of the child goes to the one session with a request in flight.

const alice = `alice-${randomUUID()}`;
const bob = `bob-${randomUUID()}`;
const SERVER = join(ROOT, 'test/support/stateless-stdio.mjs');
const dir = mkdtempSync(join(tmpdir(), 'shared-child-'));
const log = join(dir, 'child.log');

interface LogEntry {
  pid: number;
  boot?: boolean;
  message?: Message & { id?: unknown; method?: string; params?: Record<string, unknown> };
}
const entries = (): LogEntry[] =>
  existsSync(log)
    ? readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as LogEntry)
    : [];
const received = () => entries().filter((entry) => entry.message);
const calls = (text: string) =>
  received().filter(
    (entry) =>
      entry.message?.method === 'tools/call' &&
      (entry.message.params?.arguments as { text?: unknown } | undefined)?.text === text,
  );

let gateway: InProcessGateway;
const url = () => gateway.edges[0].url;

const metric = async (pattern: RegExp) =>
  pattern.exec(await (await fetch(`${url()}/metrics`)).text())?.[1];

const open = async (key: string, version = '2025-06-18') => {
  const client = new StreamableRawClient([url()], 'shared', key);
  const answer = await client.initialize(version);
  expect(answer.status).toBe(200);
  return { client, answer };
};

const call = (id: number, name: string, args: Record<string, unknown>, meta?: object) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

const textOf = (message: Message | undefined) =>
  (message?.result as { content?: Array<{ text?: string }> } | undefined)?.content?.[0]?.text;

beforeAll(async () => {
  gateway = await startInProcessGateway(`
namespaces:
  shared:
    upstream: { command: "${process.execPath}", args: ["${SERVER}"], env: { STDIO_LOG: "${log}" }, shared: true }
    tools: { deny: ["get-env"] }
keys:
  - { id: alice, key: "${alice}", namespaces: ["*"] }
  - { id: bob, key: "${bob}", namespaces: ["*"], tools: { deny: ["announce"] } }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a shared stdio child', () => {
  it('is initialized once; later sessions are answered from its result, in the revision it speaks', async () => {
    const first = await open(alice, '2025-06-18');
    const second = await open(bob, '2025-03-26');
    expect(second.answer.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 0,
        result: expect.objectContaining({
          protocolVersion: '2025-06-18',
          serverInfo: { name: 'stateless', version: '1.0.0' },
        }) as unknown,
      },
    ]);
    expect(first.answer.messages[0].result).toEqual(second.answer.messages[0].result);

    const methods = received().map((entry) => entry.message?.method);
    expect(methods).toEqual(['initialize', 'notifications/initialized']);
    expect(new Set(entries().map((entry) => entry.pid)).size).toBe(1);
    expect(await metric(/mcp_gateway_stdio_children\{namespace="shared"\} (\d+)/)).toBe('1');
    expect(
      await metric(/mcp_gateway_bridged_sessions\{namespace="shared",key_id="bob"\} (\d+)/),
    ).toBe('1');
  });

  it('keeps sessions apart: the same ids at the same time, each gets its own answers and its own filter', async () => {
    const a = (await open(alice)).client;
    const b = (await open(bob)).client;

    // Alice's answer comes last although she asked first: answers are paired by session, not order.
    const [fromA, fromB] = await Promise.all([
      a.post(call(7, 'echo', { text: 'for-alice', delay_ms: 300 })),
      b.post(call(7, 'echo', { text: 'for-bob', delay_ms: 0 })),
    ]);
    expect(fromA.messages).toEqual([expect.objectContaining({ id: 7 })]);
    expect(fromB.messages).toEqual([expect.objectContaining({ id: 7 })]);
    expect(textOf(fromA.messages[0])).toBe('for-alice');
    expect(textOf(fromB.messages[0])).toBe('for-bob');
    expect(fromA.text).not.toContain('for-bob');
    expect(fromB.text).not.toContain('for-alice');
    // The child saw two ids of the gateway's, never the sessions' colliding 7.
    const childIds = [...calls('for-alice'), ...calls('for-bob')].map((e) => e.message?.id);
    expect(new Set(childIds).size).toBe(2);
    expect(childIds).not.toContain(7);

    // One list from the child, two filters: the namespace's for both, bob's key's for bob.
    const [listA, listB] = await Promise.all([
      a.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      b.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    ]);
    const names = (answer: typeof listA) =>
      (answer.messages[0].result as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    expect(names(listA)).toEqual(['echo', 'progress', 'ask', 'announce']);
    expect(names(listB)).toEqual(['echo', 'progress', 'ask']);

    const hidden = await a.post(call(2, 'get-env', {}));
    expect(hidden.messages[0]).toMatchObject({ id: 2, error: { code: -32602 } });
    expect(received().some((entry) => entry.message?.params?.name === 'get-env')).toBe(false);

    // The same progress token in both sessions: each hears its own progress only.
    const [progressA, progressB] = await Promise.all([
      a.post(call(8, 'progress', { text: 'a' }, { progressToken: 'tok' })),
      b.post(call(8, 'progress', { text: 'b' }, { progressToken: 'tok' })),
    ]);
    for (const [answer, who] of [
      [progressA, 'a'],
      [progressB, 'b'],
    ] as const) {
      expect(answer.messages.map((m) => m.method ?? m.id)).toEqual([
        'notifications/progress',
        'notifications/progress',
        8,
      ]);
      expect(answer.messages[0].params).toMatchObject({ progressToken: 'tok' });
      expect(textOf(answer.messages[2])).toBe(`progressed ${who}`);
    }

    // Each request is recorded with its own session's exchange.
    await gateway.flush();
    const echoes = gateway.events.filter((e) => e.tool === 'echo' && e.jsonrpc_id === '7');
    expect(echoes.length).toBeGreaterThanOrEqual(2);
    for (const event of echoes)
      expect(event.session_id).toBe(event.key_id === 'alice' ? a.sessionId : b.sessionId);
  });

  it('gives every session the notifications that answer nothing', async () => {
    const a = (await open(alice)).client;
    const b = (await open(bob)).client;
    const waiting = b.post(call(3, 'echo', { text: 'bob-waits', delay_ms: 1_500 }));
    await eventually(() => calls('bob-waits').length === 1, 5_000, 'bob’s call at the child');
    const announced = await a.post(call(3, 'announce', {}));
    const methods = (answer: typeof announced) => answer.messages.map((m) => m.method ?? m.id);
    expect(methods(announced)).toEqual([
      'notifications/tools/list_changed',
      'notifications/message',
      3,
    ]);
    expect(methods(await waiting)).toEqual([
      'notifications/tools/list_changed',
      'notifications/message',
      3,
    ]);
  });

  it('puts a request of the child to the one session with a request in flight, and refuses it when there are several', async () => {
    const asker = new Client({ name: 'asker', version: '1' }, { capabilities: { sampling: {} } });
    asker.setRequestHandler(CreateMessageRequestSchema, () => ({
      role: 'assistant',
      content: { type: 'text', text: 'answered by the asker' },
      model: 'test',
    }));
    await asker.connect(
      new StreamableHTTPClientTransport(new URL(`${url()}/mcp/shared`), {
        requestInit: { headers: { Authorization: `Bearer ${alice}` } },
      }),
    );
    const alone = await asker.callTool({ name: 'ask', arguments: {} });
    expect(JSON.stringify(alone.content)).toContain('answered by the asker');

    const b = (await open(bob)).client;
    const waiting = b.post(call(4, 'echo', { text: 'bob-in-flight', delay_ms: 1_500 }));
    await eventually(() => calls('bob-in-flight').length === 1, 5_000, 'bob’s call at the child');
    const crowded = await asker.callTool({ name: 'ask', arguments: {} });
    expect(JSON.stringify(crowded.content)).toContain('-32053');
    expect(JSON.stringify(crowded.content)).toContain('No single session to ask');
    const bobs = await waiting;
    expect(bobs.messages.some((m) => m.method === 'sampling/createMessage')).toBe(false);
    expect(textOf(bobs.messages.at(-1))).toBe('bob-in-flight');
    await asker.close();
  });

  it('cancels the requests of a session that ends at the child, which serves on; its exit ends every session on it', async () => {
    const a = await open(alice);
    const b = await open(bob);
    const abandoned = a.client.post(call(11, 'echo', { text: 'abandoned', delay_ms: 60_000 }));
    const [sent] = await eventually(() => calls('abandoned').length === 1 && calls('abandoned'));
    await fetch(`${url()}/mcp/shared`, { method: 'DELETE', headers: a.client.headers() });
    expect((await abandoned).messages[0]).toMatchObject({ id: 11, error: { code: -32052 } });
    const cancel = await eventually(() =>
      received().find((entry) => entry.message?.method === 'notifications/cancelled'),
    );
    expect(cancel.message?.params).toMatchObject({ requestId: sent.message?.id });
    expect((await b.client.post({ jsonrpc: '2.0', id: 5, method: 'ping' })).status).toBe(200);

    process.kill(sent.pid, 'SIGKILL');
    await eventually(
      async () => (await b.client.post({ jsonrpc: '2.0', id: 6, method: 'ping' })).status === 404,
      5_000,
      'the session to end with its child',
    );
    // The next session gets a new child, initialized anew by its initialize.
    await open(alice);
    const fresh = entries().filter((entry) => entry.pid !== sent.pid && entry.message);
    expect(fresh[0].message).toMatchObject({ method: 'initialize' });
    expect(await metric(/mcp_gateway_stdio_children\{namespace="shared"\} (\d+)/)).toBe('1');
  });
});
