import type { McpEvent } from '#common';
import { AnalyticsQueries } from '../src/api/analytics-queries.js';
import { BatchWriter } from '../src/ingest/batch-writer.js';
import { decodeEventObject } from '../src/ingest/event-decoder.js';
import { EventStore } from '../src/storage/event-store.js';
import { makeEvent, makeRejectionCount, memoryLogger, tempDir, type TempDir } from './fixtures.js';

const T0 = Date.UTC(2025, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

// Three requests with a key, a response (not a request), and the edge's per-minute row of 250
// requests rejected without a valid credential (SPEC §7 v2) in the first minute.
const REJECTED = makeRejectionCount(250, { id: 'rejected-search-0', ts: at(30) });
const EVENTS: McpEvent[] = [
  makeEvent({ id: 'r1', ts: at(10), key_id: 'alice', tool: 'web', duration_ms: 10 }),
  makeEvent({
    id: 'r2',
    ts: at(20),
    key_id: 'alice',
    tool: 'web',
    outcome: 'tool_error',
    duration_ms: 20,
  }),
  makeEvent({
    id: 'r3',
    ts: at(70),
    key_id: 'bob',
    method: 'tools/list',
    tool: null,
    duration_ms: 30,
  }),
  makeEvent({
    id: 'a1',
    ts: at(11),
    key_id: 'alice',
    direction: 'server_to_client',
    kind: 'response',
    duration_ms: 999,
  }),
  REJECTED,
];

/** The two ways events reach the store: JetStream bodies (parsed by DuckDB) and objects. */
const PATHS: Array<[string, (writer: BatchWriter, events: McpEvent[]) => Promise<number>]> = [
  [
    'as JetStream bodies',
    async (writer, events) =>
      (await writer.writeDocuments(events.map((e) => JSON.stringify(e)))).inserted,
  ],
  [
    'as validated objects (standalone)',
    async (writer, events) =>
      (
        await writer.write(
          events.map((e) => {
            const decoded = decodeEventObject(e);
            if (!decoded.ok) throw new Error(decoded.reason);
            return decoded.event;
          }),
        )
      ).inserted,
  ],
];

describe.each(PATHS)('a per-minute row of rejected requests stored %s', (_name, store) => {
  let dir: TempDir;
  let events: EventStore;
  let writer: BatchWriter;
  let queries: AnalyticsQueries;
  const { logger } = memoryLogger();

  beforeAll(async () => {
    dir = tempDir();
    events = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    writer = new BatchWriter(events, logger);
    queries = new AnalyticsQueries(events);
    expect(await store(writer, EVENTS)).toBe(EVENTS.length);
  });

  afterAll(async () => {
    await events.close();
    dir.remove();
  });

  it('counts as the requests it stands for, all rejected: none is an error', async () => {
    expect(await queries.summary({})).toEqual({
      requests: 253,
      rejected: 250,
      errors: 1,
      // Of the three requests let through, one failed.
      error_rate: 1 / 3,
      tool_calls: 2,
      unique_keys: 2,
      // Over the three requests' durations only: the row has none of its own.
      p50_ms: 20,
      p95_ms: 29,
      p99_ms: 29.8,
    });
  });

  it('counts the same per namespace, per minute, and per key in the keyless row', async () => {
    expect(await queries.namespaces({})).toEqual([
      {
        namespace: 'search',
        requests: 253,
        rejected: 250,
        errors: 1,
        error_rate: 1 / 3,
        p95_ms: 29,
      },
    ]);
    expect(
      await queries.timeseries({ from: new Date(at(0)), to: new Date(at(120)) }, '1m'),
    ).toEqual([
      { ts: at(0), requests: 252, rejected: 250, errors: 1, p95_ms: 19.5 },
      { ts: at(60), requests: 1, rejected: 0, errors: 0, p95_ms: 30 },
    ]);
    expect(
      (await queries.keys({})).map(({ key_id, requests, rejected, errors }) => ({
        key_id,
        requests,
        rejected,
        errors,
      })),
    ).toEqual([
      { key_id: 'alice', requests: 2, rejected: 0, errors: 1 },
      { key_id: 'bob', requests: 1, rejected: 0, errors: 0 },
      { key_id: null, requests: 250, rejected: 250, errors: 0 },
    ]);
    expect((await queries.tools({}, 10)).map((t) => [t.tool, t.calls])).toEqual([['web', 2]]);
  });

  it('is returned by the events endpoint with its count and client network', async () => {
    const { events: page } = await queries.events({}, 10);
    expect(page.find((e) => e.id === REJECTED.id)).toEqual(REJECTED);
  });

  it('is stored once when redelivered', async () => {
    expect(await store(writer, [REJECTED, EVENTS[0]])).toBe(0);
    expect((await queries.summary({})).requests).toBe(253);
  });
});

describe('percentiles next to per-minute rows of rejected requests', () => {
  it('sample the timed requests, however many requests the rows stand for', async () => {
    const dir = tempDir();
    const { logger } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      // Had the sample been sized by the group's requests (a billion and a hundred), it would
      // keep ~1/65536 of the timed ones: none of these hundred.
      const timed = Array.from({ length: 100 }, (_, i) =>
        makeEvent({ ts: at(i), duration_ms: i + 1 }),
      );
      await new BatchWriter(store, logger).writeDocuments(
        [makeRejectionCount(1_000_000_000, { ts: at(0) }), ...timed].map((e) => JSON.stringify(e)),
      );
      const summary = await new AnalyticsQueries(store).summary({});
      expect(summary).toMatchObject({ requests: 1_000_000_100, p50_ms: 50.5, p99_ms: 99.01 });
    } finally {
      await store.close();
      dir.remove();
    }
  });
});
