import { EVENT_COLUMNS, type McpEvent } from '#common';
import type { JS } from '@duckdb/node-api';
import type { Row } from '../storage/event-store.js';

// DuckDB rows to API values: BIGINT counts arrive as bigint, empty aggregates as null, and the
// API promises numbers (0 when there is no data, never null or NaN) and ISO 8601 times.

export function toEvent(row: Row): McpEvent {
  const event: Record<string, unknown> = {};
  for (const column of EVENT_COLUMNS) {
    if (column === 'ts') event.ts = isoFromMicros(row.ts_us as bigint);
    else {
      const value = row[column];
      event[column] = typeof value === 'bigint' ? Number(value) : (value ?? null);
    }
  }
  return event as unknown as McpEvent;
}

/** ISO 8601 in UTC, keeping microseconds when the event had them. */
function isoFromMicros(micros: bigint): string {
  const iso = new Date(Number(micros / 1000n)).toISOString();
  const extra = ((micros % 1000n) + 1000n) % 1000n;
  return extra === 0n ? iso : `${iso.slice(0, -1)}${extra.toString().padStart(3, '0')}Z`;
}

export function count(value: JS): number {
  if (typeof value === 'bigint') return Number(value);
  return typeof value === 'number' ? value : 0;
}

/** Durations in ms, rounded to the microsecond; no data is 0, never null or NaN. */
export function millis(value: JS): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value * 1000) / 1000 : 0;
}

export function quantiles(value: JS, n: number): number[] {
  const list = Array.isArray(value) ? value : [];
  return Array.from({ length: n }, (_, i) => millis(list[i] ?? null));
}

export function rate(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

/** SPEC §7 (v2): errors over the requests the gateway let through (not rejected). */
export function errorRate(errors: number, requests: number, rejected: number): number {
  return rate(errors, requests - rejected);
}

export function text(value: JS): string | null {
  return typeof value === 'string' ? value : null;
}

export function requiredText(value: JS): string {
  if (typeof value !== 'string') throw new Error(`expected a string column, got ${typeof value}`);
  return value;
}
