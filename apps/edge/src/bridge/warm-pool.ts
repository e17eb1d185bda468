import { type ConfigStore, isStdioUpstream, type StdioUpstreamConfig } from '#common';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { childSpec, StdioChild } from './stdio-child.js';

/** A warm child that lived this long before it died was no crash loop: replaced at once. */
const HEALTHY_MS = 10_000;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
/**
 * A replacement starts this long after a hand-out: a Node server's start is ~0.5 s of CPU, which
 * would otherwise compete with the first requests of the session that just took the warm child
 * (measured on 2 cores: new-session p50 ~160 ms with an immediate refill, ~115 ms with this).
 */
const REFILL_DELAY_MS = 500;

export interface WarmPoolHost {
  /** Children of `namespace` that sessions (or its shared child) hold: the pool fills what is left. */
  childrenInUse(namespace: string): number;
  /** A shared namespace that has its child wants no spare beside it. */
  hasSharedChild(namespace: string): boolean;
}

interface Pool {
  /** Started (or starting) children that have been sent nothing, oldest first. */
  children: StdioChild[];
  born: WeakMap<StdioChild, number>;
  /** Deaths in a row of children that did not live HEALTHY_MS; the backoff grows with them. */
  failures: number;
  retry?: NodeJS.Timeout;
}

/**
 * Children started ahead of sessions, per stdio namespace (`upstream.warm`: N; unset, 1 once a
 * session has used the namespace on this edge, 0 before; 0 turns it off), so a new session's
 * `initialize` does not wait for a process to boot. A warm child has been sent nothing: its
 * session's `initialize` is its first message, as with a child spawned for it.
 *
 * Warm children are children: they count against `max_children` (the pool fills only what
 * sessions leave free) and in `mcp_gateway_stdio_children`; they are not sessions, so no event
 * names them. One that dies is replaced, after a delay that doubles with each death in a row (so
 * a broken command does not spin); a reload that changes the namespace's command, arguments,
 * environment or directory discards the old ones; shutdown ends them all.
 */
export class WarmPool {
  private readonly pools = new Map<string, Pool>();
  /** Namespaces a session has used on this edge (their default is one warm child). */
  private readonly used = new Set<string>();
  /** Refills scheduled after a hand-out, per namespace. */
  private readonly refills = new Map<string, NodeJS.Timeout>();
  private closing = false;

  constructor(
    private readonly config: ConfigStore,
    private readonly host: WarmPoolHost,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {}

  /** Warm children of every namespace that wants some (at start, and after a reload). */
  fillAll(): void {
    for (const name of this.pools.keys()) this.fill(name);
    for (const name of Object.keys(this.config.current.namespaces)) this.fill(name);
  }

  /** Warm children of `namespace` (started or starting). */
  size(namespace: string): number {
    return this.pools.get(namespace)?.children.length ?? 0;
  }

  /** Whether `take` would hand out a child for `upstream`. */
  has(namespace: string, upstream: StdioUpstreamConfig): boolean {
    const spec = childSpec(upstream);
    return this.pools.get(namespace)?.children.some((c) => c.running && c.spec === spec) ?? false;
  }

  /**
   * A warm child for a new session of `namespace`, if one of this `upstream` is there; the caller
   * holds it from now on (and calls `refill` once it is counted as in use).
   */
  take(namespace: string, upstream: StdioUpstreamConfig): StdioChild | undefined {
    this.used.add(namespace);
    const pool = this.pools.get(namespace);
    if (!pool) return undefined;
    const spec = childSpec(upstream);
    const index = pool.children.findIndex((child) => child.running && child.spec === spec);
    if (index < 0) return undefined;
    const [child] = pool.children.splice(index, 1);
    child.onclose = undefined;
    pool.failures = 0; // it lived to be used
    return child;
  }

  /**
   * `fill`, a little later: after a session took a warm child (or found none), or freed a place.
   * Never in the request's own turn either: a spawn blocks the event loop for milliseconds.
   */
  refill(namespace: string): void {
    if (this.closing || this.refills.has(namespace)) return;
    const timer = setTimeout(() => {
      this.refills.delete(namespace);
      this.fill(namespace);
    }, REFILL_DELAY_MS);
    timer.unref();
    this.refills.set(namespace, timer);
  }

  /** Brings `namespace` to its warm count: starts what is missing, ends what is surplus or stale. */
  fill(namespace: string): void {
    if (this.closing) return;
    const upstream = this.config.current.namespaces[namespace]?.upstream;
    const stdio = upstream && isStdioUpstream(upstream) ? upstream : undefined;
    const pool = this.pools.get(namespace);
    if (pool) {
      const spec = stdio && childSpec(stdio);
      for (const child of pool.children.filter((c) => c.spec !== spec)) this.discard(pool, child);
    }
    if (!stdio) {
      if (pool) this.forget(namespace, pool);
      return;
    }
    const wanted = this.wanted(namespace, stdio);
    if (wanted === 0 && !pool) return;
    const current = pool ?? this.poolOf(namespace);
    while (current.children.length > wanted) this.discard(current, current.children.at(-1)!);
    if (current.retry) return; // a replacement waits out its backoff
    while (current.children.length < wanted) this.spawn(namespace, stdio, current);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const timer of this.refills.values()) clearTimeout(timer);
    const children: StdioChild[] = [];
    for (const pool of this.pools.values()) {
      clearTimeout(pool.retry);
      children.push(...pool.children);
      pool.children = [];
    }
    await Promise.all(children.map((child) => this.end(child)));
  }

