import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';

/** Which of the edge's limiters a store fallback happened in (a `/metrics` label). */
export type LimiterKind = 'requests' | 'auth_failures';

export interface LimiterSpec {
  points: number;
  durationSec: number;
  keyPrefix: string;
  /** Once over the limit, refuse for this long from that moment (not only to the window's end). */
  blockDurationSec?: number;
}

export interface LimiterStore {
  redis?: Redis;
  metrics: EdgeMetrics;
  kind: LimiterKind;
  /**
   * true: while Redis fails, decide with a per-replica in-memory limiter (counted in /metrics).
   * false: a Redis failure rejects the operation with the store's error.
   */
  fallback: boolean;
}

/**
 * A rate-limiter-flexible limiter: in memory without Redis; with Redis, an atomic Lua
 * increment per call shared by every replica, which fails at once when the connection is not
 * ready (the edge's ioredis client has no offline queue and a short command timeout, so no
 * request waits on an absent Redis).
 */
export function createLimiter(spec: LimiterSpec, store: LimiterStore): RateLimiterAbstract {
  if (!store.redis) return createMemoryLimiter(spec);
  const options = limiterOptions(spec);
  return new RateLimiterRedis({
    ...options,
    storeClient: store.redis,
    rejectIfRedisNotReady: true,
    insuranceLimiter: store.fallback
      ? new CountingMemoryLimiter(options, store.metrics, store.kind)
      : undefined,
  });
}

/**
 * A per-replica in-memory limiter: the limits of standalone mode, or, with `counted`, the
 * fallback of a replica whose Redis fails (every decision it takes counted in /metrics).
 */
export function createMemoryLimiter(
  spec: LimiterSpec,
  counted?: { metrics: EdgeMetrics; kind: LimiterKind },
): RateLimiterAbstract {
  const options = limiterOptions(spec);
  return counted
    ? new CountingMemoryLimiter(options, counted.metrics, counted.kind)
    : new RateLimiterMemory(options);
}

function limiterOptions(spec: LimiterSpec) {
  return {
    points: spec.points,
    duration: spec.durationSec,
    keyPrefix: spec.keyPrefix,
    blockDuration: spec.blockDurationSec ?? 0,
  };
}

/** The per-replica fallback used while Redis fails; every decision it takes is counted. */
class CountingMemoryLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly metrics: EdgeMetrics,
    private readonly kind: LimiterKind,
  ) {
    super(options);
  }

  override consume(
    key: string | number,
    points?: number,
    options?: Record<string, unknown>,
  ): Promise<RateLimiterRes> {
    this.metrics.rateLimitStoreErrors.inc({ limiter: this.kind });
    return super.consume(key, points, options);
  }

  override get(
    key: string | number,
    options?: Record<string, unknown>,
  ): Promise<RateLimiterRes | null> {
    this.metrics.rateLimitStoreErrors.inc({ limiter: this.kind });
    return super.get(key, options);
  }
}

export { RateLimiterRes };
