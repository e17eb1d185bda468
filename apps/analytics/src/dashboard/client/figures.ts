// The headline cards and the sentences under the charts: the figures in words, for a person
// and for a screen reader.
import type { HistogramBucket, Summary, TimeseriesPoint } from './api.js';
import type { TimeRange } from './filters.js';
import { bucketRange, bucketTime, count, millis, percent, plural } from './format.js';

const CARDS: Record<keyof Summary, (s: Summary) => string> = {
  requests: (s) => count(s.requests),
  rejected: (s) => count(s.rejected),
  errors: (s) => count(s.errors),
  error_rate: (s) => percent(s.error_rate),
  p50_ms: (s) => millis(s.p50_ms),
  p95_ms: (s) => millis(s.p95_ms),
  p99_ms: (s) => millis(s.p99_ms),
  unique_keys: (s) => count(s.unique_keys),
  tool_calls: (s) => count(s.tool_calls),
};

function isMetric(name: string | undefined): name is keyof Summary {
  return name !== undefined && Object.hasOwn(CARDS, name);
}

/** Fills each `.card[data-metric]` from the summary; `null` shows dashes. */
export function renderCards(summary: Summary | null): void {
  for (const card of document.querySelectorAll<HTMLElement>('.card[data-metric]')) {
    const metric = card.dataset.metric;
    const value = card.querySelector('.value');
    if (!isMetric(metric) || !value) continue;
    value.textContent = summary ? CARDS[metric](summary) : '—';
    value.classList.toggle('zero', !summary || summary[metric] === 0);
  }
}

export function volumeSentence(series: TimeseriesPoint[], range: TimeRange): string {
  const total = series.reduce((sum, p) => sum + p.requests, 0);
  if (total === 0) return 'No requests in this range.';
  const rejected = series.reduce((sum, p) => sum + p.rejected, 0);
  const errors = series.reduce((sum, p) => sum + p.errors, 0);
  const busiest = series.reduce((best, p) => (p.requests > best.requests ? p : best));
  return (
    `${plural(total, 'request')}: ${count(rejected)} rejected, ${plural(errors, 'error')}; ` +
    `busiest ${range.per.replace('per ', '')}: ${plural(busiest.requests, 'request')} at ` +
    `${bucketTime(Date.parse(busiest.ts), range.bucket)}.`
  );
}

export function latencySentence(
  series: TimeseriesPoint[],
  range: TimeRange,
  summary: Summary,
): string {
  const timed = series.filter((p) => p.requests > 0);
  if (timed.length === 0) return 'No requests in this range.';
  const slowest = timed.reduce((best, p) => (p.p95_ms > best.p95_ms ? p : best));
  return (
    `Slowest ${range.per.replace('per ', '')}: p95 ${millis(slowest.p95_ms)} at ` +
    `${bucketTime(Date.parse(slowest.ts), range.bucket)}; p95 over the range ${millis(summary.p95_ms)}.`
  );
}

export function histogramSentence(buckets: HistogramBucket[], summary: Summary): string {
  const timed = buckets.reduce((sum, b) => sum + b.requests, 0);
  if (timed === 0) return 'No timed calls in this range.';
  const mode = buckets.reduce((best, b) => (b.requests > best.requests ? b : best));
  const slowest = buckets.findLast((b) => b.requests > 0) ?? mode;
  return (
    `${plural(timed, 'timed request')}; most ${bucketRange(mode.lower_ms, mode.upper_ms)}, ` +
    `slowest ${bucketRange(slowest.lower_ms, slowest.upper_ms)}; ` +
    `p50 ${millis(summary.p50_ms)}, p95 ${millis(summary.p95_ms)}, p99 ${millis(summary.p99_ms)}.`
  );
}
