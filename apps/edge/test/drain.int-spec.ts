import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { postModern, StreamableRawClient } from '../../../test/support/raw-client.js';

// Graceful shutdown (SPEC §8): in-flight unary requests finish (bounded) before the backends
// they wait on are closed, on bridged sessions too (a stdio child, a 2026-07-28 client's backend
// session), not only on the HTTP pass-through.

const key = `drain-${randomUUID()}`;
let gateway: InProcessGateway;

beforeAll(async () => {
  const member = join(ROOT, 'test/support/member-stdio.mjs');
  gateway = await startInProcessGateway(`
namespaces:
  kid: { upstream: { command: "${process.execPath}", args: ["${member}"], env: { MEMBER_NAME: kid } } }
keys:
  - { id: drain, key: "${key}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
});

it('answers the calls in flight on bridged sessions before it closes their backends', async () => {
  const edge = gateway.edges[0];
  const client = new StreamableRawClient([edge.url], 'kid', key);
  expect((await client.initialize()).status).toBe(200);
  const slow = { name: 'slow', arguments: { ms: 1_000 } };
  const session = client.post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: slow });
  const stateless = postModern(`${edge.url}/mcp/kid`, key, 8, 'tools/call', slow).then(
    async (response) => ({ status: response.status, text: await response.text() }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const closed = edge.close(5_000);
  const [answer, modern] = await Promise.all([session, stateless]);
  await closed;
  expect(answer.status).toBe(200);
  expect(JSON.stringify(answer.messages)).toContain('kid slept');
  expect(modern.status).toBe(200);
  expect(modern.text).toContain('kid slept');
});
