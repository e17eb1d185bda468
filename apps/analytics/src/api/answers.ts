// The shapes of the analytics API's answers (SPEC §7), described for clients in openapi.ts.
// Imports nothing: the dashboard's browser module (dashboard/client/) imports these as types,
// so the page and the API cannot drift apart without the client failing to compile.
//
// `requests` counts requests (a per-minute row of rejected requests counts as many as it stands
// for); `rejected` those the gateway refused before a backend saw them (unauthorized, forbidden,
// rate_limited, bad_request, denied_tool); `errors` the others whose outcome is not `ok`;
// `error_rate` = errors / (requests - rejected), 0 when nothing was let through.

/** SPEC §7 (v2): outcomes of requests the gateway refused before a backend saw them. */
export type RejectedOutcome =
  'unauthorized' | 'forbidden' | 'rate_limited' | 'bad_request' | 'denied_tool';
/** SPEC §7 (v2): outcomes of requests let through that did not end `ok`. */
export type ErrorOutcome =
  'tool_error' | 'rpc_error' | 'upstream_error' | 'upstream_timeout' | 'client_closed';

export interface Summary {
  requests: number;
  rejected: number;
  errors: number;
  error_rate: number;
  tool_calls: number;
  unique_keys: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

export interface ToolStats {
  namespace: string;
  tool: string | null;
  calls: number;
  rejected: number;
  errors: number;
  error_rate: number;
  p50_ms: number;
  p95_ms: number;
}

export interface TimeseriesPoint {
  ts: string;
  requests: number;
  rejected: number;
  errors: number;
  p95_ms: number;
}

export interface KeyStats {
  /** null: the requests without a valid credential (refused before any key was known). */
  key_id: string | null;
  user: string | null;
  tenant: string | null;
  requests: number;
  rejected: number;
  errors: number;
  error_rate: number;
  last_seen: string;
}

export interface NamespaceStats {
  namespace: string;
  requests: number;
  rejected: number;
  errors: number;
  error_rate: number;
  p95_ms: number;
}

/** One bucket of the latency histogram: requests whose duration is in [lower_ms, upper_ms). */
export interface HistogramBucket {
  lower_ms: number;
  /** null for the last bucket, which has no upper bound. */
  upper_ms: number | null;
  requests: number;
  rejected: number;
  errors: number;
}

export interface LatencyHistogram {
  /** Every bucket of LATENCY_BUCKET_BOUNDS, in order, empty ones as zeros. */
  buckets: HistogramBucket[];
}
