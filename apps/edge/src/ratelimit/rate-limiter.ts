import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { type ConfigStore, ErrorCode, GatewayError, type Principal } from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';

export interface RateLimitDecision {
  limit: number;
  remaining: number;
  /** Seconds until the window of the tightest scope resets. */
  resetSeconds: number;
}

interface Scope {
  name: 'key' | 'key_namespace' | 'tenant';
  id: string;
  requests: number;
  perMs: number;
}

/**
 * Rate limits of SPEC §6: per key, per key × namespace, per tenant, all checked. With Redis the
 * counters are shared by every edge replica (rate-limiter-flexible's atomic Lua increments); an
 * in-memory insurance limiter answers when Redis fails and `on_store_error` is `allow`.
 */
export class RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    private readonly redis?: Redis,
    private readonly prefix = 'mcpgw',
  ) {}

  /** Consumes `points` requests on every scope; throws 429 rate_limited on the first exhausted one. */
  async consume(principal: Principal, namespace: string, points: number): Promise<RateLimitDecision> {
    const scopes = this.scopesFor(principal, namespace);
    const results = await Promise.all(scopes.map((scope) => this.consumeScope(scope, points)));
    let tightest: RateLimitDecision | undefined;
    for (let i = 0; i < scopes.length; i++) {
      const result = results[i];
      const scope = scopes[i];
      if (result.rejected) {
        this.metrics.rateLimited.inc({ scope: scope.name });
        const retryAfter = Math.max(1, Math.ceil(result.res.msBeforeNext / 1000));
        throw new GatewayError(ErrorCode.RateLimited, `Rate limit exceeded (${scope.name})`, {
          'Retry-After': String(retryAfter),
          'RateLimit-Limit': String(scope.requests),
          'RateLimit-Remaining': '0',
          'RateLimit-Reset': String(retryAfter),
        });
      }
      const decision = {
        limit: scope.requests,
        remaining: Math.max(0, result.res.remainingPoints),
        resetSeconds: Math.max(0, Math.ceil(result.res.msBeforeNext / 1000)),
      };
      if (!tightest || decision.remaining < tightest.remaining) tightest = decision;
    }
    return tightest!;
  }

  private scopesFor(principal: Principal, namespace: string): Scope[] {
    const config = this.config.current;
    const keyLimit = principal.rateLimit ?? {
      requests: config.rate_limits.default.requests,
      perMs: config.rate_limits.default.per,
    };
    const scopes: Scope[] = [{ name: 'key', id: principal.keyId, ...keyLimit }];
    const nsLimit = config.namespaces[namespace]?.rate_limit;
    if (nsLimit) {
      scopes.push({
        name: 'key_namespace',
        id: `${principal.keyId}:${namespace}`,
        requests: nsLimit.requests,
        perMs: nsLimit.per,
      });
    }
    const tenantLimit = principal.tenant ? config.tenants[principal.tenant]?.rate_limit : undefined;
    if (tenantLimit && principal.tenant) {
      scopes.push({ name: 'tenant', id: principal.tenant, requests: tenantLimit.requests, perMs: tenantLimit.per });
    }
    return scopes;
  }

  private async consumeScope(
    scope: Scope,
    points: number,
  ): Promise<{ rejected: boolean; res: RateLimiterRes }> {
    const limiter = this.limiterFor(scope);
    try {
      return { rejected: false, res: await limiter.consume(scope.id, points) };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { rejected: true, res: error };
      // The store failed and no insurance limiter answered: on_store_error is deny.
      this.metrics.rateLimitStoreErrors.inc();
      throw new GatewayError(ErrorCode.Unavailable, 'Rate limit store unavailable', { 'Retry-After': '1' });
    }
  }

  private limiterFor(scope: Scope): RateLimiterAbstract {
    const duration = Math.max(1, Math.ceil(scope.perMs / 1000));
    const policy = this.config.current.rate_limits.on_store_error;
    const id = `${scope.name}:${scope.requests}:${duration}:${policy}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      const keyPrefix = `${this.prefix}:rl:${scope.name}:${scope.requests}:${duration}`;
      const options = { points: scope.requests, duration, keyPrefix };
      if (this.redis) {
        const insurance = policy === 'allow' ? new CountingMemoryLimiter(options, this.metrics) : undefined;
        limiter = new RateLimiterRedis({
          ...options,
          storeClient: this.redis,
          rejectIfRedisNotReady: true,
          insuranceLimiter: insurance,
        });
      } else {
        limiter = new RateLimiterMemory(options);
      }
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}

/** The per-replica fallback used while Redis fails; every use is counted in /metrics. */
class CountingMemoryLimiter extends RateLimiterMemory {
  constructor(
    options: { points: number; duration: number; keyPrefix: string },
    private readonly metrics: EdgeMetrics,
  ) {
    super(options);
  }

  override consume(key: string | number, points?: number, options?: Record<string, unknown>): Promise<RateLimiterRes> {
    this.metrics.rateLimitStoreErrors.inc();
    return super.consume(key, points, options);
  }
}
