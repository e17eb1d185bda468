import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { McpEvent } from '#common';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT, sleep } from '../../../test/support/processes.js';
import { LegacyRawClient, StreamableRawClient } from '../../../test/support/raw-client.js';
import { AnalyticsQueries } from '../src/api/analytics-queries.js';
import { BatchWriter } from '../src/ingest/batch-writer.js';
import { decodeEventObject } from '../src/ingest/event-decoder.js';
import { EventStore } from '../src/storage/event-store.js';
import { memoryLogger, tempDir, type TempDir } from './fixtures.js';

// SPEC §7: "the duration of a message the gateway answered itself is the time it took to answer
// it". A hidden tool's call on a bridged session is answered by the gateway in well under a
// millisecond; had its event carried the session's age instead, every refusal on a session open
// for minutes would read as a minutes-long request and push p95 up. Real traffic through the
// edge, stored and queried by the analytics, on sessions older than any honest duration here.

const key = `key-${randomUUID()}`;
/** How old the sessions are before the calls (longer than any duration the test accepts). */
const SESSION_AGE_MS = 1_500;
const CALLS = 8;

const call = (name: string, id: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});

describe('durations of calls the gateway answered itself, as the analytics store them', () => {
  let gateway: InProcessGateway;
  let dir: TempDir;
  let store: EventStore;
  let queries: AnalyticsQueries;
  let opened: number;

  beforeAll(async () => {
    const hostile = join(ROOT, 'test/support/hostile-stdio.mjs');
    gateway = await startInProcessGateway(`
namespaces:
  stdio: { upstream: { command: "${process.execPath}", args: ["${hostile}"] }, tools: { deny: ["get-env"] } }
keys:
  - { id: durations, key: "${key}", namespaces: ["*"] }
`);
    const { logger } = memoryLogger();
    dir = tempDir();
    store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    queries = new AnalyticsQueries(store);

    // Both bridged client kinds: Streamable HTTP (each POST its own exchange) and legacy SSE
    // (every answer on the one long-lived stream, which is where a session's age could leak in).
    const streamable = new StreamableRawClient([gateway.edges[0].url], 'stdio', key);
    const legacy = new LegacyRawClient(gateway.edges[0].url, 'stdio', key);
    await streamable.initialize();
    await legacy.initialize();
    opened = performance.now();
    // Not synchronisation: the sessions' age is the condition under test.
    await sleep(SESSION_AGE_MS);
    for (let i = 0; i < CALLS; i++) {
      for (const tool of ['echo', 'get-env']) {
        await streamable.post(call(tool, `s-${tool}-${i}`));
        await legacy.post(call(tool, `l-${tool}-${i}`));
      }
    }
    await legacy.answersTo(
      Array.from({ length: CALLS }, (_, i) => [`l-echo-${i}`, `l-get-env-${i}`]).flat(),
    );
    legacy.close();
    await gateway.flush();

    const decoded = gateway.events.map((event: McpEvent) => {
      const result = decodeEventObject(event);
      if (!result.ok) throw new Error(result.reason);
      return result.event;
    });
    await new BatchWriter(store, logger).write(decoded);
  }, 30_000);

  afterAll(async () => {
    await store?.close();
    dir?.remove();
    await gateway?.stop();
  });

  it('stores each refused call with its own short duration, not the session’s age', async () => {
    const age = performance.now() - opened;
    expect(age).toBeGreaterThan(SESSION_AGE_MS);
    const { events } = await queries.events({ namespace: 'stdio', tool: 'get-env' }, 1000);
    const refused = events.filter((e) => e.direction === 'client_to_server');
    expect(refused).toHaveLength(2 * CALLS);
    for (const event of refused) {
      expect(event).toMatchObject({ outcome: 'denied_tool', kind: 'request' });
      expect(event.duration_ms).not.toBeNull();
      expect(event.duration_ms!).toBeLessThan(1_000);
    }
  });

  it('counts them as rejected, not errors, and they leave p95 where the delivered calls put it', async () => {
    const summary = await queries.summary({ namespace: 'stdio' });
    expect(summary).toMatchObject({ rejected: 2 * CALLS, errors: 0, error_rate: 0 });
    // Sixteen refusals of ~40 requests: had they carried the sessions' age (over 1.5 s), p95
    // would be at least that.
    expect(summary.p95_ms).toBeLessThan(1_000);
    expect(summary.p99_ms).toBeLessThan(1_000);
    const tools = await queries.tools({ namespace: 'stdio' }, 10);
    expect(tools.find((t) => t.tool === 'get-env')).toMatchObject({
      calls: 2 * CALLS,
      rejected: 2 * CALLS,
      errors: 0,
    });
    expect(tools.find((t) => t.tool === 'get-env')!.p95_ms).toBeLessThan(1_000);
    // The tool's histogram has every refusal below a second.
    const { buckets } = await queries.histogram({ namespace: 'stdio', tool: 'get-env' });
    const counted = buckets.filter((b) => b.requests > 0);
    expect(counted.reduce((sum, b) => sum + b.requests, 0)).toBe(2 * CALLS);
    for (const bucket of counted) expect(bucket.upper_ms).not.toBeNull();
    for (const bucket of counted) expect(bucket.upper_ms!).toBeLessThanOrEqual(1_000);
  });
});
