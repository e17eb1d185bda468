/**
 * Analytics query latency (SPEC §10: summary and tools p95 ≤ 300 ms over 10 M events).
 *
 *   npm run build && node dist/apps/analytics/bench/query-bench.js [events=10000000] [runs=20]
 *
 * Fills a temp DuckDB file in SQL (30 days of events over 5 namespaces, 20 tools, 50 keys),
 * then times each endpoint's query, unfiltered and with a namespace filter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AnalyticsQueries } from '../src/api/analytics-queries.js';
import type { EventFilters } from '../src/api/query-params.js';
import { EventStore } from '../src/storage/event-store.js';

const total = Number(process.argv[2] ?? 10_000_000);
const runs = Number(process.argv[3] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'analytics-query-bench-'));
const path = join(dir, 'bench.duckdb');

async function fill(): Promise<void> {
  const store = await EventStore.open(path, {
    logger: pino({ level: 'warn' }),
    queryTimeoutMs: 3_600_000,
  });
  const started = performance.now();
  // Filled through a read connection: plain SQL, no ingest path involved.
  await store.query(
    `INSERT INTO events
     SELECT uuid()::VARCHAR, now() - to_milliseconds((i * 259)::BIGINT % 2592000000), 'edge-' || (i % 3), uuid()::VARCHAR,
            'tenant-' || (i % 3), 'key-' || (i % 50), 'user-' || (i % 50), 'ns-' || (i % 5), 'streamable', '2025-06-18', NULL,
            CASE WHEN i % 2 = 0 THEN 'client_to_server' ELSE 'server_to_client' END,
            CASE WHEN i % 2 = 0 THEN 'request' ELSE 'response' END,
            i::VARCHAR, 'tools/call', 'tool-' || (i % 20), CASE WHEN i % 10 = 0 THEN 'tool_error' ELSE 'ok' END,
            200, NULL, (i % 997)::DOUBLE, (i % 500)::DOUBLE, 1024, 2048, 'bench', '1.0',
            NULL, 'key', NULL, 1, NULL
     FROM range(${total}) t(i) ORDER BY 2`,
  );
  console.log(
    `filled ${total.toLocaleString('en')} events in ${Math.round(performance.now() - started)} ms`,
  );
  await store.close();
}

async function time(label: string, run: () => Promise<unknown>): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const p = (q: number) =>
    Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]);
  console.log(
    `${label.padEnd(34)} p50 ${String(p(0.5)).padStart(5)} ms   p95 ${String(p(0.95)).padStart(5)} ms`,
  );
}

try {
  await fill();
  const store = await EventStore.open(path, { logger: pino({ level: 'warn' }) });
  const queries = new AnalyticsQueries(store);
  const all: EventFilters = {};
  const ns: EventFilters = { namespace: 'ns-2' };
  const day: EventFilters = { from: new Date(Date.now() - 86_400_000) };
  await time('summary', () => queries.summary(all));
  await time('summary ?namespace', () => queries.summary(ns));
  await time('summary ?from=-24h', () => queries.summary(day));
  await time('tools', () => queries.tools(all, 50));
  await time('tools ?namespace', () => queries.tools(ns, 50));
  await time('timeseries 1h over 24h', () => queries.timeseries(day, '1h'));
  await time('keys', () => queries.keys(all));
  await time('namespaces', () => queries.namespaces(all));
  await time('events limit 100', () => queries.events(all, 100));
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
