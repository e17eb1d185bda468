import { DIRECTIONS, EVENT_COLUMNS, KINDS, type McpEvent, OUTCOMES, TRANSPORTS } from '#common';

export type EventColumn = (typeof EVENT_COLUMNS)[number];

/**
 * DuckDB type of every event column (SPEC §7). Keyed by the event's own fields, so adding a
 * field to McpEvent without a column here fails to compile.
 */
export const COLUMN_TYPES = {
  id: 'VARCHAR',
  ts: 'TIMESTAMPTZ',
  edge_id: 'VARCHAR',
  request_id: 'VARCHAR',
  tenant: 'VARCHAR',
  key_id: 'VARCHAR',
  user: 'VARCHAR',
  namespace: 'VARCHAR',
  transport: 'VARCHAR',
  protocol_version: 'VARCHAR',
  session_id: 'VARCHAR',
  direction: 'VARCHAR',
  kind: 'VARCHAR',
  jsonrpc_id: 'VARCHAR',
  method: 'VARCHAR',
  tool: 'VARCHAR',
  outcome: 'VARCHAR',
  http_status: 'INTEGER',
  error_code: 'VARCHAR',
  duration_ms: 'DOUBLE',
  upstream_ms: 'DOUBLE',
  bytes_in: 'BIGINT',
  bytes_out: 'BIGINT',
  client_name: 'VARCHAR',
  client_version: 'VARCHAR',
} as const satisfies Record<keyof McpEvent, string>;

const NOT_NULL: ReadonlySet<EventColumn> = new Set([
  'id',
  'ts',
  'namespace',
  'transport',
  'direction',
  'outcome',
]);

/** Column names are always quoted: `user` and `method` are SQL keywords. */
export function quoted(column: EventColumn): string {
  return `"${column}"`;
}

export const EVENTS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS events (
  ${EVENT_COLUMNS.map((c) => `${quoted(c)} ${COLUMN_TYPES[c]}${NOT_NULL.has(c) ? ' NOT NULL' : ''}`).join(',\n  ')}
)`;

/**
 * The json_transform target of one event document: DuckDB parses and converts the JSON in C,
 * which is several times cheaper than feeding 25 values per row through the appender from JS.
 */
export const EVENT_JSON_STRUCTURE = JSON.stringify(
  Object.fromEntries(EVENT_COLUMNS.map((c) => [c, COLUMN_TYPES[c]])),
);

/**
 * SPEC §7's request predicates over `events`: a request is a client-to-server JSON-RPC request,
 * or a rejected HTTP request that held no JSON-RPC message (kind null).
 */
export const IS_REQUEST = `((direction = 'client_to_server' AND kind = 'request') OR kind IS NULL)`;
export const IS_ERROR = `outcome <> 'ok'`;
export const IS_TOOL_CALL = `"method" = 'tools/call'`;

/**
 * `sample` is a uniform 16-bit value derived from the event id: `sample < k` keeps a
 * reproducible Bernoulli sample of k/65536 of any subset (see api/sampled-quantiles.ts).
 */
export const SAMPLE_SPACE = 65_536;

/**
 * The request facts: one narrow row per request (half the events, 9 of 25 columns), written in
 * the same transaction as `events`. summary, tools, namespaces and timeseries read only this
 * table; scanning it is ~10x cheaper than filtering `events` on its string columns.
 */
export const REQUESTS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS requests (
  ts TIMESTAMPTZ NOT NULL,
  namespace VARCHAR NOT NULL,
  tenant VARCHAR,
  key_id VARCHAR,
  tool VARCHAR,
  is_tool_call BOOLEAN NOT NULL,
  is_error BOOLEAN NOT NULL,
  duration_ms DOUBLE,
  sample USMALLINT NOT NULL
)`;

/** The requests row of an events row (`FROM <events-shaped relation> WHERE IS_REQUEST`). */
export const REQUEST_FACTS = `ts, namespace, tenant, key_id, tool,
  coalesce(${IS_TOOL_CALL}, false) AS is_tool_call, ${IS_ERROR} AS is_error, duration_ms,
  (hash(id) % ${SAMPLE_SPACE})::USMALLINT AS sample`;

/** Rebuilds `requests` from `events` (after events were written by something else). */
export const REBUILD_REQUESTS_SQL = `INSERT INTO requests
SELECT ${REQUEST_FACTS} FROM events WHERE ${IS_REQUEST} ORDER BY ts`;

/** Where a batch's documents land first: a per-connection temp table fed by an appender. */
export const STAGING_TABLE = 'events_staging';
export const STAGING_TABLE_RESET = `CREATE OR REPLACE TEMP TABLE ${STAGING_TABLE} (doc VARCHAR)`;

/** The new events of a batch, parsed once and then copied into `events` and `requests`. */
export const FRESH_TABLE = 'events_fresh';

