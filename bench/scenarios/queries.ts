import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { figure, percentile, round, type ScenarioResult } from '../support/report.js';
import { ADMIN_KEY, startGateway } from '../support/topology.js';

export interface QueriesOptions {
  rows: number;
  queriesPerEndpoint: number;
  log: (line: string) => void;
}

const DAY_MS = 86_400_000;
const NAMESPACES = [
  'search',
  'filesystem',
  'github',
  'jira',
  'slack',
  'postgres',
  'browser',
  'memory',
];
const TOOLS = [
  'search',
  'fetch',
  'list_items',
  'get_item',
  'create_item',
  'delete_item',
  'run_query',
  'summarize',
];
const CLIENTS = ['claude-desktop', 'cursor', 'vscode', 'mcp-inspector', 'custom-agent'];

const sqlList = (values: string[]) => `[${values.map((v) => `'${v}'`).join(', ')}]`;

/**
 * `rows` events over the 30 days before now, as the edge would have recorded them: exchanges of
 * a request and its response (so half the rows are requests), in time order like a real ingest,
 * with skewed namespaces, tools and keys (a few busy, a long tail), ~7 % non-ok outcomes and
 * log-normal durations whose median depends on the tool. Everything derives from hashes of the
 * exchange number, so a request and its response agree and a run is reproducible.
 */
function generateSql(rows: number, endMs: number): string {
  const u = (salt: number) => `((hash(e, ${salt}) % 1000003) + 1) / 1000004.0`;
  return `INSERT INTO events BY NAME
WITH x AS (
  SELECT i, i // 2 AS e, i % 2 = 0 AS is_req FROM range(${rows}) t(i)
), u AS (
  SELECT *, ${u(1)} AS u_key, ${u(2)} AS u_ns, ${u(3)} AS u_method, ${u(4)} AS u_tool,
         ${u(5)} AS u_outcome, ${u(6)} AS u_d1, ${u(7)} AS u_d2, ${u(8)} AS u_bytes
  FROM x
), a AS (
  SELECT *,
    floor(200 * pow(u_key, 2.5))::INTEGER AS key_idx,
    floor(${NAMESPACES.length} * pow(u_ns, 1.6))::INTEGER AS ns_idx,
    floor(${TOOLS.length} * pow(u_tool, 2))::INTEGER AS tool_idx,
    CASE WHEN u_method < 0.75 THEN 'tools/call' WHEN u_method < 0.85 THEN 'tools/list'
         WHEN u_method < 0.91 THEN 'initialize' WHEN u_method < 0.95 THEN 'resources/read'
         WHEN u_method < 0.98 THEN 'prompts/get' ELSE 'ping' END AS m,
    CASE WHEN u_outcome < 0.93 THEN 'ok' WHEN u_outcome < 0.96 THEN 'tool_error'
         WHEN u_outcome < 0.975 THEN 'rpc_error' WHEN u_outcome < 0.985 THEN 'denied_tool'
         WHEN u_outcome < 0.99 THEN 'rate_limited' WHEN u_outcome < 0.995 THEN 'upstream_error'
         WHEN u_outcome < 0.998 THEN 'upstream_timeout' ELSE 'client_closed' END AS o,
    sqrt(-2 * ln(u_d1)) * cos(2 * pi() * u_d2) AS z
  FROM u
)
SELECT
  gen_random_uuid()::VARCHAR AS id,
  make_timestamptz(${(endMs - 30 * DAY_MS) * 1000}::BIGINT + (i * ${Math.floor((30 * DAY_MS * 1000) / rows)})::BIGINT) AS ts,
  'edge-' || (e % 3) AS edge_id,
  'req-' || e AS request_id,
  'tenant-' || (key_idx % 12) AS tenant,
  'key-' || key_idx AS key_id,
  'user' || key_idx || '@example.test' AS "user",
  ${sqlList(NAMESPACES)}[ns_idx + 1] AS namespace,
  CASE WHEN ns_idx = 1 THEN 'stdio' WHEN e % 20 = 0 THEN 'sse' ELSE 'streamable' END AS transport,
  CASE WHEN e % 10 < 7 THEN '2025-06-18' ELSE '2025-03-26' END AS protocol_version,
  'session-' || (e // 25) AS session_id,
  CASE WHEN is_req THEN 'client_to_server' ELSE 'server_to_client' END AS direction,
  CASE WHEN is_req THEN 'request' ELSE 'response' END AS kind,
  (e % 1000)::VARCHAR AS jsonrpc_id,
  m AS "method",
  CASE WHEN m = 'tools/call' THEN ${sqlList(TOOLS)}[tool_idx + 1] END AS tool,
  o AS outcome,
  CASE WHEN NOT is_req THEN NULL WHEN o = 'rate_limited' THEN 429 WHEN o = 'upstream_error' THEN 502
       WHEN o = 'upstream_timeout' THEN 504 ELSE 200 END AS http_status,
  CASE WHEN o IN ('rate_limited', 'upstream_error', 'upstream_timeout') THEN o END AS error_code,
  CASE WHEN is_req THEN round(exp(ln(8 + 12 * tool_idx) + 0.9 * z), 3) END AS duration_ms,
  CASE WHEN is_req THEN round(exp(ln(8 + 12 * tool_idx) + 0.9 * z) * 0.92, 3) END AS upstream_ms,
  CASE WHEN is_req THEN (200 + u_bytes * 3000)::BIGINT END AS bytes_in,
  CASE WHEN NOT is_req THEN (300 + u_bytes * 20000)::BIGINT END AS bytes_out,
  ${sqlList(CLIENTS)}[(key_idx % ${CLIENTS.length}) + 1] AS client_name,
  '1.' || (key_idx % 9) || '.0' AS client_version,
  'key' AS auth_method
FROM a`;
}

