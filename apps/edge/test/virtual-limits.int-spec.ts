import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { MemberBackend } from '../../../test/support/member-backend.js';
import { StreamableRawClient } from '../../../test/support/raw-client.js';

// A namespace's per-key limit (`rate_limit`, the key × namespace scope of SPEC §6) holds whichever
// endpoint its calls come through: a virtual server's call routed to that member is taken from
// it too, so a server is no way around a member's limit. The other members are not affected.

const key = `limits-${randomUUID()}`;
const limited = new MemberBackend('limited');
const free = new MemberBackend('free');
let gateway: InProcessGateway;

beforeAll(async () => {
  await Promise.all([limited.start(), free.start()]);
  gateway = await startInProcessGateway(`
namespaces:
  limited: { upstream: { url: "${limited.url}/mcp" }, rate_limit: { requests: 2, per: 1m } }
  free: { upstream: { url: "${free.url}/mcp" } }
servers:
  both: { namespaces: [limited, free] }
keys:
  - { id: k, key: "${key}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([limited.stop(), free.stop()]);
});

it('takes a virtual server’s calls to a member from that member’s own limit, and only from it', async () => {
  const client = new Client({ name: 'limits', version: '1' }, { capabilities: {} });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${gateway.edges[0].url}/mcp/both`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  try {
    const echo = (name: string) => client.callTool({ name, arguments: { text: 'x' } });
    await echo('limited__echo');
    await echo('limited__echo');
    await expect(echo('limited__echo')).rejects.toThrow(/-32029|Rate limit exceeded/);
    expect(limited.ran.filter((tool) => tool === 'echo')).toHaveLength(2);
    // The other member, and lists, are unaffected.
    await echo('free__echo');
    await echo('free__echo');
    await echo('free__echo');
    expect(free.ran.filter((tool) => tool === 'echo')).toHaveLength(3);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await gateway.flush();
    const refused = gateway.events.find(
      (e) => e.server === 'both' && e.outcome === 'rate_limited' && e.method === 'tools/call',
    );
    expect(refused).toMatchObject({ namespace: 'limited', client_tool: 'limited__echo' });
  } finally {
    await client.close();
  }
});

it('leaves the namespace’s own endpoint with what the server’s calls left of its limit', async () => {
  // The two calls through the server used the key's two requests a minute in `limited`.
  const answer = await new StreamableRawClient([gateway.edges[0].url], 'limited', key).initialize(
    '2025-06-18',
  );
  expect(answer.status).toBe(429);
  expect(answer.messages[0]).toMatchObject({ error: { code: -32029 } });
});
