import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { type ConfigStore, ErrorCode, GatewayError, type Principal } from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { createLimiter, RateLimiterRes } from './limiter-store.js';

export interface RateLimitDecision {
  limit: number;
  remaining: number;
  /** Seconds until the window of the tightest scope resets. */
  resetSeconds: number;
}

export interface Scope {
  name: 'key' | 'key_namespace' | 'tenant';
  id: string;
  requests: number;
  perMs: number;
}

type ScopeResult =
  | { outcome: 'allowed'; res: RateLimiterRes | null }
  | { outcome: 'rejected'; res: RateLimiterRes }
  | { outcome: 'store_error' };

/**
 * Rate limits of SPEC §6: per key, per key × namespace, per tenant, all checked, counted in
 * JSON-RPC requests. With Redis the counters are shared by every edge replica
 * (rate-limiter-flexible: one atomic Lua increment per scope, so N replicas let exactly the
 * limit through); the scopes' increments are issued together and ioredis's auto-pipelining
 * sends them as one pipeline, so a decision costs one round trip to Redis. While Redis fails,
 * `on_store_error: allow` decides with a per-replica in-memory limiter (counted in /metrics)
 * and `deny` answers 503.
 */
export class RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    private readonly redis?: Redis,
    private readonly prefix = 'mcpgw',
  ) {}

  /**
   * Takes `points` requests from every scope; throws 429 rate_limited when one is exhausted
   * (503 when the store fails under `deny`). With 0 points (a body of notifications or
   * responses, a DELETE) nothing is counted or refused; the decision only reports the state.
   */
  async consume(
    principal: Principal,
    namespace: string,
    points: number,
  ): Promise<RateLimitDecision> {
    const scopes = this.scopesFor(principal, namespace);
    const results = await Promise.all(scopes.map((scope) => this.consumeScope(scope, points)));

    if (results.some((result) => result.outcome === 'store_error')) {
      this.refund(scopes, results, points);
      throw new GatewayError(ErrorCode.Unavailable, 'Rate limit store unavailable', {
        'Retry-After': '1',
      });
    }
    const rejected = results.findIndex((result) => result.outcome === 'rejected');
    if (rejected >= 0) {
      // A refused request did not run, so it counts nowhere: what every scope took is given
      // back. A key hammering past its own limit does not use up its tenant's limit, and a
      // refused batch does not eat the room a smaller request would still fit in.
      this.refund(scopes, results, points);
      const scope = scopes[rejected];
      const res = (results[rejected] as { res: RateLimiterRes }).res;
      this.metrics.rateLimited.inc({ scope: scope.name });
      const retryAfter = String(Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
      throw new GatewayError(ErrorCode.RateLimited, `Rate limit exceeded (${scope.name})`, {
        'Retry-After': retryAfter,
        'RateLimit-Limit': String(scope.requests),
        'RateLimit-Remaining': '0',
        'RateLimit-Reset': retryAfter,
      });
    }

    let tightest: RateLimitDecision | undefined;
    results.forEach((result, i) => {
      const scope = scopes[i];
      const res = result.outcome === 'allowed' ? result.res : null;
      const decision: RateLimitDecision = res
        ? {
            limit: scope.requests,
            remaining: Math.max(0, res.remainingPoints),
            resetSeconds: Math.max(0, Math.ceil(res.msBeforeNext / 1000)),
          }
        : // Nothing counted yet in this window (a 0-point request before any other).
          {
            limit: scope.requests,
            remaining: scope.requests,
            resetSeconds: Math.ceil(scope.perMs / 1000),
          };
      if (!tightest || decision.remaining < tightest.remaining) tightest = decision;
    });
    return tightest!;
  }

  scopesFor(principal: Principal, namespace: string): Scope[] {
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
      scopes.push({
        name: 'tenant',
        id: principal.tenant,
        requests: tenantLimit.requests,
        perMs: tenantLimit.per,
      });
    }
    return scopes;
  }

  private async consumeScope(scope: Scope, points: number): Promise<ScopeResult> {
    const limiter = this.limiterFor(scope);
    try {
      if (points === 0) return { outcome: 'allowed', res: await limiter.get(scope.id) };
      return { outcome: 'allowed', res: await limiter.consume(scope.id, points) };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { outcome: 'rejected', res: error };
      // The store failed and no insurance limiter answered: on_store_error is deny.
      this.metrics.rateLimitStoreErrors.inc({ limiter: 'requests' });
      return { outcome: 'store_error' };
    }
  }

  /** Gives back the points a refused request took from each scope that counted it. */
  private refund(scopes: Scope[], results: ScopeResult[], points: number): void {
    if (points === 0) return;
    results.forEach((result, i) => {
      if (result.outcome === 'store_error') return;
      // Not awaited: the refusal is not delayed by it. Commands on one connection run in
      // order, so a later request through this replica sees the refund.
      this.limiterFor(scopes[i])
        .reward(scopes[i].id, points)
        .catch(() => undefined);
    });
  }

  private limiterFor(scope: Scope): RateLimiterAbstract {
    const durationSec = Math.max(1, Math.ceil(scope.perMs / 1000));
    const policy = this.config.current.rate_limits.on_store_error;
    const id = `${scope.name}:${scope.requests}:${durationSec}:${policy}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = createLimiter(
        // The limit is part of the Redis key: a changed limit starts a fresh window rather
        // than being judged against counts taken under another limit.
        {
          points: scope.requests,
          durationSec,
          keyPrefix: `${this.prefix}:rl:${scope.name}:${scope.requests}:${durationSec}`,
        },
        {
          redis: this.redis,
          metrics: this.metrics,
          kind: 'requests',
          fallback: policy === 'allow',
        },
      );
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}
