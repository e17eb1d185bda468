import {
  AUTH_METHODS,
  DIRECTIONS,
  EVENT_COLUMNS,
  type EventOutcome,
  KINDS,
  MAX_EVENT_DETAIL,
  type McpEvent,
  OUTCOMES,
  TRANSPORTS,
} from '#common';
import type { ErrorOutcome, RejectedOutcome } from '../api/answers.js';

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
  server: 'VARCHAR',
  auth_method: 'VARCHAR',
  client_tool: 'VARCHAR',
  upstream_protocol_version: 'VARCHAR',
  count: 'INTEGER',
  client_network: 'VARCHAR',
  tools_listed: 'STRUCT(tool VARCHAR, tokens INTEGER)[]',
  detail: 'VARCHAR',
} as const satisfies Record<keyof McpEvent, string>;

const NOT_NULL: ReadonlySet<EventColumn> = new Set([
  'id',
  'ts',
  'namespace',
  'transport',
  'direction',
  'outcome',
  'auth_method',
  'count',
]);

/**
 * What a (v2) column holds for an event from before the column existed: one published by an
 * older edge during a rolling upgrade (the checked ingest path fills it in, see STAGE_FRESH_SQL),
 * or a row stored by the previous version (the migration fills it in, see schema-migration.ts).
 * Such an event stood for one request and named its key exactly when a key authenticated it;
 * the other v2 columns (server, client_tool, client_network, tools_listed, detail) are null, as
 * are tools_listed and detail of an edge of v2 from before them.
 */
export const PRE_V2_VALUES = {
  count: '1',
  auth_method: `CASE WHEN key_id IS NULL THEN 'none' ELSE 'key' END`,
} as const satisfies Partial<Record<EventColumn, string>>;

/** Bounds of the validation (VALID_EVENT here, validateEvent in the ingest), shared by both. */
export const MAX_TEXT_LENGTH = 256;
/** The most requests one event may stand for (the edge's per-minute rows stay far below). */
export const MAX_EVENT_COUNT = 1_000_000_000;
/**
 * (v2) The most tools one `tools_listed` may hold: far past any real server (hundreds), but a
 * bound, so one event cannot grow the file by megabytes.
 */
export const MAX_LISTED_TOOLS = 10_000;
/** (v2) Tokens of one listed definition: the INTEGER of the column. */
export const MAX_TOOL_TOKENS = 2_147_483_647;
/** (v2) The longest `detail`: the edge cuts a tool_drift's diff to fit. */
export const MAX_DETAIL_LENGTH = MAX_EVENT_DETAIL;

/** Column names are always quoted: `user`, `method` and `count` are SQL keywords. */
export function quoted(column: string): string {
  return `"${column}"`;
}

/** One column of a table, as created and as the migration brings an older file to it. */
export interface ColumnSpec {
  name: string;
  type: string;
  notNull: boolean;
  /** SQL default, also what ADD COLUMN gives the rows already there. */
  default?: string;
  /**
   * What a row already there means in this column (an expression over the row): fills its
   * nulls when the migration adds the column or makes it NOT NULL.
   */
  backfill?: string;
}

export interface TableSpec {
  name: string;
  columns: readonly ColumnSpec[];
  /**
   * A table derived from another: statements that refill it from its source. The migration runs
   * them when a column it adds, or a NOT NULL column, has no backfill, i.e. what the rows meant
   * cannot be read from the rows themselves (it is in the source).
   */
  refill?: readonly string[];
}

export function createTableSql(table: TableSpec): string {
  return `CREATE TABLE IF NOT EXISTS ${table.name} (
  ${table.columns.map((c) => `${quoted(c.name)} ${columnDefinition(c)}${c.notNull ? ' NOT NULL' : ''}`).join(',\n  ')}
)`;
}

/** Type and default: what ADD COLUMN accepts (DuckDB adds no column with a constraint). */
export function columnDefinition(column: ColumnSpec): string {
  return `${column.type}${column.default === undefined ? '' : ` DEFAULT ${column.default}`}`;
}

export const EVENTS_TABLE: TableSpec = {
  name: 'events',
  columns: EVENT_COLUMNS.map((c) => ({
    name: c,
    type: COLUMN_TYPES[c],
    notNull: NOT_NULL.has(c),
    // A writer that leaves `count` out (a bench filling the file) means one request.
    ...(c === 'count' && { default: PRE_V2_VALUES.count }),
    ...(c in PRE_V2_VALUES && { backfill: PRE_V2_VALUES[c as keyof typeof PRE_V2_VALUES] }),
  })),
};

