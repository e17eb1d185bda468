import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  type ConfigStore,
  ErrorCode,
  GatewayError,
  isStdioUpstream,
  type NamespaceConfig,
  type StdioUpstreamConfig,
} from '#common';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { createBackendTransport } from './backend-transport.js';
import { BridgeSession, type BridgeSessionOptions } from './bridge-session.js';
import { SharedChild } from './shared-child.js';
import { childSpec, StdioChild } from './stdio-child.js';
import { WarmPool, type WarmPoolHost } from './warm-pool.js';

const DEFAULT_IDLE_MS = 10 * 60_000;
const DEFAULT_MAX_SESSIONS = 256;
/** A session whose client never went past initialize ends after this (or a quarter of its idle time). */
const NEVER_USED_MS = 30_000;

export type NewSession = Omit<
  BridgeSessionOptions,
  'logger' | 'onClosed' | 'idleTimeoutMs' | 'connect'
> & {
  /** The key that opens it: its sessions per namespace are capped. */
  keyId: string;
  /** `server.max_sessions_per_key` */
  maxPerKey: number;
  /** A backend of the caller's making (a virtual server's); else the namespace's upstream's. */
  connect?: BridgeSessionOptions['connect'];
};

/**
 * The bridged sessions of this edge (stdio children, legacy SSE backends, legacy SSE clients):
 * capped per namespace (`max_children` for stdio) and per key and namespace
 * (`server.max_sessions_per_key`, so one key's leaked sessions cannot lock a namespace for every
 * tenant), reaped after their idle time — much sooner when the client never went past
 * initialize — and all closed on shutdown. A refusal says honestly when to try again: when the
 * oldest idle session in the way will have been reaped.
 *
 * A stdio session gets its backend here: a warm child when the namespace's pool has one
 * (warm-pool.ts), else a child spawned for it; or, on a `shared` namespace, a lane on the
 * namespace's one child (shared-child.ts). Children count against `max_children` whoever holds
 * them; sessions on a shared child are capped as other bridged sessions are.
 */
export class BridgeSessions implements WarmPoolHost {
  private readonly sessions = new Map<string, BridgeSession>();
  /** Sessions holding a child of their own, per namespace. */
  private readonly held = new Map<string, number>();
  /** Member connections per namespace and key (holderOf): they count as the key's sessions. */
  private readonly memberHeld = new Map<string, number>();
  /** The child each `shared` namespace's new sessions join (a retired one ends with its last). */
  private readonly shared = new Map<string, SharedChild>();
  private readonly warm: WarmPool;
  private readonly reaper: NodeJS.Timeout;
  private readonly unwatch: () => void;
  private closing = false;
  /**
   * Ends one idle backend session `keyId` holds in `namespace` for nobody in particular (the
   * 2026-07-28 bridge's pools), true if it did: tried before the key is refused at its cap.
   */
  reclaimer?: (namespace: string, keyId: string) => boolean;

