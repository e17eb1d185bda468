import { ErrorCode, GatewayError, isStdioUpstream } from '#common';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { BridgeSession, type BridgeSessionOptions } from './bridge-session.js';

const DEFAULT_IDLE_MS = 10 * 60_000;
const DEFAULT_MAX_SESSIONS = 256;

/**
 * The bridged sessions of this edge (stdio children, legacy SSE backends, legacy SSE clients):
 * capped per namespace (`max_children` for stdio), reaped after their idle time, all closed on
 * shutdown.
 */
export class BridgeSessions {
  private readonly sessions = new Map<string, BridgeSession>();
  private readonly perNamespace = new Map<string, number>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {
    this.reaper = setInterval(() => this.reapIdle(), 1_000);
    this.reaper.unref();
  }

  get(id: string): BridgeSession | undefined {
    return this.sessions.get(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  async create(
    options: Omit<BridgeSessionOptions, 'logger' | 'onClosed' | 'idleTimeoutMs'>,
  ): Promise<BridgeSession> {
    const stdio = isStdioUpstream(options.upstream) ? options.upstream : undefined;
    const cap = stdio?.max_children ?? DEFAULT_MAX_SESSIONS;
    const count = this.perNamespace.get(options.namespace) ?? 0;
    if (count >= cap) {
      throw new GatewayError(
        ErrorCode.Unavailable,
        `Too many sessions for namespace ${options.namespace}; try again later`,
        {
          'Retry-After': '5',
        },
      );
    }
    this.perNamespace.set(options.namespace, count + 1);
    if (stdio) this.metrics.stdioChildren.inc({ namespace: options.namespace });
    const session = new BridgeSession({
      ...options,
      idleTimeoutMs: stdio?.idle_timeout ?? DEFAULT_IDLE_MS,
      logger: this.logger,
      onClosed: (closed) => this.forget(closed, options.namespace, stdio !== undefined),
    });
    this.sessions.set(session.id, session);
    try {
      await session.start();
    } catch (error) {
      await session.close('failed to start');
      this.logger.error(
        {
          request_id: options.exchange.identity.request_id,
          namespace: options.namespace,
          err: String(error),
        },
        'backend connection failed to start',
      );
      // The log says where and why; the client is told what.
      throw new GatewayError(ErrorCode.UpstreamError, 'Backend failed to start');
    }
    return session;
  }

  private forget(session: BridgeSession, namespace: string, stdio: boolean): void {
    if (!this.sessions.delete(session.id)) return;
    this.perNamespace.set(namespace, Math.max(0, (this.perNamespace.get(namespace) ?? 1) - 1));
    if (stdio) this.metrics.stdioChildren.dec({ namespace });
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      // A legacy client's open SSE stream is activity in itself: only its own close ends it.
      if (session.clientSide === 'streamable' && now - session.lastActive > session.idleTimeoutMs) {
        void session.close('idle');
      }
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all(
      [...this.sessions.values()].map((session) => session.close('gateway shutting down')),
    );
  }
}
