import type { McpEvent } from '#common';
import type { EventPublisher } from './event-publisher.js';
import { RejectionTally } from './rejection-tally.js';

class Collecting implements EventPublisher {
  readonly events: McpEvent[] = [];
  depth = 0;
  publish(event: McpEvent): void {
    this.events.push(event);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function rejected(overrides: Partial<McpEvent> = {}): McpEvent {
  return {
    id: 'x',
    ts: new Date().toISOString(),
    edge_id: 'edge',
    request_id: 'req',
    tenant: null,
    key_id: null,
    user: null,
    namespace: 'open',
    transport: 'streamable',
    protocol_version: null,
    session_id: null,
    direction: 'client_to_server',
    kind: 'request',
    jsonrpc_id: '1',
    method: 'tools/call',
    tool: 'echo',
    outcome: 'unauthorized',
    http_status: 401,
    error_code: 'unauthorized',
    duration_ms: 1,
    upstream_ms: null,
    bytes_in: 10,
    bytes_out: null,
    client_name: null,
    client_version: null,
    server: null,
    auth_method: 'none',
    client_tool: null,
    upstream_protocol_version: null,
    count: 1,
    client_network: '192.0.2.1',
    tools_listed: null,
    detail: null,
    ...overrides,
  };
}

describe('RejectionTally', () => {
  let now = Date.parse('2026-11-25T10:00:10Z');
  const clock = () => now;

  beforeEach(() => {
    now = Date.parse('2026-11-25T10:00:10Z');
  });

  it('passes every other event through at once', () => {
    const inner = new Collecting();
    const tally = new RejectionTally(inner, clock);
    tally.publish(rejected({ auth_method: 'key', key_id: 'k', client_network: null }));
    tally.publish(rejected({ client_network: null }));
    expect(inner.events).toHaveLength(2);
    void tally.close();
  });

  it('folds a minute into one row per group, sent again under its id as it grows; a new minute is a new row', async () => {
    const inner = new Collecting();
    const tally = new RejectionTally(inner, clock);
    for (let i = 0; i < 100; i++) tally.publish(rejected());
    tally.publish(rejected({ client_network: '192.0.2.2' }));
    tally.publish(rejected({ outcome: 'rate_limited', http_status: 429 }));
    expect(inner.events).toHaveLength(0);
    expect(tally.depth).toBe(3);
    now += 60_000;
    tally.publish(rejected());
    await tally.flush();
    // Counted after the last publication: the same row, grown.
    tally.publish(rejected());
    await tally.flush();
    // Nothing new counted: nothing sent.
    await tally.flush();
    const rows = inner.events.map((e) => [e.ts, e.client_network, e.outcome, e.count, e.bytes_in]);
    expect(rows).toEqual([
      ['2026-11-25T10:00:00.000Z', '192.0.2.1', 'unauthorized', 100, 1000],
      ['2026-11-25T10:00:00.000Z', '192.0.2.2', 'unauthorized', 1, 10],
      ['2026-11-25T10:00:00.000Z', '192.0.2.1', 'rate_limited', 1, 10],
      ['2026-11-25T10:01:00.000Z', '192.0.2.1', 'unauthorized', 1, 10],
      ['2026-11-25T10:01:00.000Z', '192.0.2.1', 'unauthorized', 2, 20],
    ]);
    // Per-request details do not survive folding; a group keeps its id, groups have their own.
    expect(inner.events.every((e) => e.kind === null && e.method === null && e.tool === null)).toBe(
      true,
    );
    expect(new Set(inner.events.map((e) => e.id)).size).toBe(4);
    expect(inner.events[4].id).toBe(inner.events[3].id);
    expect(tally.depth).toBe(0);
    now += 60_000;
    await tally.flush();
    tally.publish(rejected());
    await tally.flush();
    expect(inner.events).toHaveLength(6);
    expect(inner.events[5].id).not.toBe(inner.events[4].id);
  });

  it('bounds the groups of a minute: networks past the bound share one row', async () => {
    const inner = new Collecting();
    const tally = new RejectionTally(inner, clock);
    for (let i = 0; i < 10_500; i++) {
      tally.publish(rejected({ client_network: `2001:db8:${i.toString(16)}::/64` }));
    }
    expect(tally.depth).toBe(10_001);
    await tally.close();
    const overflow = inner.events.filter((e) => e.client_network === '*');
    expect(overflow).toHaveLength(1);
    expect(overflow[0].count).toBe(500);
    expect(inner.events.reduce((sum, e) => sum + e.count, 0)).toBe(10_500);
  });

  it('forgets the groups of a minute once it is over and its counts went out', async () => {
    const inner = new Collecting();
    const tally = new RejectionTally(inner, clock);
    for (let i = 0; i < 10_000; i++) {
      tally.publish(rejected({ client_network: `2001:db8:${i.toString(16)}::/64` }));
    }
    await tally.flush();
    now += 60_000;
    await tally.flush(); // the minute's groups are over: forgotten
    tally.publish(rejected({ client_network: '198.51.100.0' }));
    await tally.flush();
    expect(inner.events.at(-1)?.client_network).toBe('198.51.100.0');
    void tally.close();
  });
});