/**
 * The json_transform target of one event document: DuckDB parses and converts the JSON in C,
 * which is several times cheaper than feeding 30 values per row through the appender from JS.
 */
export const EVENT_JSON_STRUCTURE = JSON.stringify(
  Object.fromEntries(EVENT_COLUMNS.map((c) => [c, COLUMN_TYPES[c]])),
);

/**
 * SPEC §7 (v2): what each outcome of a request counts as. `rejected`: the gateway refused it
 * before a backend saw it; `error`: the other outcomes that are not `ok`. Keyed by outcome, so
 * a new outcome does not compile until it is classed.
 */
export const OUTCOME_CLASSES = {
  ok: 'ok',
  tool_error: 'error',
  rpc_error: 'error',
  upstream_error: 'error',
  upstream_timeout: 'error',
  client_closed: 'error',
  denied_tool: 'rejected',
  unauthorized: 'rejected',
  forbidden: 'rejected',
  rate_limited: 'rejected',
  bad_request: 'rejected',
} as const satisfies Record<EventOutcome, 'ok' | 'error' | 'rejected'> &
  Record<RejectedOutcome, 'rejected'> &
  Record<ErrorOutcome, 'error'>;

function outcomesOf(kind: 'error' | 'rejected'): string[] {
  return Object.entries(OUTCOME_CLASSES)
    .filter(([, c]) => c === kind)
    .map(([outcome]) => outcome);
}

/**
 * The namespace of the admin API's audit events (no namespace can be named so: names start
 * [a-z0-9]). They are visible in `events`, and are not requests to the gateway: IS_REQUEST
 * leaves them out of every figure.
 */
export const AUDIT_NAMESPACE = '_admin';

/**
 * SPEC §7's request predicates over `events`: a request is a client-to-server JSON-RPC request,
 * or a rejected HTTP request that held no JSON-RPC message (kind null). An event stands for
 * `count` requests (v2: rejected requests without a valid credential arrive as one row per
 * minute and group): every figure sums REQUEST_WEIGHT, never counts rows. A request is `ok`,
 * rejected (IS_REJECTED) or an error (IS_ERROR): the error rate is errors over the requests that
 * were not rejected, so wrong keys, 429s and hidden tools never read as failures of a backend.
 */
export const IS_REQUEST = `(namespace <> '${AUDIT_NAMESPACE}' AND ((direction = 'client_to_server' AND kind = 'request') OR kind IS NULL))`;
export const IS_REJECTED = `outcome IN (${sqlList(outcomesOf('rejected'))})`;
export const IS_ERROR = `outcome IN (${sqlList(outcomesOf('error'))})`;
export const IS_TOOL_CALL = `"method" = 'tools/call'`;
export const REQUEST_WEIGHT = quoted('count');

/**
 * `sample` is a uniform 16-bit value derived from the event id: `sample < k` keeps a
 * reproducible Bernoulli sample of k/65536 of any subset (see api/sampled-quantiles.ts).
 */
export const SAMPLE_SPACE = 65_536;

/**
 * The requests row of an events row (`FROM <events-shaped relation> WHERE IS_REQUEST`). A row
 * standing for several requests keeps no duration: it is no one request's duration.
 */
export const REQUEST_FACTS = `ts, namespace, tenant, key_id, tool, server, client_tool,
  coalesce(${IS_TOOL_CALL}, false) AS is_tool_call, ${IS_ERROR} AS is_error,
  CASE WHEN ${REQUEST_WEIGHT} = 1 THEN duration_ms END AS duration_ms,
  (hash(id) % ${SAMPLE_SPACE})::USMALLINT AS sample, ${REQUEST_WEIGHT}, ${IS_REJECTED} AS is_rejected`;

/** Rebuilds `requests` from `events` (after events were written by something else). */
export const REBUILD_REQUESTS_SQL = `INSERT INTO requests BY NAME
SELECT ${REQUEST_FACTS} FROM events WHERE ${IS_REQUEST} ORDER BY ts`;