/** Filter sets the dashboard and an operator would use, cycled through by the runs: [label, query]. */
function filterSets(endMs: number): Array<[string, string]> {
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    ['no filter (30 days)', ''],
    ['last 24 h', `from=${iso(endMs - DAY_MS)}`],
    ['last 7 days', `from=${iso(endMs - 7 * DAY_MS)}`],
    ['namespace', 'namespace=github'],
    ['tenant', 'tenant=tenant-3'],
    ['key_id', 'key_id=key-7'],
    ['tool', 'tool=fetch'],
    ['namespace, last 7 days', `namespace=search&from=${iso(endMs - 7 * DAY_MS)}`],
    ['tenant and tool', 'tenant=tenant-5&tool=get_item'],
    ['one day, 10 days ago', `from=${iso(endMs - 11 * DAY_MS)}&to=${iso(endMs - 10 * DAY_MS)}`],
  ];
}

/**
 * SPEC §10 "analytics queries over 10 M events: summary and tools p95 ≤ 300 ms". The events
 * are generated straight into a DuckDB file whose table the analytics service itself created,
 * then the service is started on it and queried over HTTP with the admin key (auth over NATS,
 * answers cached), with and without filters.
 */
export async function queries(options: QueriesOptions): Promise<ScenarioResult> {
  const gateway = await startGateway({});
  const dbPath = join(gateway.dir, 'query-bench.duckdb');
  try {
    // The service creates its own schema; the bench only fills it.
    await gateway.startAnalytics(dbPath);
    await gateway.stopAnalytics();
    const endMs = Date.now();
    options.log(
      `queries: generating ${options.rows.toLocaleString('en-US')} events into ${dbPath}`,
    );
    const generateStart = performance.now();
    const instance = await DuckDBInstance.create(dbPath);
    const connection = await instance.connect();
    try {
      await connection.run(generateSql(options.rows, endMs));
      await connection.run('CHECKPOINT');
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
    const generateSec = (performance.now() - generateStart) / 1000;
    options.log(`queries: generated in ${round(generateSec, 1)} s; starting analytics on it`);
    await gateway.startAnalytics(dbPath);
    const base = gateway.analyticsUrl!;

    const timed = async (path: string): Promise<number> => {
      const start = process.hrtime.bigint();
      const response = await fetch(`${base}${path}`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      await response.arrayBuffer();
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return ms;
    };
    const sets = filterSets(endMs);
    const check = (await fetch(`${base}/api/v1/summary`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    }).then((r) => r.json())) as { requests: number };
    options.log(
      `queries: summary counts ${check.requests.toLocaleString('en-US')} requests (half the rows are requests)`,
    );
    // Warm-up: the first queries load the columns from disk; a running service has them warm.
    for (const [, query] of sets.slice(0, 3)) {
      await timed(`/api/v1/summary?${query}`);
      await timed(`/api/v1/tools?${query}`);
    }
    const endpoints = {
      summary: (i: number) => `/api/v1/summary?${sets[i % sets.length][1]}`,
      tools: (i: number) => `/api/v1/tools?${sets[i % sets.length][1]}${i % 2 ? '&limit=10' : ''}`,
    };
    const results: Record<
      string,
      { p50: number; p95: number; max: number; byFilterP50: Record<string, number> }
    > = {};
    for (const [name, path] of Object.entries(endpoints)) {
      const samples: number[] = [];
      const byFilter: Record<string, number[]> = {};
      for (let i = 0; i < options.queriesPerEndpoint; i++) {
        const ms = await timed(path(i));
        samples.push(ms);
        (byFilter[sets[i % sets.length][0]] ??= []).push(ms);
      }
      results[name] = {
        p50: round(percentile(samples, 50), 1),
        p95: round(percentile(samples, 95), 1),
        max: round(Math.max(...samples), 1),
        // The median of each filter set's runs: which query shapes are the slow ones.
        byFilterP50: Object.fromEntries(
          Object.entries(byFilter).map(([k, v]) => [k, round(percentile(v, 50), 1)]),
        ),
      };
      options.log(`queries: ${name}: ${JSON.stringify(results[name])}`);
    }
    const rowsLabel =
      options.rows >= 1e6 ? `${options.rows / 1e6} M` : options.rows.toLocaleString('en-US');
    return {
      name: 'queries',
      figures: [
        figure(
          'query_summary_p95_ms',
          `GET /api/v1/summary p95 over ${rowsLabel} events`,
          results.summary.p95,
          'ms',
          '<=',
          300,
          `p50 ${results.summary.p50} ms`,
        ),
        figure(
          'query_tools_p95_ms',
          `GET /api/v1/tools p95 over ${rowsLabel} events`,
          results.tools.p95,
          'ms',
          '<=',
          300,
          `p50 ${results.tools.p50} ms`,
        ),
      ],
      details: {
        rows: options.rows,
        generateSec: round(generateSec, 1),
        queriesPerEndpoint: options.queriesPerEndpoint,
        filterSets: sets.length,
        ...results,
      },
    };
  } finally {
    await gateway.stop();
  }
}