  private wanted(namespace: string, upstream: StdioUpstreamConfig): number {
    const warm = upstream.warm ?? (this.used.has(namespace) ? 1 : 0);
    if (upstream.shared) return warm > 0 && !this.host.hasSharedChild(namespace) ? 1 : 0;
    const room = upstream.max_children - this.host.childrenInUse(namespace);
    return Math.max(0, Math.min(warm, room));
  }

  private poolOf(namespace: string): Pool {
    const pool: Pool = { children: [], born: new WeakMap(), failures: 0 };
    this.pools.set(namespace, pool);
    return pool;
  }

  private spawn(namespace: string, upstream: StdioUpstreamConfig, pool: Pool): void {
    const child = new StdioChild(
      upstream,
      namespace,
      this.metrics,
      this.logger.child({ namespace, warm: true }),
    );
    pool.children.push(child);
    pool.born.set(child, Date.now());
    child.onclose = () => this.died(namespace, pool, child);
    child.start().catch((error: unknown) => {
      this.logger.warn({ namespace, err: String(error) }, 'warm stdio child failed to start');
    });
  }

  /** A warm child exited on its own: replaced, at once if it had lived, else after a backoff. */
  private died(namespace: string, pool: Pool, child: StdioChild): void {
    const index = pool.children.indexOf(child);
    if (index < 0) return;
    pool.children.splice(index, 1);
    if (this.closing) return;
    const lived = Date.now() - (pool.born.get(child) ?? 0);
    pool.failures = lived >= HEALTHY_MS ? 0 : pool.failures + 1;
    const delay =
      pool.failures === 0 ? 0 : Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (pool.failures - 1));
    this.logger.warn(
      { namespace, pid: child.pid, lived_ms: lived, retry_in_ms: delay },
      'warm stdio child exited; replacing it',
    );
    clearTimeout(pool.retry);
    pool.retry = setTimeout(() => {
      pool.retry = undefined;
      this.fill(namespace);
    }, delay);
    pool.retry.unref();
  }

  private discard(pool: Pool, child: StdioChild): void {
    pool.children.splice(pool.children.indexOf(child), 1);
    void this.end(child);
  }

  private forget(namespace: string, pool: Pool): void {
    clearTimeout(pool.retry);
    for (const child of [...pool.children]) this.discard(pool, child);
    this.pools.delete(namespace);
    this.used.delete(namespace);
  }

  private async end(child: StdioChild): Promise<void> {
    child.onclose = undefined;
    await child.close().catch(() => undefined);
  }
}
