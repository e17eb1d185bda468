import { eventually } from '../../../../test/support/eventually.js';
import { InProcessEventChannel } from './in-process-events.js';
import type { McpEvent } from './mcp-event.js';

function event(n: number): McpEvent {
  return {
    id: `event-${n}`,
    ts: new Date(1_700_000_000_000 + n).toISOString(),
    edge_id: 'edge-1',
    request_id: `req-${n}`,
    tenant: null,
    key_id: 'alice',
    user: null,
    namespace: 'search',
    transport: 'streamable',
    protocol_version: null,
    session_id: null,
    direction: 'client_to_server',
    kind: 'request',
    jsonrpc_id: String(n),
    method: 'tools/call',
    tool: 'search',
    outcome: 'ok',
    http_status: 200,
    error_code: null,
    duration_ms: 1,
    upstream_ms: 1,
    bytes_in: 1,
    bytes_out: 1,
    client_name: null,
    client_version: null,
    server: null,
    auth_method: 'key',
    client_tool: null,
    upstream_protocol_version: null,
    count: 1,
    client_network: null,
    tools_listed: null,
    detail: null,
  };
}

const ids = (batch: McpEvent[]) => batch.map((e) => e.id);

/** A consumer that does its work synchronously: resolves after it, rejects when it throws. */
function collect(work: (batch: McpEvent[]) => unknown): (batch: McpEvent[]) => Promise<void> {
  return (batch) =>
    new Promise<void>((resolve) => {
      work(batch);
      resolve();
    });
}

