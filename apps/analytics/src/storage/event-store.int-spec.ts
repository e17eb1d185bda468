import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  decodeEventMessage,
  decodeEventObject,
  type DecodedEvent,
} from '../ingest/event-decoder.js';
import { BatchWriter } from '../ingest/batch-writer.js';
import { type McpEvent, TOOL_DRIFT_METHOD } from '#common';
import {
  makeEvent,
  makeListing,
  makeRejectionCount,
  memoryLogger,
  preListingEvent,
  preV2Event,
  tempDir,
  testConfig,
  type TempDir,
} from '../../test/fixtures.js';
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

  describe('a per-minute count published again as it grows', () => {
    const minute = '2025-04-01T10:00:00.000Z';
    const versions = (id: string, network: string, counts: number[]) =>
      counts.map((count) =>
        makeRejectionCount(count, {
          id,
          ts: minute,
          client_network: network,
          bytes_in: count * 10,
        }),
      );

    /**
     * Three groups of one minute and namespace. The second's id falls in the first's sample
     * bucket, so while both count alike their requests rows are equal in every column.
     */
    async function groups() {
      const [twin] = await store.query(
        `SELECT 'group-' || i AS id FROM range(1, 1000000) t(i)
         WHERE hash('group-a') % 65536 = hash('group-' || i) % 65536 LIMIT 1`,
      );
      return [
        versions('group-a', '203.0.113.1', [1, 4, 9]),
        versions(twin.id as string, '203.0.113.2', [1, 4]),
        versions('group-c', '203.0.113.3', [2, 3]),
      ];
    }

    async function stored(): Promise<unknown> {
      const events = await store.query(
        'SELECT "count"::INTEGER AS n, bytes_in::INTEGER AS bytes FROM events ORDER BY n',
      );
      const requests = await store.query('SELECT "count"::INTEGER AS n FROM requests ORDER BY n');
      return { events, requests: requests.map((r) => r.n) };
    }
    const expected = {
      events: [
        { n: 3, bytes: 30 },
        { n: 4, bytes: 40 },
        { n: 9, bytes: 90 },
      ],
      requests: [3, 4, 9],
    };

    it('keeps one row per group with its largest count, in events and requests, on both paths', async () => {
      const [a, b, c] = await groups();
      const doc = (e: McpEvent) => JSON.stringify(e);
      expect(await store.insertDocuments([doc(a[0]), doc(b[0]), doc(c[0])])).toBe(3);
      expect(await store.insertDocuments([doc(a[1]), doc(b[1])])).toBe(0);
      // The checked path: several versions of one id in a batch, the largest kept.
      expect(await store.insertBatch([...a, ...b, ...c].map((e) => decoded(e)))).toBe(0);
      expect(await stored()).toEqual(expected);
    });

    it('keeps the largest whatever the order and however often a version is redelivered', async () => {
      const [a, b, c] = await groups();
      // The first group grows from 4 to 9 when the second's last row is equal to its old one.
      const all = [a[0], b[0], c[0], c[1], b[1], a[1], a[2]].map((e) => JSON.stringify(e));
      // Growing one version at a time, then every version again, largest first.
      for (const doc of all) await store.insertDocuments([doc]);
      for (const doc of [...all].reverse()) await store.insertDocuments([doc]);
      expect(await stored()).toEqual(expected);
    });
  });

  describe('documents as received (DuckDB parses them, Node does not)', () => {
    const at = (i: number) => new Date(Date.UTC(2025, 1, 1) + i).toISOString();
    const docs = (count: number) =>
      Array.from({ length: count }, (_, i) => JSON.stringify(makeEvent({ ts: at(i) })));

    it('stores a well-formed batch with every field intact, then recognises it redelivered', async () => {
      const event = makeEvent({ ts: '2025-03-01T10:00:00.123456Z', bytes_out: 2 ** 40 });
      const batch = [JSON.stringify(event), ...docs(99)];
      expect(await store.insertDocuments(batch)).toBe(100);
      expect(await store.insertDocuments([...batch.slice(50), ...docs(120).slice(100)])).toBe(20);
      expect(await rowCount(store)).toEqual({ rows: 120, ids: 120 });
      const [row] = await store.query(
        "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts, bytes_out FROM events WHERE id = $1",
        [event.id],
      );
      expect(row).toEqual({ ts: '2025-03-01T10:00:00.123456Z', bytes_out: 2n ** 40n });
      // Every makeEvent is a client request: each has its row in the requests table too.
      const [requests] = await store.query('SELECT count(*)::INTEGER AS n FROM requests');
      expect(requests.n).toBe(120);
    });

    it.each([
      ['a document that is not JSON', 'not json'],
      ['a JSON array', '[1, 2]'],
      ['a missing key', JSON.stringify({ ...makeEvent(), tool: undefined })],
      ['a repeated key', JSON.stringify(makeEvent()).replace('{', '{"id":"other",')],
      ['text where a number belongs', JSON.stringify(makeEvent({ http_status: 'ok' as never }))],
      ['a date that does not exist', JSON.stringify(makeEvent({ ts: '2025-02-31T00:00:00Z' }))],
      ['an outcome outside SPEC §7', JSON.stringify(makeEvent({ outcome: 'fine' as never }))],
      ['an empty id', JSON.stringify(makeEvent({ id: '' }))],
      ['an http_status of 1000', JSON.stringify(makeEvent({ http_status: 1000 }))],
      [
        'an integer past 2^53',
        JSON.stringify(makeEvent()).replace('"bytes_in":', '"bytes_in":9007199254740993,"x":'),
      ],
    ])('hands the whole batch back for validation, storing nothing, on %s', async (_name, doc) => {
      expect(await store.insertDocuments([...docs(10), doc])).toBeNull();
      expect(await rowCount(store)).toEqual({ rows: 0, ids: 0 });
      // The store is left clean: the next batch goes in.
      expect(await store.insertDocuments(docs(10))).toBe(10);
    });

    it('stores a scalar of another JSON type as DuckDB converts it (the edge never sends one)', async () => {
      const event = makeEvent({ tenant: 5 as never, http_status: '201' as never });
      expect(await store.insertDocuments([JSON.stringify(event)])).toBe(1);
      expect(await store.query('SELECT tenant, http_status FROM events')).toEqual([
        { tenant: '5', http_status: 201 },
      ]);
    });

    it.each([
      ['a per-minute count of rejected requests', makeRejectionCount(250), true],
      ['the largest count', makeRejectionCount(1_000_000_000), true],
      ['a count past the bound', makeRejectionCount(1_000_000_001), false],
      ['a count past INTEGER', makeRejectionCount(3_000_000_000), false],
      ['a count of 0', makeEvent({ count: 0 }), false],
      ['a null count', makeEvent({ count: null as never }), false],
      ['an unknown auth_method', makeEvent({ auth_method: 'password' as never }), false],
      ['a null auth_method', makeEvent({ auth_method: null as never }), false],
      ['a server of 256 astral characters', makeEvent({ server: '😀'.repeat(256) }), true],
      ['a server of 257 astral characters', makeEvent({ server: '😀'.repeat(257) }), false],
      ['a client_tool of 257 characters', makeEvent({ client_tool: 'x'.repeat(257) }), false],
      ['a listing', makeListing({ web: 120, news: null }), true],
      ['an empty listing', makeListing({}), true],
      ['a null listing entry', makeEvent({ tools_listed: [null as never] }), false],
      [
        'a listing entry without a tool',
        makeEvent({ tools_listed: [{ tokens: 3 } as never] }),
        false,
      ],
      ['a listed tool name of 257 characters', makeListing({ ['x'.repeat(257)]: 1 }), false],
      ['negative tokens', makeListing({ web: -1 }), false],
      ['tokens past INTEGER', makeListing({ web: 2 ** 31 }), false],
      [
        'a listing of 10,001 tools',
        makeListing(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`t${i}`, 1]))),
        false,
      ],
      ['a detail of 16,384 astral characters', makeEvent({ detail: '😀'.repeat(16_384) }), true],
      ['a detail of 16,385 characters', makeEvent({ detail: 'd'.repeat(16_385) }), false],
    ])('agrees with the checked path on %s', async (_name, event, valid) => {
      const doc = JSON.stringify(event);
      expect(decodeEventMessage(doc).ok).toBe(valid);
      expect(await store.insertDocuments([doc])).toBe(valid ? 1 : null);
    });

    it('stores the tools of a listing and the detail of a drift by both paths, and answers them', async () => {
      const listing = makeListing({ web: 120, news: null }, { ts: '2025-03-01T10:00:00.000Z' });
      const drift = makeEvent({
        ts: '2025-03-01T10:00:01.000Z',
        direction: 'server_to_client',
        kind: 'notification',
        method: TOOL_DRIFT_METHOD,
        tool: 'web',
        detail: JSON.stringify({ previous_hash: 'sha256:a', hash: 'sha256:b', diff: '~ x' }),
      });
      expect(await store.insertDocuments([listing, drift].map((e) => JSON.stringify(e)))).toBe(2);
      // The checked path: a listing beside an event of an edge from before these fields.
      const checked = makeListing({ read: 7 }, { ts: '2025-03-01T10:00:02.000Z' });
      const older = preListingEvent({ ts: '2025-03-01T10:00:03.000Z' });
      const docs = [checked, older].map((e) => JSON.stringify(e));
      expect(await store.insertDocuments(docs)).toBeNull();
      expect(await store.insertBatch(docs.map((doc) => decoded(JSON.parse(doc) as never)))).toBe(2);
      expect(
        await store.query('SELECT id, tools_listed, detail FROM events ORDER BY ts', []),
      ).toEqual([
        { id: listing.id, tools_listed: listing.tools_listed, detail: null },
        { id: drift.id, tools_listed: null, detail: drift.detail },
        { id: checked.id, tools_listed: [{ tool: 'read', tokens: 7 }], detail: null },
        { id: older.id, tools_listed: null, detail: null },
      ]);
    });

    it('hands back a batch holding one event twice (the checked path keeps the first)', async () => {
      const batch = docs(5);
      expect(await store.insertDocuments([...batch, batch[2]])).toBeNull();
      expect(await rowCount(store)).toEqual({ rows: 0, ids: 0 });
    });
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
        count: 1,
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

  it('stores the valid events of a batch as received and counts and logs the invalid ones once', async () => {
    const dir = tempDir();
    const { logger, lines } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const writer = new BatchWriter(store, logger);
      const good = Array.from({ length: 4 }, () => makeEvent());
      const { tool: _tool, ...withoutTool } = makeEvent({ tool: 'kept-null' });
      const batch = [
        JSON.stringify(good[0]),
        'not json',
        JSON.stringify(good[1]),
        JSON.stringify(withoutTool),
        JSON.stringify({ ...good[2], http_status: '200' }),
        JSON.stringify(good[3]),
        JSON.stringify(good[3]),
      ];
      const result = await writer.writeDocuments(batch, (i) => ({ seq: 100 + i }));
      expect(result).toEqual({ inserted: 4, rejected: [] });
      expect(writer.stats).toMatchObject({ inserted: 4, invalid: 2, duplicates: 1 });
      expect(await rowCount(store)).toEqual({ rows: 4, ids: 4 });
      const [absent] = await store.query('SELECT tool FROM events WHERE id = $1', [withoutTool.id]);
      expect(absent).toEqual({ tool: null });
      const log = lines.join('');
      expect(log).toContain('"seq":101');
      expect(log).toContain('"seq":104');
      expect(log).toContain('http_status must be an integer or null');
      // The fast path, for comparison: nothing invalid, nothing counted.
      expect(await writer.writeDocuments([JSON.stringify(makeEvent())])).toEqual({
        inserted: 1,
        rejected: [],
      });
      expect(writer.stats).toMatchObject({ inserted: 5, invalid: 2 });
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it('stores the events of an edge from before v2 with their pre-v2 values, beside v2 events', async () => {
    const dir = tempDir();
    const { logger } = memoryLogger();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const writer = new BatchWriter(store, logger);
      const keyed = preV2Event({ id: 'old-keyed' });
      const rejected = preV2Event({
        id: 'old-rejected',
        key_id: null,
        kind: null,
        method: null,
        outcome: 'unauthorized',
      });
      // A body the checked path re-serialises (a nested key): absent fields become nulls there.
      const reserialised = JSON.stringify({ ...preV2Event({ id: 'old-nested' }), extra: { a: 1 } });
      const current = makeRejectionCount(7, { id: 'new-rejected' });
      const batch = [keyed, rejected, current].map((e) => JSON.stringify(e));
      expect(await store.insertDocuments(batch)).toBeNull();
      expect(await writer.writeDocuments([...batch, reserialised])).toEqual({
        inserted: 4,
        rejected: [],
      });
      expect(
        await store.query(
          'SELECT id, "count", auth_method, server, client_tool, client_network FROM events ORDER BY id',
        ),
      ).toEqual(
        [
          { id: 'new-rejected', count: 7, auth_method: 'none', client_network: '203.0.113.7' },
          { id: 'old-keyed', count: 1, auth_method: 'key', client_network: null },
          { id: 'old-nested', count: 1, auth_method: 'key', client_network: null },
          { id: 'old-rejected', count: 1, auth_method: 'none', client_network: null },
        ].map((row) => ({ server: null, client_tool: null, ...row })),
      );
      const [requests] = await store.query('SELECT sum("count")::INTEGER AS n FROM requests');
      expect(requests.n).toBe(1 + 1 + 1 + 7);
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
