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

/** A virtual server's traffic: the requests of its sessions, whichever member answered them. */
export interface ServerStats {
  server: string;
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

/**
 * (v2) The context budget of one tool over the range: what its definition costs every client it
 * is listed to, against how much it is called.
 */
export interface ContextTool {
  namespace: string;
  tool: string;
  /** Tokens of its definition in its most recent listing of the range that counted them (else 0). */
  tokens: number;
  /** tools/call requests of it (each row counted `count` times). */
  calls: number;
  /** Distinct keys that received it in a listing. */
  keys_listing: number;
  /** Distinct keys that called it. */
  keys_calling: number;
  /** tools/list responses that carried it. */
  listings: number;
}

export interface ContextTotals {
  /** Tools listed in the range. */
  tools: number;
  /** Sum of `tokens` over the tools: what one listing of all of them costs. */
  definition_tokens: number;
  /** Distinct sessions with a listing (a listing without a session counts as its own). */
  sessions: number;
  /** Average over those sessions of the tokens of the session's latest listing. */
  tokens_per_session: number;
  /** Tools listed but never called in the range. */
  unused_tools: number;
  /** Sum of `tokens` over the unused tools: what every listing pays for tools nobody called. */
  unused_tokens: number;
  /** Tokens of unused tools summed over every listing that carried them. */
  unused_tokens_delivered: number;
}

export interface ContextBudget {
  /** Unused tools first, then by tokens, most first. */
  tools: ContextTool[];
  totals: ContextTotals;
}

export type PinStatus = 'pinned' | 'drifted' | 'approved';

/** (v2) One pinned tool definition (SPEC §7 v2 Pinning), as `GET /api/v1/pins` answers it. */
export interface PinView {
  namespace: string;
  tool: string;
  /** `sha256:` and the hex SHA-256 of the pinned definition's canonical JSON. */
  hash: string;
  /** Tokens of the pinned definition; null when they could not be counted. */
  tokens: number | null;
  first_seen: string;
  status: PinStatus;
  /** Only on a drifted pin: the definition an edge saw since, not accepted yet. */
  drift?: {
    seen_at: string;
    hash: string;
    tokens: number | null;
    /** One line per changed field: `~ path: before → after`, `+ path: value`, `- path: value`. */
    diff: string;
  };
  approved_at: string | null;
  /** Key id of the admin who approved the current definition. */
  approved_by: string | null;
}
