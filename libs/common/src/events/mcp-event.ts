// The stream and subjects of events (SPEC §7) are named by natsNames (contracts/nats-names.ts).

export const TRANSPORTS = ['streamable', 'sse', 'stdio'] as const;
export const DIRECTIONS = ['client_to_server', 'server_to_client'] as const;
export const KINDS = ['request', 'notification', 'response'] as const;
export const OUTCOMES = [
  'ok',
  'tool_error',
  'rpc_error',
  'denied_tool',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'bad_request',
  'upstream_error',
  'upstream_timeout',
  'client_closed',
] as const;

export const AUTH_METHODS = ['key', 'oauth', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export type EventTransport = (typeof TRANSPORTS)[number];
export type EventDirection = (typeof DIRECTIONS)[number];
export type EventKind = (typeof KINDS)[number];
export type EventOutcome = (typeof OUTCOMES)[number];

/**
 * One analytics event: one JSON-RPC message the gateway handled, or one rejected HTTP request.
 * Field names are snake_case and are also the DuckDB column names. Arguments and results are
 * never recorded.
 */
export interface McpEvent {
  id: string;
  ts: string;
  edge_id: string;
  request_id: string;
  tenant: string | null;
  key_id: string | null;
  user: string | null;
  namespace: string;
  transport: EventTransport;
  protocol_version: string | null;
  session_id: string | null;
  direction: EventDirection;
  /** null for a rejected HTTP request that held no JSON-RPC message. */
  kind: EventKind | null;
  jsonrpc_id: string | null;
  method: string | null;
  tool: string | null;
  outcome: EventOutcome;
  http_status: number | null;
  error_code: string | null;
  duration_ms: number | null;
  upstream_ms: number | null;
  bytes_in: number | null;
  bytes_out: number | null;
  client_name: string | null;
  client_version: string | null;
  /** (v2) The virtual server the client addressed, or null for a namespace route. */
  server: string | null;
  /** (v2) How the client proved who it is: `key`, `oauth`, or `none` (no valid credential). */
  auth_method: AuthMethod;
  /** (v2) For a tools/call: the name the client used, when a prefix or override changed it. */
  client_tool: string | null;
  /**
   * (v2) The revision spoken with the backend, when the gateway bridged between eras (a
   * 2026-07-28 client on a 2025 backend, or the reverse); else the client's (`protocol_version`).
   * Absent from events of edges older than it.
   */
  upstream_protocol_version?: string | null;
  /**
   * (v2) How many requests this event stands for: 1, except for the per-minute rows of rejected
   * requests without a valid credential (one row per minute, namespace, outcome and network).
   */
  count: number;
  /** (v2) The client network (IPv4 address or IPv6 /64) of a per-minute rejected-request row. */
  client_network: string | null;
  /**
   * (v2) On the response to a `tools/list`: each tool the client received (after filtering,
   * prefixes and overrides) with the tokens of its definition as received (context budget).
   */
  tools_listed: ListedTool[] | null;
  /**
   * (v2) On a `tool_drift` event (method `tool_drift`): JSON of ToolDriftDetail, the pinned and
   * the new hash and a readable diff.
   */
  detail: string | null;
}

/** One entry of `tools_listed`. */
export interface ListedTool {
  tool: string;
  /** Tokens of the definition as the client received it; null when it could not be counted. */
  tokens: number | null;
}

/** What `detail` holds on a `tool_drift` event. */
export interface ToolDriftDetail {
  previous_hash: string;
  hash: string;
  diff: string;
  /** `alert`: reported only; `block`: the tool is hidden until an admin approves it. */
  mode: 'alert' | 'block';
}

/**
 * The longest `detail` an event carries (characters): the analytics service refuses longer ones,
 * so the edge cuts a drift's diff to fit (ExchangeRecorder.toolDrift).
 */
export const MAX_EVENT_DETAIL = 16_384;

/** `method` of the event an edge emits when a pinned tool's definition changed (SPEC §7 v2). */
export const TOOL_DRIFT_METHOD = 'tool_drift';

/** Column order used by writers and readers alike. */
export const EVENT_COLUMNS = [
  'id',
  'ts',
  'edge_id',
  'request_id',
  'tenant',
  'key_id',
  'user',
  'namespace',
  'transport',
  'protocol_version',
  'session_id',
  'direction',
  'kind',
  'jsonrpc_id',
  'method',
  'tool',
  'outcome',
  'http_status',
  'error_code',
  'duration_ms',
  'upstream_ms',
  'bytes_in',
  'bytes_out',
  'client_name',
  'client_version',
  'server',
  'auth_method',
  'client_tool',
  'upstream_protocol_version',
  'count',
  'client_network',
  'tools_listed',
  'detail',
] as const satisfies ReadonlyArray<keyof McpEvent>;

/** Narrow check used by consumers before writing: rejects what is not an event at all. */
export function isMcpEvent(value: unknown): value is McpEvent {
  if (!value || typeof value !== 'object') return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.id === 'string' &&
    typeof event.ts === 'string' &&
    !Number.isNaN(Date.parse(event.ts)) &&
    typeof event.namespace === 'string' &&
    (OUTCOMES as readonly string[]).includes(event.outcome as string) &&
    (DIRECTIONS as readonly string[]).includes(event.direction as string) &&
    (TRANSPORTS as readonly string[]).includes(event.transport as string)
  );
}