describe('InProcessEventChannel', () => {
  it('delivers events in publish order, in batches of at most batchSize', async () => {
    const channel = new InProcessEventChannel(100, 3);
    const batches: string[][] = [];
    channel.consume(collect((batch) => batches.push(ids(batch))));
    for (let n = 1; n <= 7; n++) channel.publish(event(n));
    await channel.flush();
    expect(batches).toEqual([
      ['event-1', 'event-2', 'event-3'],
      ['event-4', 'event-5', 'event-6'],
      ['event-7'],
    ]);
    expect(channel.depth).toBe(0);
  });

  it('delivers events published before the consumer attached', async () => {
    const channel = new InProcessEventChannel(100, 10);
    channel.publish(event(1));
    channel.publish(event(2));
    const batches: string[][] = [];
    channel.consume(collect((batch) => batches.push(ids(batch))));
    await channel.flush();
    expect(batches).toEqual([['event-1', 'event-2']]);
  });

  it('keeps order for events published while a batch is being handled', async () => {
    const channel = new InProcessEventChannel(100, 2);
    const delivered: string[] = [];
    channel.consume(
      collect((batch) => {
        delivered.push(...ids(batch));
        if (batch[0]?.id === 'event-1') {
          channel.publish(event(3));
          channel.publish(event(4));
        }
      }),
    );
    channel.publish(event(1));
    channel.publish(event(2));
    await eventually(() => delivered.length === 4, 5_000, 'every event', 5);
    await channel.flush();
    expect(delivered).toEqual(['event-1', 'event-2', 'event-3', 'event-4']);
  });

  it('drops and counts events past its capacity, and says so to the publisher', () => {
    const channel = new InProcessEventChannel(3, 10);
    const accepted = [1, 2, 3, 4, 5].map((n) => channel.publish(event(n)));
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(channel.dropped).toBe(2);
    expect(channel.depth).toBe(3);
  });

  it('accepts events again once the consumer made room, delivering the ones it kept', async () => {
    const channel = new InProcessEventChannel(2, 10);
    [1, 2, 3].forEach((n) => channel.publish(event(n)));
    const delivered: string[] = [];
    channel.consume(collect((batch) => delivered.push(...ids(batch))));
    await channel.flush();
    expect(channel.publish(event(4))).toBe(true);
    await channel.flush();
    expect(delivered).toEqual(['event-1', 'event-2', 'event-4']);
    expect(channel.dropped).toBe(1);
  });

  it('hands a failed batch to the consumer again, losing and reordering nothing', async () => {
    const channel = new InProcessEventChannel(100, 2);
    const attempts: string[][] = [];
    const delivered: string[] = [];
    let failures = 1;
    channel.consume(
      collect((batch) => {
        attempts.push(ids(batch));
        if (failures-- > 0) throw new Error('database locked');
        delivered.push(...ids(batch));
      }),
    );
    [1, 2, 3].forEach((n) => channel.publish(event(n)));
    await channel.flush();
    expect(attempts).toEqual([['event-1', 'event-2'], ['event-1', 'event-2'], ['event-3']]);
    expect(delivered).toEqual(['event-1', 'event-2', 'event-3']);
    expect(channel.dropped).toBe(0);
  });

  it('flush() resolves only after the consumer finished the last batch', async () => {
    const channel = new InProcessEventChannel(100, 10);
    let finished = false;
    channel.consume(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      finished = true;
    });
    channel.publish(event(1));
    await channel.flush();
    expect(finished).toBe(true);
  });

  it('flush() resolves at once when nothing is pending', async () => {
    const channel = new InProcessEventChannel();
    channel.consume(collect(() => undefined));
    await expect(channel.flush()).resolves.toBeUndefined();
  });

  it('flush() waits for every concurrent caller', async () => {
    const channel = new InProcessEventChannel(100, 1);
    const delivered: string[] = [];
    channel.consume(collect((batch) => delivered.push(...ids(batch))));
    [1, 2, 3].forEach((n) => channel.publish(event(n)));
    await Promise.all([channel.flush(), channel.flush()]);
    expect(delivered).toEqual(['event-1', 'event-2', 'event-3']);
  });

  describe('with a linger', () => {
    it('hands a trickle over as one batch once the linger has passed', async () => {
      const channel = new InProcessEventChannel(100, 10, 150);
      const batches: string[][] = [];
      channel.consume(collect((batch) => batches.push(ids(batch))));
      channel.publish(event(1));
      await new Promise((resolve) => setTimeout(resolve, 30));
      channel.publish(event(2));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(batches).toEqual([]);
      await eventually(() => batches.length > 0, 5_000, 'the batch', 5);
      expect(batches).toEqual([['event-1', 'event-2']]);
    });

    it('lets what came in while a batch was being handled linger too', async () => {
      const channel = new InProcessEventChannel(100, 10, 150);
      const batches: Array<{ ids: string[]; at: number }> = [];
      const started = Date.now();
      channel.consume(async (batch) => {
        batches.push({ ids: ids(batch), at: Date.now() - started });
        if (batch[0]?.id === 'event-1') channel.publish(event(2));
        await new Promise((resolve) => setTimeout(resolve, 10));
      });
      channel.publish(event(1));
      await eventually(() => batches.length === 2, 5_000, 'both batches', 5);
      expect(batches.map((b) => b.ids)).toEqual([['event-1'], ['event-2']]);
      // event-2 waited for company after the first batch, rather than going out alone at once.
      expect(batches[1].at - batches[0].at).toBeGreaterThanOrEqual(140);
    });

    it('hands a full batch over at once', async () => {
      const channel = new InProcessEventChannel(100, 3, 60_000);
      const batches: string[][] = [];
      channel.consume(collect((batch) => batches.push(ids(batch))));
      [1, 2, 3, 4].forEach((n) => channel.publish(event(n)));
      await eventually(() => batches.length > 0, 2_000, 'the full batch', 5);
      expect(batches[0]).toEqual(['event-1', 'event-2', 'event-3']);
    });

    it('flush() does not wait for the linger', async () => {
      const channel = new InProcessEventChannel(100, 10, 60_000);
      const delivered: string[] = [];
      channel.consume(collect((batch) => delivered.push(...ids(batch))));
      channel.publish(event(1));
      await channel.flush();
      expect(delivered).toEqual(['event-1']);
    });
  });
});
