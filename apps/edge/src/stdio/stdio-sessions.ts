import { ErrorCode, GatewayError, type StdioUpstreamConfig } from '#common';
import type { Logger } from 'pino';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { StdioSession } from './stdio-session.js';

/**
 * The stdio children of this edge: one per client session, capped per namespace, reaped after
 * `idle_timeout` without traffic, all killed on shutdown.
 */
export class StdioSessions {
  private readonly sessions = new Map<string, StdioSession>();
  private readonly perNamespace = new Map<string, number>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {
    this.reaper = setInterval(() => this.reapIdle(), 1_000);
    this.reaper.unref();
  }

  get(childId: string): StdioSession | undefined {
    return this.sessions.get(childId);
  }

  async create(options: {
    namespace: string;
    upstream: StdioUpstreamConfig;
    timeoutMs: number;
    token: (childId: string) => string;
    recorder: ExchangeRecorder;
    filter: () => ToolFilter;
  }): Promise<StdioSession> {
    const count = this.perNamespace.get(options.namespace) ?? 0;
    if (count >= options.upstream.max_children) {
      throw new GatewayError(ErrorCode.Unavailable, `Too many sessions for namespace ${options.namespace}; try again later`, {
        'Retry-After': '5',
      });
    }
    this.perNamespace.set(options.namespace, count + 1);
    this.metrics.stdioChildren.inc({ namespace: options.namespace });
    let childId = '';
    const session = new StdioSession({
      ...options,
      get token() {
        return options.token(childId);
      },
      logger: this.logger,
      onClosed: (closed) => this.forget(closed, options.namespace),
    });
    childId = session.id;
    this.sessions.set(session.id, session);
    try {
      await session.start();
    } catch (error) {
      await session.close('failed to start');
      this.logger.error({ namespace: options.namespace, err: String(error) }, 'stdio backend failed to start');
      throw new GatewayError(ErrorCode.UpstreamError, `Backend process failed to start: ${(error as Error).message}`);
    }
    return session;
  }

  private forget(session: StdioSession, namespace: string): void {
    if (!this.sessions.delete(session.id)) return;
    this.perNamespace.set(namespace, Math.max(0, (this.perNamespace.get(namespace) ?? 1) - 1));
    this.metrics.stdioChildren.dec({ namespace });
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (now - session.lastActive > session.idleTimeoutMs) void session.close('idle');
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all([...this.sessions.values()].map((session) => session.close('gateway shutting down')));
  }
}
