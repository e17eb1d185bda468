// What the page shows, as the URL's query string keeps it: shareable, bookmarkable, and the
// back button walks through the filters clicked. Never the key: it stays in session storage.
// No DOM here (a unit spec runs it under Node).

export interface TimeRange {
  ms: number;
  /** The timeseries bucket: each range asks for a readable number of bars (15–168). */
  bucket: '1m' | '1h' | '1d';
  bucketMs: number;
  per: string;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const RANGES = {
  '15m': { ms: 15 * MINUTE, bucket: '1m', bucketMs: MINUTE, per: 'per minute' },
  '1h': { ms: HOUR, bucket: '1m', bucketMs: MINUTE, per: 'per minute' },
  '24h': { ms: DAY, bucket: '1h', bucketMs: HOUR, per: 'per hour' },
  '7d': { ms: 7 * DAY, bucket: '1h', bucketMs: HOUR, per: 'per hour' },
  '30d': { ms: 30 * DAY, bucket: '1d', bucketMs: DAY, per: 'per day' },
} as const satisfies Record<string, TimeRange>;

export type RangeName = keyof typeof RANGES;
export const DEFAULT_RANGE: RangeName = '1h';

/**
 * The API filters a click can set (SPEC §7 query parameters), in the order the URL lists them:
 * a virtual server before the namespaces it spans.
 */
export const FILTER_NAMES = ['server', 'namespace', 'tool', 'key_id', 'tenant'] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

export type PageFilters = { range: RangeName } & Record<FilterName, string | null>;

/** A change to the filters: a name set to a value, or to null to drop it. */
export type FilterChange = Partial<PageFilters>;

export function isRange(value: string | null): value is RangeName {
  return value !== null && Object.hasOwn(RANGES, value);
}

/** The filters a query string (`?range=24h&tool=web`, or a fragment of an older link) holds. */
export function parseFilters(query: string): PageFilters {
  const params = new URLSearchParams(query.replace(/^[?#]/, ''));
  const range = params.get('range');
  const filters: PageFilters = {
    range: isRange(range) ? range : DEFAULT_RANGE,
    server: null,
    namespace: null,
    tool: null,
    key_id: null,
    tenant: null,
  };
  for (const name of FILTER_NAMES) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

/** The query string of `filters`, empty for the defaults; the default range is left out. */
export function filtersQuery(filters: PageFilters): string {
  const params = new URLSearchParams();
  if (filters.range !== DEFAULT_RANGE) params.set('range', filters.range);
  for (const name of FILTER_NAMES) {
    const value = filters[name];
    if (value !== null) params.set(name, value);
  }
  const query = params.toString();
  return query === '' ? '' : `?${query}`;
}

export function withChange(filters: PageFilters, change: FilterChange): PageFilters {
  return { ...filters, ...change };
}

export function sameFilters(a: PageFilters, b: PageFilters): boolean {
  return a.range === b.range && FILTER_NAMES.every((name) => a[name] === b[name]);
}

/** Whether any API filter is set (the range alone is no filter). */
export function isFiltered(filters: PageFilters): boolean {
  return FILTER_NAMES.some((name) => filters[name] !== null);
}

/** The API's query parameters for `filters` from `fromIso` on, plus `extra`. */
export function apiParams(
  filters: PageFilters | null,
  fromIso: string,
  extra: Record<string, string> = {},
): URLSearchParams {
  const params = new URLSearchParams({ from: fromIso });
  for (const name of FILTER_NAMES) {
    const value = filters?.[name] ?? null;
    if (value !== null) params.set(name, value);
  }
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params;
}
