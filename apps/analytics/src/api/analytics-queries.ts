import { ErrorCode, EVENT_COLUMNS, GatewayError, type McpEvent } from '#common';
import { type EventStore, QueryTimeoutError, type Row } from '../storage/event-store.js';
import { AUDIT_NAMESPACE, quoted } from '../storage/schema.js';
import {
  BadParameterError,
  type Bucket,
  encodeCursor,
  type EventCursor,
  type EventFilters,
} from './query-params.js';
import type {
  ContextBudget,
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  ServerStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from './answers.js';
import { contextSessionsSql, contextToolsSql, toContextBudget } from './context-budget.js';
import { histogramSql, toHistogram } from './latency-histogram.js';
import { count, errorRate, quantiles, requiredText, text, toEvent } from './row-mapping.js';
import { groupedQuantilesSql } from './sampled-quantiles.js';
import {
  filterConditions,
  IS_ERROR,
  IS_REJECTED,
  IS_REQUEST,
  REQUEST_WEIGHT,
  SqlParams,
} from './sql-filters.js';

export type {
  ContextBudget,
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  ServerStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from './answers.js';

export interface EventsPage {
  events: McpEvent[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  next_before: string | null;
}

/** The requests a set of rows stands for: their `count`s summed, never the rows counted. */
const REQUESTS = `sum(${REQUEST_WEIGHT})`;
/** The three figures of every answer over the requests table (see answers.ts). */
const REQUEST_FIGURES = `${REQUESTS} AS requests, ${REQUESTS} FILTER (WHERE is_rejected) AS rejected,
  ${REQUESTS} FILTER (WHERE is_error) AS errors`;

/** The figures of a row of requestsPer. */
function groupFigures(row: Row): Omit<NamespaceStats, 'namespace'> {
  const requests = count(row.requests);
  const rejected = count(row.rejected);
  const errors = count(row.errors);
  return {
    requests,
    rejected,
    errors,
    error_rate: errorRate(errors, requests, rejected),
    p95_ms: quantiles(row.q, 1)[0],
  };
}

const BUCKET_SPECS: Record<Bucket, { ms: number; defaultSpanMs: number }> = {
  '1m': { ms: 60_000, defaultSpanMs: 3_600_000 },
  '1h': { ms: 3_600_000, defaultSpanMs: 24 * 3_600_000 },
  '1d': { ms: 86_400_000, defaultSpanMs: 30 * 86_400_000 },
};
export const MAX_BUCKETS = 10_000;

/**
 * The read side of SPEC §7: every answer is one parameterised DuckDB query with the common
 * filters; figures are computed in SQL, never by scanning rows in JavaScript. Request figures
 * (summary, tools, timeseries, namespaces, servers) come from the narrow `requests` table, keys
 * and raw events from `events`. Counts are exact and sum each row's `count` (REQUESTS), since a
 * per-minute row of rejected requests stands for many; percentiles (quantile_cont, linear
 * interpolation, over the requests' duration_ms, which such a row does not have) are exact up
 * to EXACT_QUANTILE_LIMIT requests per group and computed over a uniform sample of that size
 * above (see sampled-quantiles.ts).
 */
export class AnalyticsQueries {
  constructor(
    private readonly store: EventStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs one read; a query past the store's deadline is a 503 the client may retry narrower. */
  private async query(sql: string, params: SqlParams['values']): Promise<Row[]> {
    try {
      return await this.store.query(sql, params);
    } catch (error) {
      if (error instanceof QueryTimeoutError) {
        throw new GatewayError(
          ErrorCode.Unavailable,
          `${error.message}: narrow the time range or the filters`,
        );
      }
      throw error;
    }
  }

  async summary(filters: EventFilters): Promise<Summary> {
    const params = new SqlParams();
    const [row] = await this.query(
      groupedQuantilesSql({
        source: `SELECT * FROM requests WHERE ${filterConditions(filters, params)}`,
        groupBy: [],
        aggregates: `${REQUEST_FIGURES},
          ${REQUESTS} FILTER (WHERE is_tool_call) AS tool_calls, count(DISTINCT key_id) AS unique_keys`,
        quantiles: '[0.5, 0.95, 0.99]',
      }),
      params.values,
    );
    const requests = count(row.requests);
    const rejected = count(row.rejected);
    const errors = count(row.errors);
    const [p50, p95, p99] = quantiles(row.q, 3);
    return {
      requests,
      rejected,
      errors,
      error_rate: errorRate(errors, requests, rejected),
      tool_calls: count(row.tool_calls),
      unique_keys: count(row.unique_keys),
      p50_ms: p50,
      p95_ms: p95,
      p99_ms: p99,
    };
  }

  async tools(filters: EventFilters, limit: number): Promise<ToolStats[]> {
    const params = new SqlParams();
    const where = filterConditions(filters, params);
    const order = 'ORDER BY calls DESC, namespace, tool NULLS LAST';
    const rows = await this.query(
      `${groupedQuantilesSql({
        source: `SELECT * FROM requests WHERE ${where} AND is_tool_call`,
        groupBy: ['namespace', 'tool'],
        aggregates: `${REQUESTS} AS calls, ${REQUESTS} FILTER (WHERE is_rejected) AS rejected,
          ${REQUESTS} FILTER (WHERE is_error) AS errors`,
        quantiles: '[0.5, 0.95]',
        groupTail: `${order} LIMIT ${params.add(limit)}`,
      })} ${order}`,
      params.values,
    );
    return rows.map((row) => {
      const calls = count(row.calls);
      const rejected = count(row.rejected);
      const errors = count(row.errors);
      const [p50, p95] = quantiles(row.q, 2);
      return {
        namespace: requiredText(row.namespace),
        tool: text(row.tool),
        calls,
        rejected,
        errors,
        error_rate: errorRate(errors, calls, rejected),
        p50_ms: p50,
        p95_ms: p95,
      };
    });
  }

  /**
   * Requests per bucket over [from, to); buckets without requests are zeros. Without `from`
   * or `to` the range ends now and spans a default window for the bucket size.
   */
  async timeseries(filters: EventFilters, bucket: Bucket): Promise<TimeseriesPoint[]> {
    const spec = BUCKET_SPECS[bucket];
    const to =
      filters.to ??
      new Date(filters.from ? Math.max(this.now(), filters.from.getTime() + spec.ms) : this.now());
    const from = filters.from ?? new Date(to.getTime() - spec.defaultSpanMs);
    const buckets = Math.ceil(
      (to.getTime() - Math.floor(from.getTime() / spec.ms) * spec.ms) / spec.ms,
    );
    if (buckets > MAX_BUCKETS) {
      throw new BadParameterError(
        'bucket',
        `gives ${buckets} buckets over this range (at most ${MAX_BUCKETS}): use a larger bucket or a shorter from/to range`,
      );
    }
    // Buckets are numbered in UTC epoch time (bucket n covers [n, n+1) × its length): integer
    // arithmetic on ts, where date_trunc on a TIMESTAMPTZ costs a calendar conversion per row
    // (measured: 2 s of a 2.1 s query over 5 M requests).
    const params = new SqlParams();
    const where = filterConditions({ ...filters, from, to }, params);
    const micros = params.add(spec.ms * 1000);
    const first = Math.floor(from.getTime() / spec.ms);
    const last = Math.floor((to.getTime() * 1000 - 1) / (spec.ms * 1000));
    const rows = await this.query(
      `WITH buckets AS (
         SELECT bucket FROM range(${params.add(first)}::BIGINT, ${params.add(last + 1)}::BIGINT) AS t(bucket)
       ), stats AS (
         ${groupedQuantilesSql({
           source: `SELECT *, (epoch_us(ts) - ((epoch_us(ts) % ${micros}) + ${micros}) % ${micros}) // ${micros} AS bucket
                    FROM requests WHERE ${where}`,
           groupBy: ['bucket'],
           aggregates: REQUEST_FIGURES,
           quantiles: '[0.95]',
         })}
       )
       SELECT b.bucket * ${params.add(spec.ms)} AS ts_ms, s.requests, s.rejected, s.errors, s.q
       FROM buckets b LEFT JOIN stats s ON s.bucket = b.bucket
       ORDER BY b.bucket`,
      params.values,
    );
    return rows.map((row) => ({
      ts: new Date(count(row.ts_ms)).toISOString(),
      requests: count(row.requests),
      rejected: count(row.rejected),
      errors: count(row.errors),
      p95_ms: quantiles(row.q, 1)[0],
    }));
  }

  /**
   * Per key, most requests first, and last the requests without a valid credential (key_id
   * null, when there were any): the rows add up to the summary's requests under the same filters.
   * Audit events of the admin API are not traffic: an admin seen only there has no row.
   */
  async keys(filters: EventFilters): Promise<KeyStats[]> {
    const params = new SqlParams();
    const rows = await this.query(
      `SELECT key_id,
              arg_max("user", ts) FILTER (WHERE "user" IS NOT NULL) AS "user",
              arg_max(tenant, ts) FILTER (WHERE tenant IS NOT NULL) AS tenant,
              coalesce(${REQUESTS} FILTER (WHERE ${IS_REQUEST}), 0) AS requests,
              ${REQUESTS} FILTER (WHERE ${IS_REQUEST} AND ${IS_REJECTED}) AS rejected,
              ${REQUESTS} FILTER (WHERE ${IS_REQUEST} AND ${IS_ERROR}) AS errors,
              epoch_ms(max(ts)) AS last_seen_ms
       FROM events WHERE ${filterConditions(filters, params)} AND namespace <> '${AUDIT_NAMESPACE}'
       GROUP BY key_id
       HAVING key_id IS NOT NULL OR bool_or(${IS_REQUEST})
       ORDER BY key_id IS NULL, requests DESC, key_id`,
      params.values,
    );
    return rows.map((row) => {
      const requests = count(row.requests);
      const rejected = count(row.rejected);
      const errors = count(row.errors);
      return {
        key_id: text(row.key_id),
        user: text(row.user),
        tenant: text(row.tenant),
        requests,
        rejected,
        errors,
        error_rate: errorRate(errors, requests, rejected),
        last_seen: new Date(count(row.last_seen_ms)).toISOString(),
      };
    });
  }

  async namespaces(filters: EventFilters): Promise<NamespaceStats[]> {
    const rows = await this.requestsPer('namespace', filters);
    return rows.map((row) => ({ namespace: requiredText(row.namespace), ...groupFigures(row) }));
  }

  /** Per virtual server; the requests of namespace routes (no server) are in no row. */
  async servers(filters: EventFilters): Promise<ServerStats[]> {
    const rows = await this.requestsPer('server', filters);
    return rows.map((row) => ({ server: requiredText(row.server), ...groupFigures(row) }));
  }

  /**
   * The figures of the requests per value of `column`, most requests first; a request without
   * one (a namespace route has no server) is in no row.
   */
  private requestsPer(column: 'namespace' | 'server', filters: EventFilters): Promise<Row[]> {
    const params = new SqlParams();
    return this.query(
      `${groupedQuantilesSql({
        source: `SELECT * FROM requests WHERE ${filterConditions(filters, params)} AND ${column} IS NOT NULL`,
        groupBy: [column],
        aggregates: REQUEST_FIGURES,
        quantiles: '[0.95]',
      })} ORDER BY requests DESC, ${column}`,
      params.values,
    );
  }

  /** Durations of the filtered requests in fixed log-scale buckets (see latency-histogram.ts). */
  async histogram(filters: EventFilters): Promise<LatencyHistogram> {
    const params = new SqlParams();
    const rows = await this.query(
      histogramSql(`SELECT * FROM requests WHERE ${filterConditions(filters, params)}`),
      params.values,
    );
    return toHistogram(rows);
  }

  /** SPEC §7 (v2) context budget: tool definitions listed against calls (context-budget.ts). */
  async context(filters: EventFilters): Promise<ContextBudget> {
    const toolParams = new SqlParams();
    const sessionParams = new SqlParams();
    const [tools, [sessions]] = await Promise.all([
      this.query(contextToolsSql(filters, toolParams), toolParams.values),
      this.query(contextSessionsSql(filters, sessionParams), sessionParams.values),
    ]);
    return toContextBudget(tools, sessions);
  }

  /** Raw events, newest first; ties on ts are ordered by id so pages never skip or repeat. */
  async events(filters: EventFilters, limit: number, before?: EventCursor): Promise<EventsPage> {
    const params = new SqlParams();
    const conditions = [filterConditions(filters, params)];
    if (before) {
      const ts = `make_timestamptz(${params.add(before.tsMicros)}::BIGINT)`;
      conditions.push(
        before.id === undefined
          ? `ts < ${ts}`
          : `(ts < ${ts} OR (ts = ${ts} AND id < ${params.add(before.id)}))`,
      );
    }
    const columns = EVENT_COLUMNS.map((c) =>
      c === 'ts' ? 'epoch_us(ts) AS ts_us' : quoted(c),
    ).join(', ');
    const rows = await this.query(
      `SELECT ${columns} FROM events WHERE ${conditions.join(' AND ')}
       ORDER BY ts DESC, id DESC LIMIT ${params.add(limit + 1)}`,
      params.values,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      events: page.map(toEvent),
      next_before:
        rows.length > limit && last
          ? encodeCursor({ tsMicros: last.ts_us as bigint, id: requiredText(last.id) })
          : null,
    };
  }
}
