import { DuckDBInstance } from '@duckdb/node-api';
import { EVENT_COLUMNS } from '#common';
import {
  makeEvent,
  makeListing,
  makeRejectionCount,
  memoryLogger,
  tempDir,
  type TempDir,
} from '../../test/fixtures.js';
import { AnalyticsQueries } from '../api/analytics-queries.js';
import { decodeEventObject } from '../ingest/event-decoder.js';
import { EventStore } from './event-store.js';
import { createTableSql, EVENTS_TABLE, REQUESTS_TABLE } from './schema.js';

// The schema of the version before v2, as its files hold it (copied, not derived: it must not
// follow the current schema).
const V1_EVENTS_DDL = `CREATE TABLE events (
  "id" VARCHAR NOT NULL, "ts" TIMESTAMPTZ NOT NULL, "edge_id" VARCHAR, "request_id" VARCHAR,
  "tenant" VARCHAR, "key_id" VARCHAR, "user" VARCHAR, "namespace" VARCHAR NOT NULL,
  "transport" VARCHAR NOT NULL, "protocol_version" VARCHAR, "session_id" VARCHAR,
  "direction" VARCHAR NOT NULL, "kind" VARCHAR, "jsonrpc_id" VARCHAR, "method" VARCHAR,
  "tool" VARCHAR, "outcome" VARCHAR NOT NULL, "http_status" INTEGER, "error_code" VARCHAR,
  "duration_ms" DOUBLE, "upstream_ms" DOUBLE, "bytes_in" BIGINT, "bytes_out" BIGINT,
  "client_name" VARCHAR, "client_version" VARCHAR
)`;
const V1_REQUESTS_DDL = `CREATE TABLE requests (
  ts TIMESTAMPTZ NOT NULL, namespace VARCHAR NOT NULL, tenant VARCHAR, key_id VARCHAR,
  tool VARCHAR, is_tool_call BOOLEAN NOT NULL, is_error BOOLEAN NOT NULL, duration_ms DOUBLE,
  sample USMALLINT NOT NULL
)`;
const V1_EVENTS = `INSERT INTO events (id, ts, namespace, transport, direction, kind, "method", tool,
  outcome, http_status, key_id, tenant, duration_ms) VALUES
  ('v1-call', '2025-01-01T00:00:00Z', 'search', 'streamable', 'client_to_server', 'request',
    'tools/call', 'web', 'ok', 200, 'alice', 'acme', 10),
  ('v1-reply', '2025-01-01T00:00:01Z', 'search', 'streamable', 'server_to_client', 'response',
    'tools/call', 'web', 'ok', 200, 'alice', 'acme', NULL),
  ('v1-rejected', '2025-01-01T00:00:02Z', 'search', 'streamable', 'client_to_server', NULL,
    NULL, NULL, 'unauthorized', 401, NULL, NULL, 1)`;
const V1_REQUESTS = `INSERT INTO requests
  SELECT ts, namespace, tenant, key_id, tool, coalesce("method" = 'tools/call', false),
    outcome <> 'ok', duration_ms, (hash(id) % 65536)::USMALLINT
  FROM events WHERE (direction = 'client_to_server' AND kind = 'request') OR kind IS NULL`;

