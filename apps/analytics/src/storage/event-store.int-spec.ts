import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { decodeEventObject, type DecodedEvent } from '../ingest/event-decoder.js';
import { BatchWriter } from '../ingest/batch-writer.js';
import { makeEvent, memoryLogger, tempDir, testConfig, type TempDir } from '../../test/fixtures.js';
import { DatabaseLockedError, EventStore, QueryTimeoutError } from './event-store.js';
import { RetentionJob } from './retention.js';

function decoded(event = makeEvent()): DecodedEvent {
  const result = decodeEventObject(event);
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

async function rowCount(store: EventStore): Promise<{ rows: number; ids: number }> {
  const [row] = await store.query(
    'SELECT count(*)::INTEGER AS rows, count(DISTINCT id)::INTEGER AS ids FROM events',
  );
  return { rows: Number(row.rows), ids: Number(row.ids) };
}

describe('EventStore', () => {
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

  it('creates the events table with exactly the event columns and their types', async () => {
    const columns = await store.query(
      "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'events' ORDER BY column_index",
    );
    expect(columns.map((c) => c.column_name)).toEqual(Object.keys(makeEvent()));
    const types: Record<string, unknown> = Object.fromEntries(
      columns.map((c) => [c.column_name as string, c.data_type]),
    );
    expect(types).toMatchObject({
      ts: 'TIMESTAMP WITH TIME ZONE',
      http_status: 'INTEGER',
      duration_ms: 'DOUBLE',
      bytes_in: 'BIGINT',
      id: 'VARCHAR',
    });
  });

  it('stores a batch with every field intact', async () => {
    const event = makeEvent({
      ts: '2025-03-01T10:00:00.123456Z',
      user: 'bob',
      method: 'tools/call',
      bytes_out: 2 ** 40,
    });
    expect(await store.insertBatch([decoded(event)])).toBe(1);
    const [row] = await store.query(
      'SELECT strftime(ts, \'%Y-%m-%dT%H:%M:%S.%fZ\') AS ts, "user", "method", bytes_out, duration_ms FROM events',
    );
    expect(row).toEqual({
      ts: '2025-03-01T10:00:00.123456Z',
      user: 'bob',
      method: 'tools/call',
      bytes_out: 2n ** 40n,
      duration_ms: 10,
    });
  });

  it('stores absent optional fields as NULL', async () => {
    const { tool: _tool, bytes_in: _bytes, user: _user, ...partial } = makeEvent();
    const result = decodeEventObject(partial);
    if (!result.ok) throw new Error(result.reason);
    await store.insertBatch([result.event]);
    expect(await store.query('SELECT tool, bytes_in, "user" FROM events')).toEqual([
      { tool: null, bytes_in: null, user: null },
    ]);
  });

  it('stores an event once however often it is delivered, within a batch and across batches', async () => {
    const events = Array.from({ length: 1_000 }, (_, i) =>
      decoded(makeEvent({ ts: new Date(Date.UTC(2025, 0, 1) + i).toISOString() })),
    );
    const withInnerDuplicates = [...events.slice(0, 600), ...events.slice(0, 100)];
    expect(await store.insertBatch(withInnerDuplicates)).toBe(600);
    // A redelivery overlapping what is stored, as after a crash between commit and ack.
    expect(await store.insertBatch(events.slice(500))).toBe(400);
    expect(await store.insertBatch(events)).toBe(0);
    expect(await rowCount(store)).toEqual({ rows: 1_000, ids: 1_000 });
  });

  it('still recognises duplicates after the file is closed and reopened', async () => {
    const events = Array.from({ length: 50 }, () => decoded());
    await store.insertBatch(events);
    await store.close();
    store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    expect(await store.insertBatch(events)).toBe(0);
    expect(await rowCount(store)).toEqual({ rows: 50, ids: 50 });
  });

  it('refuses to open a file another process holds, saying so clearly', async () => {
    const path = dir.file('shared.duckdb');
    // A second process holding the file, as a second analytics instance would.
    const holder: ChildProcess = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { DuckDBInstance } from '@duckdb/node-api';
         await DuckDBInstance.create(${JSON.stringify(path)});
         process.stdout.write('open\\n');
         setInterval(() => {}, 1000);`,
      ],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(holder.stdout!, 'data');
      const opening = EventStore.open(path, { logger });
      await expect(opening).rejects.toBeInstanceOf(DatabaseLockedError);
      await expect(opening).rejects.toThrow(/already in use \(locked by .*PID \d+\).*only writer/);
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    // Once the other process is gone the file opens.
    const reopened = await EventStore.open(path, { logger });
    await reopened.close();
  });

  it('interrupts a read query past its deadline and frees the connection', async () => {
    const quick = await EventStore.open(dir.file('deadline.duckdb'), {
      logger,
      readConnections: 1,
      queryTimeoutMs: 100,
    });
    try {
      const started = Date.now();
      await expect(
        quick.query('SELECT sum(i * i) FROM range(1000000000000) t(i)'),
      ).rejects.toBeInstanceOf(QueryTimeoutError);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await quick.query('SELECT 42 AS answer')).toEqual([{ answer: 42 }]);
    } finally {
      await quick.close();
    }
  });

  it('refuses a second open of the same file in this process', async () => {
    await expect(EventStore.open(dir.file('analytics.duckdb'), { logger })).rejects.toThrow(
      /already in use \(it is already open in this process\)/,
    );
  });
});

describe('RetentionJob', () => {
  it('deletes events older than retention_days and keeps the rest', async () => {
    const dir = tempDir();
    const { logger } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const now = Date.UTC(2025, 5, 1);
      const daysAgo = (days: number) => new Date(now - days * 86_400_000).toISOString();
      await store.insertBatch(
        [daysAgo(40), daysAgo(31), daysAgo(29), daysAgo(1)].map((ts) => decoded(makeEvent({ ts }))),
      );
      const job = new RetentionJob(store, testConfig(30), logger, 3_600_000, () => now);
      expect(await job.runOnce()).toBe(2);
      expect(await rowCount(store)).toEqual({ rows: 2, ids: 2 });
      const [oldest] = await store.query('SELECT min(ts) >= $1::TIMESTAMPTZ AS kept FROM events', [
        daysAgo(30),
      ]);
      expect(oldest.kept).toBe(true);
      expect(await job.runOnce()).toBe(0);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});

describe('BatchWriter', () => {
  it('isolates an event the database refuses and stores the rest of its batch', async () => {
    const dir = tempDir();
    const { logger, lines } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const writer = new BatchWriter(store, logger);
      // Bypasses the decoder on purpose: a document without ts violates NOT NULL.
      const poison: DecodedEvent = {
        id: 'poison',
        tsMs: Date.now(),
        doc: JSON.stringify({ id: 'poison', namespace: 'x' }),
      };
      const good = Array.from({ length: 5 }, () => decoded());
      const result = await writer.write([good[0], good[1], poison, good[2], good[3], good[4]]);
      expect(result).toEqual({ inserted: 5, rejected: [poison] });
      expect(await rowCount(store)).toEqual({ rows: 5, ids: 5 });
      expect(lines.join('')).toContain('event refused by the database');
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it('throws, storing nothing, when every event fails (the database is at fault, not the data)', async () => {
    const dir = tempDir();
    const { logger } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    const writer = new BatchWriter(store, logger);
    const events = [decoded(), decoded()];
    await store.close();
    try {
      await expect(writer.write(events)).rejects.toThrow(/closed/);
      expect(writer.stats.failedBatches).toBe(1);
    } finally {
      dir.remove();
    }
  });
});