/**
 * Parses the staged batch into FRESH_TABLE, each new event once. `$1` and `$2` are the
 * batch's smallest and largest `ts`.
 *
 * Exactly once: a redelivered event is byte-identical to the stored one, so the anti-join only
 * has to look at rows with the same `ts`; the explicit ts range lets DuckDB skip every row group
 * outside the batch's time span by its min/max statistics, which keeps the check cheap however
 * large the table grows (measured: a PRIMARY KEY with INSERT OR IGNORE, or an anti-join on `id`
 * alone, slow ingest down 3-4x at a million rows). EventStore.insertBatch drops duplicates inside
 * the batch before staging it (a window QUALIFY here cost 10-20 ms a batch).
 * (Checking the enum columns here again would make DuckDB parse every document twice: filters
 * on struct fields are pushed below the unnest. The ingest validates instead.)
 */
export const STAGE_FRESH_SQL = `CREATE OR REPLACE TEMP TABLE ${FRESH_TABLE} AS
SELECT s.* FROM (
  SELECT unnest(json_transform(doc, '${EVENT_JSON_STRUCTURE}')) FROM ${STAGING_TABLE}
) s
WHERE NOT EXISTS (
  SELECT 1 FROM events e
  WHERE e.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND e.ts = s.ts AND e.id = s.id
)`;

/**
 * The fast path of a batch of raw documents (EventStore.insertDocuments): DuckDB parses each
 * document once, strictly (an object, every column present, no repeated key, every value
 * convertible to its column's type; the statement fails otherwise), into a typed temp table
 * that is then checked and anti-joined without parsing again. Node does not parse these
 * documents at all, so a single parser decides what is stored. Strict still converts scalars:
 * a number where text belongs is stored as text ("5"), numeric text in a number column as the
 * number; the edge never publishes either.
 */
export const TYPED_TABLE = 'events_typed';
export const STAGE_TYPED_SQL = `CREATE OR REPLACE TEMP TABLE ${TYPED_TABLE} AS
SELECT unnest(json_transform_strict(doc, '${EVENT_JSON_STRUCTURE}')) FROM ${STAGING_TABLE}`;

function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

/** 2^53 - 1: the edge writes JSON numbers, larger integers did not survive its JSON.stringify. */
const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

/**
 * What event-decoder's validateEvent demands, over typed columns (the strict transform already
 * checked the JSON types): the SPEC §7 enums, ids and the columns that are NOT NULL.
 */
export const VALID_EVENT = `(
  id IS NOT NULL AND id <> '' AND length(id) <= 256 AND ts IS NOT NULL AND isfinite(ts)
  AND namespace IS NOT NULL
  AND transport IN (${sqlList(TRANSPORTS)}) AND direction IN (${sqlList(DIRECTIONS)})
  AND outcome IN (${sqlList(OUTCOMES)}) AND (kind IS NULL OR kind IN (${sqlList(KINDS)}))
  AND (duration_ms IS NULL OR isfinite(duration_ms)) AND (upstream_ms IS NULL OR isfinite(upstream_ms))
  AND (http_status IS NULL OR http_status < 1000)
  AND (bytes_in IS NULL OR abs(bytes_in) <= ${MAX_SAFE_INTEGER})
  AND (bytes_out IS NULL OR abs(bytes_out) <= ${MAX_SAFE_INTEGER})
)`;

/**
 * One pass over the typed batch: its size, distinct ids, invalid rows and time span (as text,
 * which keeps the microseconds when bound back as TIMESTAMPTZ).
 */
export const TYPED_BATCH_FACTS_SQL = `SELECT count(*) AS n, count(DISTINCT id) AS ids,
  count(*) FILTER (WHERE NOT coalesce(${VALID_EVENT}, false)) AS invalid,
  min(ts)::VARCHAR AS min_ts, max(ts)::VARCHAR AS max_ts
FROM ${TYPED_TABLE}`;

/** FRESH_TABLE from the typed batch: the rows not stored yet ($1, $2: the batch's time span). */
export const FRESH_FROM_TYPED_SQL = `CREATE OR REPLACE TEMP TABLE ${FRESH_TABLE} AS
SELECT t.* FROM ${TYPED_TABLE} t
WHERE NOT EXISTS (
  SELECT 1 FROM events e
  WHERE e.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND e.ts = t.ts AND e.id = t.id
)`;

export const INSERT_FRESH_EVENTS_SQL = `INSERT INTO events BY NAME SELECT * FROM ${FRESH_TABLE}`;
export const INSERT_FRESH_REQUESTS_SQL = `INSERT INTO requests
SELECT ${REQUEST_FACTS} FROM ${FRESH_TABLE} WHERE ${IS_REQUEST}`;