  constructor(
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {
    this.reaper = setInterval(() => this.reapIdle(), 1_000);
    this.reaper.unref();
    this.warm = new WarmPool(config, this, metrics, logger);
    this.unwatch = config.onChange(() => this.reconfigure());
    this.warm.fillAll();
  }

  get(id: string): BridgeSession | undefined {
    return this.sessions.get(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  async create(options: NewSession): Promise<BridgeSession> {
    const { namespace } = options;
    const stdio =
      options.upstream && isStdioUpstream(options.upstream) ? options.upstream : undefined;
    const owned = stdio !== undefined && !stdio.shared;
    this.admit(options, stdio);
    const labels = { namespace, key_id: options.keyId };
    this.metrics.bridgedSessions.inc(labels);
    if (owned) this.held.set(namespace, (this.held.get(namespace) ?? 0) + 1);
    const session = new BridgeSession({
      ...options,
      connect: options.connect ?? this.connector(namespace, options.upstream!),
      idleTimeoutMs: stdio?.idle_timeout ?? DEFAULT_IDLE_MS,
      logger: this.logger,
      onClosed: (closed) => {
        if (!this.sessions.delete(closed.id)) return;
        this.metrics.bridgedSessions.dec(labels);
        if (!owned) return;
        this.held.set(namespace, (this.held.get(namespace) ?? 1) - 1);
        this.warm.refill(namespace); // the place it leaves may be the pool's
      },
    });
    this.sessions.set(session.id, session);
    // What this session took from the pool is replaced in the background.
    if (stdio) this.warm.refill(namespace);
    try {
      await session.start();
    } catch (error) {
      await session.close('failed to start');
      this.logger.error(
        {
          request_id: options.exchange.identity.request_id,
          namespace,
          err: String(error),
        },
        'backend connection failed to start',
      );
      // The log says where and why; the client is told what.
      throw new GatewayError(ErrorCode.UpstreamError, 'Backend failed to start');
    }
    return session;
  }

  /**
   * A connection to `namespace`'s backend held for `keyId` by one of its virtual server sessions
   * or its 2026-07-28 bridge pool: until `release` it counts against the key's sessions in that
   * namespace (`server.max_sessions_per_key`, with the key's sessions of its own there: 429
   * `too_many_sessions` beyond, so no route lets one key take a namespace's every child), and a
   * stdio member's child against the namespace's `max_children` (a full namespace refuses with
   * 503 `unavailable`, as for a session of its own).
   */
  memberConnection(
    namespace: string,
    logger: Logger,
    keyId: string,
  ): { transport: Transport; release(): void } {
    const upstream = this.config.current.namespaces[namespace]?.upstream;
    if (!upstream) throw new Error(`namespace ${namespace} is no longer configured`);
    const owned = isStdioUpstream(upstream) && !upstream.shared;
    const holder = holderOf(namespace, keyId);
    const held = this.keyHeldReclaiming(
      namespace,
      keyId,
      this.config.current.server.max_sessions_per_key,
    );
    if (held.count >= this.config.current.server.max_sessions_per_key) {
      throw new GatewayError(
        ErrorCode.TooManySessions,
        `Too many sessions: this key holds ${held.count} in namespace ${namespace}; end one (DELETE) or try again later`,
        { 'Retry-After': String(retryAfterSeconds(held.sessions)) },
      );
    }
    if (owned) {
      const used =
        (this.held.get(namespace) ?? 0) +
        this.warm.size(namespace) -
        (this.warm.has(namespace, upstream) ? 1 : 0);
      if (used >= upstream.max_children) {
        const sessions = [...this.sessions.values()].filter((s) => s.namespace === namespace);
        throw new GatewayError(
          ErrorCode.Unavailable,
          `Too many sessions for namespace ${namespace}; try again later`,
          { 'Retry-After': String(retryAfterSeconds(sessions)) },
        );
      }
      this.held.set(namespace, (this.held.get(namespace) ?? 0) + 1);
    }
    this.memberHeld.set(holder, (this.memberHeld.get(holder) ?? 0) + 1);
    const transport = this.connector(namespace, upstream)(logger);
    if (isStdioUpstream(upstream)) this.warm.refill(namespace);
    let released = false;
    return {
      transport,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.memberHeld.get(holder) ?? 1) - 1;
        if (left > 0) this.memberHeld.set(holder, left);
        else this.memberHeld.delete(holder);
        if (!owned) return;
        this.held.set(namespace, (this.held.get(namespace) ?? 1) - 1);
        this.warm.refill(namespace);
      },
    };
  }

  /** keyHeld, after giving back what the key left idle in pools (reclaimer) while at `cap`. */
  private keyHeldReclaiming(
    namespace: string,
    keyId: string,
    cap: number,
  ): { count: number; sessions: BridgeSession[] } {
    let held = this.keyHeld(namespace, keyId);
    while (held.count >= cap && this.reclaimer?.(namespace, keyId)) {
      held = this.keyHeld(namespace, keyId);
    }
    return held;
  }

  /**
   * What `keyId` holds in `namespace`: its own sessions there and the connections its virtual
   * server sessions and 2026-07-28 pool hold there (memberConnection).
   */
  private keyHeld(namespace: string, keyId: string): { count: number; sessions: BridgeSession[] } {
    const sessions = [...this.sessions.values()].filter(
      (s) => s.namespace === namespace && s.keyId === keyId,
    );
    return {
      count: sessions.length + (this.memberHeld.get(holderOf(namespace, keyId)) ?? 0),
      sessions,
    };
  }

  childrenInUse(namespace: string): number {
    return (this.held.get(namespace) ?? 0) + (this.hasSharedChild(namespace) ? 1 : 0);
  }

  hasSharedChild(namespace: string): boolean {
    return this.shared.get(namespace)?.running ?? false;
  }

  /** How a new session of `namespace` reaches its backend. */
  private connector(
    namespace: string,
    upstream: NamespaceConfig['upstream'],
  ): (logger: Logger) => Transport {
    if (!isStdioUpstream(upstream)) return () => createBackendTransport(upstream);
    if (upstream.shared) {
      const lane = this.sharedChild(namespace, upstream).lane();
      return () => lane;
    }
    const child =
      this.warm.take(namespace, upstream) ??
      new StdioChild(upstream, namespace, this.metrics, this.logger);
    return (logger) => {
      child.useLogger(logger);
      return child;
    };
  }

  /** The namespace's shared child, started (from the pool when it has one) if there is none of this config. */
  private sharedChild(namespace: string, upstream: StdioUpstreamConfig): SharedChild {
    const spec = childSpec(upstream);
    const current = this.shared.get(namespace);
    if (current?.running && current.spec === spec) return current;
    if (current) this.retire(namespace, current);
    const logger = this.logger.child({ namespace, shared: true });
    const child =
      this.warm.take(namespace, upstream) ??
      new StdioChild(upstream, namespace, this.metrics, logger);
    const shared = new SharedChild(namespace, spec, child, logger, {
      keepIdle: () => !this.closing && this.keepsSharedChild(namespace, spec),
      gone: (ended) => {
        if (this.shared.get(namespace) !== ended) return;
        this.shared.delete(namespace);
        this.warm.fill(namespace);
      },
    });
    this.shared.set(namespace, shared);
    return shared;
  }

  /** A shared child without sessions is the namespace's warm child: kept unless warm is 0. */
  private keepsSharedChild(namespace: string, spec: string): boolean {
    const upstream = this.sharedUpstream(namespace);
    return upstream !== undefined && childSpec(upstream) === spec && (upstream.warm ?? 1) > 0;
  }

  private sharedUpstream(namespace: string): StdioUpstreamConfig | undefined {
    const upstream = this.config.current.namespaces[namespace]?.upstream;
    return upstream && isStdioUpstream(upstream) && upstream.shared ? upstream : undefined;
  }

  private retire(namespace: string, shared: SharedChild): void {
    shared.retiring = true;
    if (this.shared.get(namespace) === shared) this.shared.delete(namespace);
    shared.retireIfIdle();
  }

  /**
   * A reload: the shared child of a changed namespace takes no new session (its sessions keep it,
   * as sessions keep their own children), and the pools follow the new config.
   */
  private reconfigure(): void {
    for (const [namespace, shared] of this.shared) {
      const upstream = this.sharedUpstream(namespace);
      if (upstream && childSpec(upstream) === shared.spec) shared.retireIfIdle();
      else this.retire(namespace, shared);
    }
    this.warm.fillAll();
  }

  /**
   * The namespace's cap, then the key's; each refusal names when a place frees up. On a stdio
   * namespace the cap counts children: the sessions' own and the warm ones, bar the one this
   * session would take.
   */
  private admit(options: NewSession, stdio: StdioUpstreamConfig | undefined): void {
    const { namespace } = options;
    const inNamespace = [...this.sessions.values()].filter((s) => s.namespace === namespace);
    const owned = stdio !== undefined && !stdio.shared;
    const used = owned
      ? (this.held.get(namespace) ?? 0) +
        this.warm.size(namespace) -
        (this.warm.has(namespace, stdio) ? 1 : 0)
      : inNamespace.length;
    if (used >= (owned ? stdio.max_children : DEFAULT_MAX_SESSIONS)) {
      throw new GatewayError(
        ErrorCode.Unavailable,
        `Too many sessions for namespace ${namespace}; try again later`,
        { 'Retry-After': String(retryAfterSeconds(inNamespace)) },
      );
    }
    const held = this.keyHeldReclaiming(namespace, options.keyId, options.maxPerKey);
    if (held.count >= options.maxPerKey) {
      throw new GatewayError(
        ErrorCode.TooManySessions,
        `Too many sessions: this key holds ${held.count} in namespace ${namespace}; end one (DELETE) or try again later`,
        { 'Retry-After': String(retryAfterSeconds(held.sessions)) },
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

  /** Shutdown: ends the sessions' streams that answer no request (BridgeSession.endStream). */
  endStreams(): void {
    for (const session of this.sessions.values()) session.endStream();
  }

  /** Whether a session still waits on its backend for an answer. */
  get answering(): boolean {
    for (const session of this.sessions.values()) if (session.waiting > 0) return true;
    return false;
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    clearInterval(this.reaper);
    this.unwatch();
    // The pool first: sessions and shared children that end must not make it start new ones.
    const warm = this.warm.close();
    await Promise.all([
      warm,
      ...[...this.sessions.values()].map((session) => session.close('gateway shutting down')),
      ...[...this.shared.values()].map((shared) => shared.close('gateway shutting down')),
    ]);
  }
}

function holderOf(namespace: string, keyId: string): string {
  return JSON.stringify([namespace, keyId]);
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