async function writeFile(path: string, statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  try {
    for (const sql of statements) await connection.run(sql);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

function decoded(event = makeEvent()) {
  const result = decodeEventObject(event);
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

describe('opening a file of the version before v2', () => {
  let dir: TempDir;
  let store: EventStore | undefined;

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    dir.remove();
  });

  it('adds the v2 columns, reads the old rows as one request each, and takes new events', async () => {
    const path = dir.file('v1.duckdb');
    await writeFile(path, [V1_EVENTS_DDL, V1_REQUESTS_DDL, V1_EVENTS, V1_REQUESTS]);
    const { logger, lines } = memoryLogger();
    store = await EventStore.open(path, { logger });

    const columns = await store.query(
      `SELECT table_name, column_name, is_nullable FROM duckdb_columns()
       WHERE table_name IN ('events', 'requests') ORDER BY table_name, column_index`,
    );
    const of = (table: string) => columns.filter((c) => c.table_name === table);
    expect(of('events').map((c) => c.column_name)).toEqual([...EVENT_COLUMNS]);
    expect(
      of('events')
        .filter((c) => !c.is_nullable)
        .map((c) => c.column_name),
    ).toEqual(expect.arrayContaining(['auth_method', 'count']));
    expect(of('requests').slice(-4)).toEqual([
      expect.objectContaining({ column_name: 'count', is_nullable: false }),
      expect.objectContaining({ column_name: 'is_rejected', is_nullable: false }),
      expect.objectContaining({ column_name: 'server', is_nullable: true }),
      expect.objectContaining({ column_name: 'client_tool', is_nullable: true }),
    ]);

    expect(
      await store.query(
        'SELECT id, "count", auth_method, server, client_tool, client_network FROM events ORDER BY id',
      ),
    ).toEqual(
      ['v1-call', 'v1-rejected', 'v1-reply'].map((id) => ({
        id,
        count: 1,
        auth_method: id === 'v1-rejected' ? 'none' : 'key',
        server: null,
        client_tool: null,
        client_network: null,
      })),
    );
    const queries = new AnalyticsQueries(store);
    // The v1 row of the rejected request said is_error; refilled from events it is rejected.
    expect(await queries.summary({})).toMatchObject({
      requests: 2,
      rejected: 1,
      errors: 0,
      p95_ms: 9.55,
    });
    expect((await queries.keys({}))[0]).toMatchObject({ key_id: 'alice', requests: 1 });
    // Its rows could not say whether they were rejected: the migration refilled the table from
    // events, so the start-up check found nothing to rebuild.
    const migrated = lines.filter((line) => line.includes('migrated table'));
    expect(migrated.find((line) => line.includes('"table":"requests"'))).toContain(
      '"refilled":true',
    );
    expect(lines.join('')).not.toContain('rebuilt the requests table');

    // New events go in by both paths, a per-minute row of rejections counting 250.
    const rejected = makeRejectionCount(250, { ts: '2025-01-01T00:01:30.000Z' });
    expect(await store.insertDocuments([JSON.stringify(rejected)])).toBe(1);
    expect(await store.insertBatch([decoded(makeEvent({ ts: '2025-01-01T00:02:00.000Z' }))])).toBe(
      1,
    );
    expect(await queries.summary({})).toMatchObject({ requests: 253, rejected: 251, errors: 0 });
    const [newest] = (await queries.events({}, 1)).events;
    expect(newest).toMatchObject({ auth_method: 'key', count: 1 });

    // Migrated once: opening it again changes nothing.
    expect(lines.filter((line) => line.includes('migrated table'))).toHaveLength(2);
    await store.close();
    store = await EventStore.open(path, { logger });
    expect(lines.filter((line) => line.includes('migrated table'))).toHaveLength(2);
    expect((await new AnalyticsQueries(store).summary({})).requests).toBe(253);
  });

  it('finishes a file whose v2 columns were added but not filled', async () => {
    // As the previous version's own additive migration leaves them (nullable, null), or a crash
    // between filling the columns and constraining them.
    const path = dir.file('half.duckdb');
    await writeFile(path, [
      V1_EVENTS_DDL,
      V1_REQUESTS_DDL,
      V1_EVENTS,
      V1_REQUESTS,
      ...['server', 'auth_method', 'client_tool', 'client_network'].map(
        (c) => `ALTER TABLE events ADD COLUMN "${c}" VARCHAR`,
      ),
      'ALTER TABLE events ADD COLUMN "count" INTEGER',
      'ALTER TABLE requests ADD COLUMN "count" INTEGER',
    ]);
    store = await EventStore.open(path, { logger: memoryLogger().logger });
    expect(await store.query('SELECT id, "count", auth_method FROM events ORDER BY id')).toEqual([
      { id: 'v1-call', count: 1, auth_method: 'key' },
      { id: 'v1-rejected', count: 1, auth_method: 'none' },
      { id: 'v1-reply', count: 1, auth_method: 'key' },
    ]);
    expect(await new AnalyticsQueries(store).summary({})).toMatchObject({
      requests: 2,
      rejected: 1,
      errors: 0,
    });
  });

  it('refills a v2 file from before `rejected`, whose requests rows counted every refusal as an error', async () => {
    const path = dir.file('v2.duckdb');
    await writeFile(path, [
      V1_EVENTS_DDL,
      V1_REQUESTS_DDL,
      ...['server', 'auth_method', 'client_tool', 'client_network'].map(
        (c) => `ALTER TABLE events ADD COLUMN "${c}" VARCHAR`,
      ),
      'ALTER TABLE events ADD COLUMN "count" INTEGER DEFAULT 1',
      'ALTER TABLE requests ADD COLUMN "count" INTEGER DEFAULT 1',
      V1_EVENTS,
      // Two more as the previous v2 stored them: a per-minute row of 40 refusals, a hidden tool.
      `INSERT INTO events (id, ts, namespace, transport, direction, kind, outcome, auth_method, "count")
       VALUES ('v2-knock', '2025-01-01T00:00:00Z', 'search', 'streamable', 'client_to_server', NULL,
         'unauthorized', 'none', 40)`,
      `INSERT INTO events (id, ts, namespace, transport, direction, kind, "method", tool, outcome,
         key_id, auth_method, duration_ms)
       VALUES ('v2-denied', '2025-01-01T00:00:03Z', 'search', 'stdio', 'client_to_server', 'request',
         'tools/call', 'get-env', 'denied_tool', 'alice', 'key', 0.4)`,
      `UPDATE events SET auth_method = CASE WHEN key_id IS NULL THEN 'none' ELSE 'key' END
       WHERE auth_method IS NULL`,
      `INSERT INTO requests
        SELECT ts, namespace, tenant, key_id, tool, coalesce("method" = 'tools/call', false),
          outcome <> 'ok', CASE WHEN "count" = 1 THEN duration_ms END,
          (hash(id) % 65536)::USMALLINT, "count"
        FROM events WHERE (direction = 'client_to_server' AND kind = 'request') OR kind IS NULL`,
    ]);
    const { logger, lines } = memoryLogger();
    store = await EventStore.open(path, { logger });
    const queries = new AnalyticsQueries(store);
    expect(await queries.summary({})).toMatchObject({
      requests: 43,
      rejected: 42,
      errors: 0,
      error_rate: 0,
    });
    expect(await queries.tools({}, 10)).toEqual([
      expect.objectContaining({ tool: 'get-env', calls: 1, rejected: 1, errors: 0 }),
      expect.objectContaining({ tool: 'web', calls: 1, rejected: 0, errors: 0 }),
    ]);
    expect(lines.filter((line) => line.includes('"refilled":true'))).toHaveLength(1);
    // Opening it again changes nothing.
    await store.close();
    store = await EventStore.open(path, { logger });
    expect(lines.filter((line) => line.includes('migrated table'))).toHaveLength(2);
    expect((await new AnalyticsQueries(store).summary({})).rejected).toBe(42);
  });

  it('refills the requests of a file from before virtual servers, so their stored calls filter by server', async () => {
    // Edges published `server` and `client_tool` before `requests` kept them: only events hold them.
    const path = dir.file('before-servers.duckdb');
    const earlier = REQUESTS_TABLE.columns.filter(
      (c) => !['server', 'client_tool'].includes(c.name),
    );
    await writeFile(path, [
      createTableSql(EVENTS_TABLE),
      createTableSql({ ...REQUESTS_TABLE, columns: earlier }),
      `INSERT INTO events (id, ts, namespace, transport, direction, kind, "method", tool, outcome,
         key_id, auth_method, "count", server, client_tool)
       VALUES ('routed', '2025-01-01T00:00:00Z', 'files', 'streamable', 'client_to_server',
           'request', 'tools/call', 'read', 'ok', 'alice', 'key', 1, NULL, NULL),
         ('virtual', '2025-01-01T00:00:01Z', 'files', 'streamable', 'client_to_server',
           'request', 'tools/call', 'read', 'ok', 'alice', 'key', 1, 'assistant', 'files_read')`,
      `INSERT INTO requests BY NAME
        SELECT ts, namespace, tenant, key_id, tool, true AS is_tool_call, false AS is_error,
          duration_ms, (hash(id) % 65536)::USMALLINT AS sample, "count", false AS is_rejected
        FROM events`,
    ]);
    const { logger, lines } = memoryLogger();
    store = await EventStore.open(path, { logger });
    const migrated = lines.find((line) => line.includes('migrated table'));
    expect(migrated).toContain('"added":["server","client_tool"]');
    expect(migrated).toContain('"refilled":true');
    const queries = new AnalyticsQueries(store);
    expect(await queries.summary({})).toMatchObject({ requests: 2, tool_calls: 2 });
    expect(await queries.summary({ server: 'assistant' })).toMatchObject({
      requests: 1,
      tool_calls: 1,
    });
    expect(await queries.servers({})).toEqual([expect.objectContaining({ server: 'assistant' })]);
  });

  it('adds tools_listed and detail to a v2 file from before them, and takes listings by both paths', async () => {
    // The v2 schema just before these two columns: the current one without them.
    const path = dir.file('v2-before-listings.duckdb');
    const earlier = EVENTS_TABLE.columns.filter(
      (c) => !['tools_listed', 'detail'].includes(c.name),
    );
    await writeFile(path, [
      createTableSql({ ...EVENTS_TABLE, columns: earlier }),
      createTableSql(REQUESTS_TABLE),
      `INSERT INTO events (id, ts, namespace, transport, direction, kind, "method", tool, outcome,
         key_id, auth_method, "count")
       VALUES ('v2-call', '2025-01-01T00:00:00Z', 'search', 'streamable', 'client_to_server',
         'request', 'tools/call', 'web', 'ok', 'alice', 'key', 1)`,
    ]);
    const { logger, lines } = memoryLogger();
    store = await EventStore.open(path, { logger });
    const added = await store.query(
      `SELECT column_name, data_type, is_nullable FROM duckdb_columns()
       WHERE table_name = 'events' ORDER BY column_index`,
    );
    expect(added.slice(-2)).toEqual([
      {
        column_name: 'tools_listed',
        data_type: 'STRUCT(tool VARCHAR, tokens INTEGER)[]',
        is_nullable: true,
      },
      { column_name: 'detail', data_type: 'VARCHAR', is_nullable: true },
    ]);
    expect(lines.find((line) => line.includes('migrated table'))).toContain(
      '"added":["tools_listed","detail"]',
    );
    expect(await store.query('SELECT tools_listed, detail FROM events')).toEqual([
      { tools_listed: null, detail: null },
    ]);

    const listing = makeListing({ web: 120 }, { ts: '2025-01-01T00:01:00.000Z' });
    expect(await store.insertDocuments([JSON.stringify(listing)])).toBe(1);
    const checked = makeListing({ web: 130 }, { ts: '2025-01-01T00:02:00.000Z' });
    expect(await store.insertBatch([decoded(checked)])).toBe(1);
    const { tools } = await new AnalyticsQueries(store).context({});
    expect(tools).toEqual([
      {
        namespace: 'search',
        tool: 'web',
        tokens: 130,
        calls: 1,
        keys_listing: 1,
        keys_calling: 1,
        listings: 2,
      },
    ]);
  });
});