/**
 * The request facts: one narrow row per request event (half the events, 13 of 32
 * columns), written in the same transaction as `events`. summary, tools, namespaces and
 * timeseries read only this table; scanning it is ~10x cheaper than filtering `events` on its
 * string columns. `count` is how many requests the row stands for (1, or a per-minute count of
 * rejected requests, whose row has no duration: percentiles see only single requests).
 * `is_error` and `is_rejected` class its outcome (OUTCOME_CLASSES); a row is at most one.
 * `server` and `client_tool` are null but on a virtual server's traffic: every answer filters
 * by `server`, and the context budget names a call as its listing did (client_tool).
 */
export const REQUESTS_TABLE: TableSpec = {
  name: 'requests',
  columns: [
    { name: 'ts', type: 'TIMESTAMPTZ', notNull: true },
    { name: 'namespace', type: 'VARCHAR', notNull: true },
    { name: 'tenant', type: 'VARCHAR', notNull: false },
    { name: 'key_id', type: 'VARCHAR', notNull: false },
    { name: 'tool', type: 'VARCHAR', notNull: false },
    { name: 'is_tool_call', type: 'BOOLEAN', notNull: true },
    { name: 'is_error', type: 'BOOLEAN', notNull: true },
    { name: 'duration_ms', type: 'DOUBLE', notNull: false },
    { name: 'sample', type: 'USMALLINT', notNull: true },
    // Added in v2: every row stored before stood for one request.
    { name: 'count', type: 'INTEGER', notNull: true, default: '1', backfill: '1' },
    // Added with the rejected figure (SPEC §7 v2). A row of an older file does not say whether
    // it was rejected (only `events` keeps the outcome, and `is_error` then meant "not ok"): the
    // migration refills the table from `events` instead.
    { name: 'is_rejected', type: 'BOOLEAN', notNull: true },
    // Added with virtual servers. Edges published both before this table kept them, so only
    // `events` says which stored requests went through a server: no backfill, a refill.
    { name: 'server', type: 'VARCHAR', notNull: false },
    { name: 'client_tool', type: 'VARCHAR', notNull: false },
  ],
  refill: ['DELETE FROM requests', REBUILD_REQUESTS_SQL],
};

/** Where a batch's documents land first: a per-connection temp table fed by an appender. */
export const STAGING_TABLE = 'events_staging';
export const STAGING_TABLE_RESET = `CREATE OR REPLACE TEMP TABLE ${STAGING_TABLE} (doc VARCHAR)`;

/** A batch's documents parsed into the events' columns (STAGE_TYPED_SQL or STAGE_PARSED_SQL). */
export const TYPED_TABLE = 'events_typed';

/** The new events of a batch, parsed once and then copied into `events` and `requests`. */
export const FRESH_TABLE = 'events_fresh';

/**
 * An event of the checked path as stored: the pre-v2 values in the v2 columns an older edge
 * did not send (json_transform gives null for an absent key; validateEvent refuses an explicit
 * null in these columns, so null here always means absent).
 */
const WITH_PRE_V2_VALUES = Object.entries(PRE_V2_VALUES)
  .map(([column, value]) => `coalesce(${quoted(column)}, ${value}) AS ${quoted(column)}`)
  .join(', ');

/**
 * Parses the staged batch into TYPED_TABLE, as the fast path's STAGE_TYPED_SQL does but
 * leniently: events of an older edge (without the v2 columns) only come this way, with the pre-v2
 * values in the columns they lack. EventStore.insertBatch validated each event in Node first and
 * dropped the repeats of an id inside the batch (a window QUALIFY here cost 10-20 ms a batch).
 * (Checking the enum columns here again would make DuckDB parse every document twice: filters
 * on struct fields are pushed below the unnest. The ingest validates instead.)
 */
export const STAGE_PARSED_SQL = `CREATE OR REPLACE TEMP TABLE ${TYPED_TABLE} AS
SELECT s.* REPLACE (${WITH_PRE_V2_VALUES}) FROM (
  SELECT unnest(json_transform(doc, '${EVENT_JSON_STRUCTURE}')) FROM ${STAGING_TABLE}
) s`;

/**
 * The fast path of a batch of raw documents (EventStore.insertDocuments): DuckDB parses each
 * document once, strictly (an object, every column present, no repeated key, every value
 * convertible to its column's type; the statement fails otherwise), into a typed temp table
 * that is then checked and anti-joined without parsing again. Node does not parse these
 * documents at all, so a single parser decides what is stored. Strict still converts scalars:
 * a number where text belongs is stored as text ("5"), numeric text in a number column as the
 * number; the edge never publishes either.
 */
