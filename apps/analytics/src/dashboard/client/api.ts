// The keyed analytics API, as the page calls it: the admin key as a Bearer token, never in a
// URL; same origin only (the CSP's connect-src 'self').
import type {
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from '../../api/answers.js';

export type {
  HistogramBucket,
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from '../../api/answers.js';

/** The fields of an event (SPEC §7) the page shows; the API answers all of them. */
export interface EventRow {
  ts: string;
  direction: 'client_to_server' | 'server_to_client';
  namespace: string;
  key_id: string | null;
  client_name: string | null;
  method: string | null;
  tool: string | null;
  outcome: string;
  http_status: number | null;
  duration_ms: number | null;
  count: number;
  client_network: string | null;
}

export interface EventsPage {
  events: EventRow[];
  next_before: string | null;
}

/** What each endpoint answers. */
export interface Answers {
  summary: Summary;
  timeseries: TimeseriesPoint[];
  tools: ToolStats[];
  keys: KeyStats[];
  namespaces: NamespaceStats[];
  events: EventsPage;
  histogram: LatencyHistogram;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export async function getAnswer<E extends keyof Answers>(
  endpoint: E,
  params: URLSearchParams,
  key: string,
  signal: AbortSignal,
): Promise<Answers[E]> {
  const response = await fetch(`/api/v1/${endpoint}?${params.toString()}`, {
    headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
    signal,
  });
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new ApiError(
      response.status,
      typeof message === 'string' ? message : response.statusText,
    );
  }
  return body as Answers[E];
}
