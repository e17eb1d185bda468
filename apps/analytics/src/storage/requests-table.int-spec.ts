import { makeEvent, memoryLogger, tempDir, type TempDir } from '../../test/fixtures.js';
import { AnalyticsQueries } from '../api/analytics-queries.js';
import { EXACT_QUANTILE_LIMIT } from '../api/sampled-quantiles.js';
import { decodeEventObject, type DecodedEvent } from '../ingest/event-decoder.js';
import { EventStore } from './event-store.js';

function decoded(overrides: Parameters<typeof makeEvent>[0]): DecodedEvent {
  const result = decodeEventObject(makeEvent(overrides));
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

async function requestCounts(store: EventStore): Promise<{ events: number; requests: number }> {
  const [row] = await store.query(
    `SELECT (SELECT count(*) FROM events WHERE direction = 'client_to_server' AND kind = 'request')::INTEGER AS events,
            (SELECT count(*) FROM requests)::INTEGER AS requests`,
  );
  return { events: Number(row.events), requests: Number(row.requests) };
}

describe('the requests table', () => {
  let dir: TempDir;
  let store: EventStore;
  const { logger } = memoryLogger();

  beforeEach(async () => {
    dir = tempDir();
    store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
  });

  afterEach(async () => {
    await store.close();
    dir.remove();
  });

  it('holds each stored request once, and no responses, across redelivery', async () => {
    const batch = [
      decoded({}),
      decoded({ direction: 'server_to_client', kind: 'response' }),
      decoded({}),
    ];
    await store.insertBatch(batch);
    await store.insertBatch(batch);
    expect(await requestCounts(store)).toEqual({ events: 2, requests: 2 });
  });

  it('is rebuilt at open when events were written without it', async () => {
    await store.insertBatch([decoded({})]);
    // Another tool (the repo-wide bench) fills `events` directly while the service is down.
    await store.query(
      `INSERT INTO events BY NAME SELECT uuid()::VARCHAR AS id, now() AS ts, 'ns' AS namespace,
         'streamable' AS transport, 'client_to_server' AS direction, 'request' AS kind, 'ok' AS outcome,
         'key' AS auth_method
       FROM range(5)`,
    );
    await store.close();
    store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    expect(await requestCounts(store)).toEqual({ events: 6, requests: 6 });
    expect((await new AnalyticsQueries(store).summary({})).requests).toBe(6);
  });

  it('loses the requests retention deletes', async () => {
    await store.insertBatch([
      decoded({ ts: '2000-01-01T00:00:00.000Z' }),
      decoded({ ts: new Date().toISOString() }),
    ]);
    await store.deleteOlderThan(new Date('2001-01-01T00:00:00.000Z'));
    expect(await requestCounts(store)).toEqual({ events: 1, requests: 1 });
  });

  it('gives percentiles over a sample within the documented error beyond the exact limit', async () => {
    // 5x the exact limit, durations 0..n-1 shuffled: the exact p-quantile is p × (n - 1).
    const n = EXACT_QUANTILE_LIMIT * 5;
    const start = Date.parse('2025-01-01T00:00:00.000Z');
    const events = Array.from({ length: n }, (_, i) =>
      decoded({ ts: new Date(start + i).toISOString(), duration_ms: (i * 7919) % n }),
    );
    for (let i = 0; i < n; i += 5_000) await store.insertBatch(events.slice(i, i + 5_000));
    const summary = await new AnalyticsQueries(store).summary({});
    expect(summary.requests).toBe(n);
    // Rank error: 4 standard deviations of sqrt(q(1-q)/EXACT_QUANTILE_LIMIT), in ranks of n.
    for (const [q, value] of [
      [0.5, summary.p50_ms],
      [0.95, summary.p95_ms],
      [0.99, summary.p99_ms],
    ]) {
      const tolerance = 4 * Math.sqrt((q * (1 - q)) / EXACT_QUANTILE_LIMIT) * n;
      expect(Math.abs(value - q * (n - 1))).toBeLessThan(tolerance);
    }
  });
});