export const STAGE_TYPED_SQL = `CREATE OR REPLACE TEMP TABLE ${TYPED_TABLE} AS
SELECT unnest(json_transform_strict(doc, '${EVENT_JSON_STRUCTURE}')) FROM ${STAGING_TABLE}`;

function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

/** 2^53 - 1: the edge writes JSON numbers, larger integers did not survive its JSON.stringify. */
const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

/** Null, or text of at most `max` characters (code points, as validateEvent counts). */
const boundedText = (column: EventColumn, max = MAX_TEXT_LENGTH) =>
  `(${quoted(column)} IS NULL OR length(${quoted(column)}) <= ${max})`;

/**
 * Null, or at most MAX_LISTED_TOOLS entries each with a tool name of at most MAX_TEXT_LENGTH
 * characters and tokens null or not negative. A null entry, or an entry whose `tool` is missing
 * (null after the transform), is refused as validateEvent refuses it.
 */
const VALID_TOOLS_LISTED = `(tools_listed IS NULL OR (len(tools_listed) <= ${MAX_LISTED_TOOLS}
  AND len(list_filter(tools_listed, lambda e: NOT coalesce(
    e.tool IS NOT NULL AND length(e.tool) <= ${MAX_TEXT_LENGTH} AND (e.tokens IS NULL OR e.tokens >= 0),
    false))) = 0))`;

/**
 * What event-decoder's validateEvent demands, over typed columns (the strict transform already
 * checked the JSON types): the SPEC §7 enums, ids, bounds and the columns that are NOT NULL. A
 * v2 column an older edge leaves out never gets here (the strict transform refuses a missing
 * key): null in `auth_method` or `count` is an explicit null, which validateEvent refuses too.
 */
export const VALID_EVENT = `(
  id IS NOT NULL AND id <> '' AND length(id) <= ${MAX_TEXT_LENGTH} AND ts IS NOT NULL AND isfinite(ts)
  AND namespace IS NOT NULL
  AND transport IN (${sqlList(TRANSPORTS)}) AND direction IN (${sqlList(DIRECTIONS)})
  AND outcome IN (${sqlList(OUTCOMES)}) AND (kind IS NULL OR kind IN (${sqlList(KINDS)}))
  AND (duration_ms IS NULL OR isfinite(duration_ms)) AND (upstream_ms IS NULL OR isfinite(upstream_ms))
  AND (http_status IS NULL OR http_status < 1000)
  AND (bytes_in IS NULL OR abs(bytes_in) <= ${MAX_SAFE_INTEGER})
  AND (bytes_out IS NULL OR abs(bytes_out) <= ${MAX_SAFE_INTEGER})
  AND auth_method IN (${sqlList(AUTH_METHODS)})
  AND ${REQUEST_WEIGHT} BETWEEN 1 AND ${MAX_EVENT_COUNT}
  AND ${boundedText('server')} AND ${boundedText('client_tool')} AND ${boundedText('client_network')}
  AND ${boundedText('upstream_protocol_version')}
  AND ${VALID_TOOLS_LISTED} AND ${boundedText('detail', MAX_DETAIL_LENGTH)}
)`;

/**
 * One pass over the typed batch: its size, distinct ids, invalid rows, time span (as text,
 * which keeps the microseconds when bound back as TIMESTAMPTZ) and whether a row stands for
 * several requests (a per-minute count that may have grown, see STAGE_GROWN_SQL).
 */
export const TYPED_BATCH_FACTS_SQL = `SELECT count(*) AS n, count(DISTINCT id) AS ids,
  count(*) FILTER (WHERE NOT coalesce(${VALID_EVENT}, false)) AS invalid,
  min(ts)::VARCHAR AS min_ts, max(ts)::VARCHAR AS max_ts,
  coalesce(max(${REQUEST_WEIGHT}), 1) > 1 AS counted
FROM ${TYPED_TABLE}`;

/**
 * FRESH_TABLE from the typed batch: the rows not stored yet ($1, $2: the batch's time span).
 *
 * Exactly once: a redelivered event is byte-identical to the stored one, so the anti-join only
 * has to look at rows with the same `ts`; the explicit ts range lets DuckDB skip every row group
 * outside the batch's time span by its min/max statistics, which keeps the check cheap however
 * large the table grows (measured: a PRIMARY KEY with INSERT OR IGNORE, or an anti-join on `id`
 * alone, slow ingest down 3-4x at a million rows).
 */
