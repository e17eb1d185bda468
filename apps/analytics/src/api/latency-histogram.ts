import type { Row } from '../storage/event-store.js';
import type { HistogramBucket, LatencyHistogram } from './answers.js';
import { count } from './row-mapping.js';

/**
 * Upper bounds (ms, exclusive) of the latency histogram's buckets: a fixed 1-2-5 log scale, so
 * histograms of any tool, range or moment compare bucket by bucket, and one bar spans the same
 * ratio of durations wherever it is. Below the first bound: calls answered in under a
 * millisecond (a hidden tool the gateway refused itself); above the last: the open-ended tail.
 */
export const LATENCY_BUCKET_BOUNDS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000,
] as const;

/**
 * Counts of the timed requests of `source` (a relation over the requests table) per bucket:
 * exact, one scan, the bucket numbered by a CASE over the constant bounds. Rows without a
 * duration (a per-minute row of rejected requests) are in no bucket.
 */
export function histogramSql(source: string): string {
  const cases = LATENCY_BUCKET_BOUNDS.map((bound, i) => `WHEN duration_ms < ${bound} THEN ${i}`);
  return `SELECT CASE ${cases.join(' ')} ELSE ${LATENCY_BUCKET_BOUNDS.length} END AS bucket,
  sum("count") AS requests, sum("count") FILTER (WHERE is_rejected) AS rejected,
  sum("count") FILTER (WHERE is_error) AS errors
FROM (${source}) f WHERE duration_ms IS NOT NULL
GROUP BY bucket`;
}

/** Every bucket in order, those without requests as zeros. */
export function toHistogram(rows: readonly Row[]): LatencyHistogram {
  const buckets: HistogramBucket[] = [0, ...LATENCY_BUCKET_BOUNDS].map((lower, i) => ({
    lower_ms: lower,
    upper_ms: LATENCY_BUCKET_BOUNDS[i] ?? null,
    requests: 0,
    rejected: 0,
    errors: 0,
  }));
  for (const row of rows) {
    const bucket = buckets[count(row.bucket)];
    bucket.requests = count(row.requests);
    bucket.rejected = count(row.rejected);
    bucket.errors = count(row.errors);
  }
  return { buckets };
}
