import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { McpEvent } from '#common';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { eventually, ROOT, sleep } from '../../../test/support/processes.js';
import { StreamableRawClient } from '../../../test/support/raw-client.js';

// Each HTTP exchange is recorded on its own (SPEC §7): a bridged session is long-lived, but the
// events of one request carry that request's id and that request's own time.

const key = `key-${randomUUID()}`;
let gateway: InProcessGateway;

const call = (name: string, id: number | string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});

beforeAll(async () => {
  const hostile = join(ROOT, 'test/support/hostile-stdio.mjs');
  gateway = await startInProcessGateway(`
namespaces:
  stdio: { upstream: { command: "${process.execPath}", args: ["${hostile}"] }, tools: { deny: ["get-env"] } }
keys:
  - { id: events, key: "${key}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
});

async function requestEvent(requestId: string, jsonrpcId: string): Promise<McpEvent> {
  return eventually(
    async () => {
      await gateway.flush();
      return gateway.events.find(
        (e) =>
          e.jsonrpc_id === jsonrpcId &&
          e.direction === 'client_to_server' &&
          e.kind === 'request' &&
          e.request_id === requestId,
      );
    },
    5_000,
    `the request event of ${jsonrpcId}`,
    20,
  );
}

describe('events of a bridged session, one exchange at a time', () => {
  it("records a call the gateway answered itself with its own duration, not the session's age", async () => {
    const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    await client.initialize();
    // The session grows old before the call: the recorded duration must not include that.
    await sleep(1_500);
    const answer = await client.post(call('get-env', 'denied-1'), { 'x-request-id': 'denied-req' });
    expect(answer.messages[0]).toMatchObject({ error: { code: -32602 } });
    const event = await requestEvent('denied-req', 'denied-1');
    expect(event.outcome).toBe('denied_tool');
    expect(event.duration_ms).not.toBeNull();
    expect(event.duration_ms!).toBeLessThan(500);
  });

  it('keeps the request id of each of concurrent requests on one session', async () => {
    const client = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    await client.initialize();
    const ids = Array.from({ length: 6 }, (_, i) => i);
    await Promise.all(
      ids.map((i) =>
        client.post(call(i % 2 ? 'echo' : 'get-env', `c-${i}`), { 'x-request-id': `req-${i}` }),
      ),
    );
    for (const i of ids) {
      const event = await requestEvent(`req-${i}`, `c-${i}`);
      expect(event.outcome).toBe(i % 2 ? 'ok' : 'denied_tool');
      // Its answer too carries the request's own id.
      const response = gateway.events.find(
        (e) => e.jsonrpc_id === `c-${i}` && e.direction === 'server_to_client',
      );
      expect(response?.request_id).toBe(`req-${i}`);
    }
  });
});