export const FRESH_FROM_TYPED_SQL = `CREATE OR REPLACE TEMP TABLE ${FRESH_TABLE} AS
SELECT t.* FROM ${TYPED_TABLE} t
WHERE NOT EXISTS (
  SELECT 1 FROM events e
  WHERE e.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND e.ts = t.ts AND e.id = t.id
)`;

/**
 * (v2) A per-minute count of rejected requests grows while its minute lasts: the edge publishes
 * it again under the same id with a larger `count` (RejectionTally), so the store keeps one row
 * per group, holding the largest count it was sent (a redelivered smaller one changes nothing,
 * whatever the order). GROWN_TABLE holds the batch's rows whose id is stored with a smaller count:
 * the grown count and bytes, and the requests row the stored one made ($1, $2: the batch's time
 * span). Run only for a batch that holds such counts (TYPED_BATCH_FACTS_SQL's `counted`).
 */
export const GROWN_TABLE = 'events_grown';
export const STAGE_GROWN_SQL = `CREATE OR REPLACE TEMP TABLE ${GROWN_TABLE} AS
SELECT id, grown_count, grown_bytes_in, ${IS_REQUEST} AS is_request, ${REQUEST_FACTS} FROM (
  SELECT e.*, t.${REQUEST_WEIGHT} AS grown_count, t.bytes_in AS grown_bytes_in
  FROM ${TYPED_TABLE} t JOIN events e
    ON e.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND e.ts = t.ts AND e.id = t.id
  WHERE t.${REQUEST_WEIGHT} > e.${REQUEST_WEIGHT}
)`;

export const GROW_EVENTS_SQL = `UPDATE events
SET ${REQUEST_WEIGHT} = g.grown_count, bytes_in = g.grown_bytes_in
FROM ${GROWN_TABLE} g
WHERE events.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND events.ts = g.ts AND events.id = g.id`;

/** The requests table's columns, in REQUEST_FACTS' names. */
const REQUEST_COLUMNS = REQUESTS_TABLE.columns.map((c) => quoted(c.name));

/**
 * Deletes the requests row each grown event had made. `requests` has no id: a row is found by
 * all its columns, and where several rows are equal in every column (two groups of one minute
 * and namespace with the same count and sample), as many of them as grew, paired by rank, so
 * exactly one row goes per grown event. Equal rows are interchangeable in every answer.
 */
export const SHRINK_GROWN_REQUESTS_SQL = `DELETE FROM requests WHERE rowid IN (
  SELECT r.rid FROM (
    SELECT rowid AS rid, ${REQUEST_COLUMNS.join(', ')},
      row_number() OVER (PARTITION BY ${REQUEST_COLUMNS.join(', ')}) AS k
    FROM requests
    WHERE ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND ts IN (SELECT ts FROM ${GROWN_TABLE})
  ) r JOIN (
    SELECT ${REQUEST_COLUMNS.join(', ')},
      row_number() OVER (PARTITION BY ${REQUEST_COLUMNS.join(', ')}) AS k
    FROM ${GROWN_TABLE} WHERE is_request
  ) g ON r.k = g.k AND ${REQUEST_COLUMNS.map((c) => `r.${c} IS NOT DISTINCT FROM g.${c}`).join(' AND ')}
)`;

/** The requests rows of the grown events, as they are now. */
export const GROWN_REQUESTS_SQL = `INSERT INTO requests BY NAME
SELECT ${REQUEST_FACTS} FROM (
  SELECT e.* FROM events e JOIN ${GROWN_TABLE} g
    ON e.ts BETWEEN $1::TIMESTAMPTZ AND $2::TIMESTAMPTZ AND e.ts = g.ts AND e.id = g.id
) WHERE ${IS_REQUEST}`;

export const INSERT_FRESH_EVENTS_SQL = `INSERT INTO events BY NAME SELECT * FROM ${FRESH_TABLE}`;
export const INSERT_FRESH_REQUESTS_SQL = `INSERT INTO requests BY NAME
SELECT ${REQUEST_FACTS} FROM ${FRESH_TABLE} WHERE ${IS_REQUEST}`;
