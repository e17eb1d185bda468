import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The edge's Prometheus series (SPEC §8), one registry per edge instance. */
export class EdgeMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'mcp_gateway_requests_total',
    help: 'JSON-RPC requests and rejected HTTP requests, by namespace and outcome',
    labelNames: ['namespace', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: 'mcp_gateway_request_duration_seconds',
    help: 'Time from receiving a JSON-RPC request to relaying its response',
    labelNames: ['namespace'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'mcp_gateway_upstream_errors_total',
    help: 'Backend failures (unreachable, bad answer, timeout, died mid-stream)',
    labelNames: ['namespace', 'kind'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'mcp_gateway_rate_limited_total',
    help: 'Requests rejected by a rate limit, by scope',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });

  readonly rateLimitStoreErrors = new Counter({
    name: 'mcp_gateway_rate_limit_store_errors_total',
    help: 'Rate-limit decisions taken without the shared store (local fallback or deny), by limiter',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'mcp_gateway_auth_failures_total',
    help: 'Refused keys (failed) and requests refused for too many failed keys from one client (blocked)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly authCache = new Counter({
    name: 'mcp_gateway_auth_cache_total',
    help: 'Key verification cache lookups (hit, miss, stale: served while the auth service is unreachable)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly eventBufferDepth = new Gauge({
    name: 'mcp_gateway_event_buffer_depth',
    help: 'Analytics events waiting to be published',
    registers: [this.registry],
  });

  readonly eventsDropped = new Counter({
    name: 'mcp_gateway_events_dropped_total',
    help: 'Analytics events dropped because the buffer was full',
    registers: [this.registry],
  });

  readonly activeStreams = new Gauge({
    name: 'mcp_gateway_active_streams',
    help: 'SSE streams currently open to clients',
    registers: [this.registry],
  });

  readonly bridgedSessions = new Gauge({
    name: 'mcp_gateway_bridged_sessions',
    help: 'Bridged sessions (stdio children, legacy SSE connections) this edge holds, per namespace and key',
    labelNames: ['namespace', 'key_id'] as const,
    registers: [this.registry],
  });

  readonly stdioChildren = new Gauge({
    name: 'mcp_gateway_stdio_children',
    help: "stdio backend processes alive on this edge (sessions' own, warm and shared ones)",
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly toolDrifts = new Counter({
    name: 'mcp_gateway_tool_drift_total',
    help: 'Pinned tool definitions this edge saw change (each drift is counted by the edge that recorded it)',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly driftedTools = new Gauge({
    name: 'mcp_gateway_tools_drifted',
    help: 'Pinned tools whose definition changed and is not approved yet, per namespace (from the shared pin store)',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly pinStoreErrors = new Counter({
    name: 'mcp_gateway_pin_store_errors_total',
    help: 'Pin writes that failed because the pin store was unreachable (traffic is never held up by them)',
    registers: [this.registry],
  });

  readonly virtualMembersDown = new Counter({
    name: 'mcp_gateway_virtual_member_unavailable_total',
    help: 'Times a member of a virtual server was left out (down, or slower than the bounded wait) or lost mid-session',
    labelNames: ['server', 'namespace'] as const,
    registers: [this.registry],
  });

  readonly virtualNameCollisions = new Counter({
    name: 'mcp_gateway_virtual_name_collisions_total',
    help: 'Tools or prompts of a virtual server left out because two members gave them the same name',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });

  // Labelled series of the hot path, looked up once: prom-client hashes the label set on every
  // inc()/observe() that names it.
  private readonly requestSeries = new Map<string, Counter.Internal>();
  private readonly durationSeries = new Map<string, Histogram.Internal<'namespace'>>();
  readonly authCacheHits = this.authCache.labels('hit');

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  countRequest(namespace: string, outcome: string): void {
    const key = `${namespace}\n${outcome}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      series = this.requests.labels(namespace, outcome);
      this.requestSeries.set(key, series);
    }
    series.inc();
  }

  observeDuration(namespace: string, seconds: number): void {
    let series = this.durationSeries.get(namespace);
    if (!series) {
      series = this.duration.labels(namespace);
      this.durationSeries.set(namespace, series);
    }
    series.observe(seconds);
  }
}
