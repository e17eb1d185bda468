import { ErrorCode, GatewayError, isStdioUpstream } from '#common';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { BridgeSession, type BridgeSessionOptions } from './bridge-session.js';

const DEFAULT_IDLE_MS = 10 * 60_000;
const DEFAULT_MAX_SESSIONS = 256;
/** A session whose client never went past initialize ends after this (or a quarter of its idle time). */
const NEVER_USED_MS = 30_000;

export type NewSession = Omit<BridgeSessionOptions, 'logger' | 'onClosed' | 'idleTimeoutMs'> & {
  /** The key that opens it: its sessions per namespace are capped. */
  keyId: string;
  /** `server.max_sessions_per_key` */
  maxPerKey: number;
};

/**
 * The bridged sessions of this edge (stdio children, legacy SSE backends, legacy SSE clients):
 * capped per namespace (`max_children` for stdio) and per key and namespace
 * (`server.max_sessions_per_key`, so one key's leaked sessions cannot lock a namespace for every
 * tenant), reaped after their idle time — much sooner when the client never went past
 * initialize — and all closed on shutdown. A refusal says honestly when to try again: when the
 * oldest idle session in the way will have been reaped.
 */
export class BridgeSessions {
  private readonly sessions = new Map<string, BridgeSession>();
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

  async create(options: NewSession): Promise<BridgeSession> {
    const stdio = isStdioUpstream(options.upstream) ? options.upstream : undefined;
    this.admit(options, stdio?.max_children ?? DEFAULT_MAX_SESSIONS);
    const labels = { namespace: options.namespace, key_id: options.keyId };
    this.metrics.bridgedSessions.inc(labels);
    if (stdio) this.metrics.stdioChildren.inc({ namespace: options.namespace });
    const session = new BridgeSession({
      ...options,
      idleTimeoutMs: stdio?.idle_timeout ?? DEFAULT_IDLE_MS,
      logger: this.logger,
      onClosed: (closed) => {
        if (!this.sessions.delete(closed.id)) return;
        this.metrics.bridgedSessions.dec(labels);
        if (stdio) this.metrics.stdioChildren.dec({ namespace: options.namespace });
      },
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

  /** The namespace's cap, then the key's; each refusal names when a place frees up. */
  private admit(options: NewSession, namespaceCap: number): void {
    const inNamespace = [...this.sessions.values()].filter(
      (s) => s.namespace === options.namespace,
    );
    if (inNamespace.length >= namespaceCap) {
      throw new GatewayError(
        ErrorCode.Unavailable,
        `Too many sessions for namespace ${options.namespace}; try again later`,
        { 'Retry-After': String(retryAfterSeconds(inNamespace)) },
      );
    }
    const keys = inNamespace.filter((s) => s.keyId === options.keyId);
    if (keys.length >= options.maxPerKey) {
      throw new GatewayError(
        ErrorCode.TooManySessions,
        `Too many sessions: this key holds ${keys.length} in namespace ${options.namespace}; end one (DELETE) or try again later`,
        { 'Retry-After': String(retryAfterSeconds(keys)) },
      );
    }
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      // A legacy client's open SSE stream is activity in itself: only its own close ends it.
      if (session.clientSide !== 'streamable') continue;
      if (now - session.lastActive > session.idleTimeoutMs) void session.close('idle');
      else if (!session.used && now - session.createdAt > neverUsedMs(session)) {
        void session.close('never used after initialize');
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

function neverUsedMs(session: BridgeSession): number {
  return Math.min(NEVER_USED_MS, session.idleTimeoutMs / 4);
}

/** Seconds until the first of `sessions` is reaped if nobody uses it meanwhile (at least 1). */
function retryAfterSeconds(sessions: BridgeSession[]): number {
  const now = Date.now();
  let soonest = Infinity;
  for (const session of sessions) {
    if (session.clientSide !== 'streamable') continue; // a legacy stream ends when its client leaves
    const idleEnd = session.lastActive + session.idleTimeoutMs;
    const unusedEnd = session.used ? Infinity : session.createdAt + neverUsedMs(session);
    soonest = Math.min(soonest, idleEnd, unusedEnd);
  }
  if (!Number.isFinite(soonest)) return 60;
  return Math.max(1, Math.ceil((soonest - now) / 1000));
}
