import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { postModern, StreamableRawClient } from '../../../test/support/raw-client.js';

// One key's sessions cannot lock a namespace for everyone (SPEC §4 too_many_sessions, §9): the
// cap is per key, the answer says honestly when to retry, sessions nobody uses past initialize
// end early, and /metrics says who holds what.

const greedy = `greedy-${randomUUID()}`;
const other = `other-${randomUUID()}`;
const idler = `idler-${randomUUID()}`;
let gateway: InProcessGateway;

beforeAll(async () => {
  const hostile = join(ROOT, 'test/support/hostile-stdio.mjs');
  gateway = await startInProcessGateway(`
server: { max_sessions_per_key: 2 }
namespaces:
  stdio: { upstream: { command: "${process.execPath}", args: ["${hostile}"], idle_timeout: 8s } }
keys:
  - { id: greedy, key: "${greedy}", namespaces: ["*"] }
  - { id: other, key: "${other}", namespaces: ["*"] }
  - { id: idler, key: "${idler}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
});

const open = async (key: string) => {
  const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
  const answer = await client.initialize();
  return { client, answer };
};

describe('bridged sessions per key', () => {
  it('refuses a key past its cap with 429 too_many_sessions and an honest Retry-After; other keys are unaffected', async () => {
    const first = await open(greedy);
    const second = await open(greedy);
    expect([first.answer.status, second.answer.status]).toEqual([200, 200]);
    // Both are in use: their idle time (8 s) bounds the wait.
    await first.client.post({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await second.client.post({ jsonrpc: '2.0', id: 1, method: 'ping' });

    const third = await fetch(`${gateway.edges[0].url}/mcp/stdio`, {
      method: 'POST',
      headers: new StreamableRawClient([], 'stdio', greedy).headers(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'x', version: '1' },
        },
      }),
    });
    expect(third.status).toBe(429);
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(8);
    expect(await third.json()).toMatchObject({
      id: 9,
      error: { data: { code: 'too_many_sessions' } },
    });

    const others = await open(other);
    expect(others.answer.status).toBe(200);

    const metrics = await (await fetch(`${gateway.edges[0].url}/metrics`)).text();
    expect(metrics).toMatch(/mcp_gateway_bridged_sessions\{namespace="stdio",key_id="greedy"\} 2/);
    expect(metrics).toMatch(/mcp_gateway_bridged_sessions\{namespace="stdio",key_id="other"\} 1/);
  });

  it('ends a session whose client never went past initialize long before its idle time', async () => {
    const used = await open(idler);
    await used.client.post({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const unused = new StreamableRawClient([gateway.edges[0].url], 'stdio', idler);
    const answer = await fetch(`${gateway.edges[0].url}/mcp/stdio`, {
      method: 'POST',
      headers: unused.headers(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'x', version: '1' },
        },
      }),
    });
    unused.sessionId = answer.headers.get('mcp-session-id') ?? undefined;
    await answer.text();
    // A quarter of the 8 s idle time: gone after ~2 s, while the used one (8 s) lives on. (Any
    // request on it would use it: the gauge tells.)
    const held = async () =>
      /mcp_gateway_bridged_sessions\{namespace="stdio",key_id="idler"\} (\d+)/.exec(
        await (await fetch(`${gateway.edges[0].url}/metrics`)).text(),
      )?.[1];
    expect(await held()).toBe('2');
    await eventually(async () => (await held()) === '1', 6_000, 'the unused session to end', 250);
    expect((await unused.post({ jsonrpc: '2.0', id: 2, method: 'ping' })).status).toBe(404);
    const stillThere = await used.client.post({ jsonrpc: '2.0', id: 3, method: 'ping' });
    expect(stillThere.status).toBe(200);
  });
});

// A key's cap counts what it holds in a namespace by every route: its own sessions, the member
// connections of its virtual server sessions and of its 2026-07-28 pool. Otherwise a key at its
// cap opened the namespace's remaining children through a server (or stateless requests) and
// every other key got 503.
describe('a key’s sessions in a namespace, whatever route opened them', () => {
  const greedyKey = `greedy2-${randomUUID()}`;
  const otherKey = `other2-${randomUUID()}`;
  let caps: InProcessGateway;

  beforeAll(async () => {
    const member = join(ROOT, 'test/support/member-stdio.mjs');
    caps = await startInProcessGateway(`
server: { max_sessions_per_key: 2 }
namespaces:
  kid: { upstream: { command: "${process.execPath}", args: ["${member}"], env: { MEMBER_NAME: kid }, max_children: 4, warm: 0 } }
servers:
  vs: { namespaces: [kid] }
keys:
  - { id: greedy2, key: "${greedyKey}", namespaces: ["*"] }
  - { id: other2, key: "${otherKey}", namespaces: ["*"] }
`);
  }, 30_000);

  afterAll(async () => {
    await caps?.stop();
  });

  const session = async (route: string, key: string) => {
    const client = new StreamableRawClient([caps.edges[0].url], route, key);
    return { client, status: (await client.initialize()).status };
  };

  it('counts member connections of a server session and of the 2026-07-28 pool against the key', async () => {
    expect((await session('kid', greedyKey)).status).toBe(200);
    expect((await session('kid', greedyKey)).status).toBe(200);
    // Through the server: the member is not opened for this key (its call fails, no child).
    const server = await session('vs', greedyKey);
    const call = await server.client.post({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: { name: 'kid__echo', arguments: { text: 'x' } },
    });
    expect(JSON.stringify(call.messages)).not.toContain('kid ran echo');
    // Stateless: 429 too_many_sessions, as for a session of its own.
    const stateless = await postModern(`${caps.edges[0].url}/mcp/kid`, greedyKey, 6, 'tools/call', {
      name: 'echo',
      arguments: { text: 'y' },
    });
    expect(stateless.status).toBe(429);
    expect(await stateless.json()).toMatchObject({
      error: { data: { code: 'too_many_sessions' } },
    });
    // The namespace keeps room for other keys: two children are the greedy key's, no more.
    expect((await session('kid', otherKey)).status).toBe(200);
    expect((await session('kid', otherKey)).status).toBe(200);
  });
});
