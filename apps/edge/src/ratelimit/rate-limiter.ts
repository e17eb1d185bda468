import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { type ConfigStore, ErrorCode, GatewayError, type Principal } from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { createMemoryLimiter, RateLimiterRes } from './limiter-store.js';
import { type RedisDecision, type RedisScope, redisScopes } from './redis-scopes.js';

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
  { outcome: 'allowed'; res: RateLimiterRes | null } | { outcome: 'rejected'; res: RateLimiterRes };

/**
 * Rate limits of SPEC §6: per key, per key × namespace, per tenant, all checked, counted in
 * JSON-RPC requests. With Redis the counters are shared by every edge replica: one atomic Lua
 * script checks every scope of a decision and takes the points from all of them or from none
 * (redis-scopes.ts), so a decision is one command and one round trip, and N replicas let
 * exactly the limit through. While Redis fails, `on_store_error: allow` decides with a
 * per-replica in-memory limiter (counted in /metrics) and `deny` answers 503.
 */
export class RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly shared?: ReturnType<typeof redisScopes>;

  constructor(
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    redis?: Redis,
    private readonly prefix = 'mcpgw',
  ) {
    if (redis) this.shared = redisScopes(redis);
  }

  /**
   * Takes `points` requests from every scope; throws 429 rate_limited when one is exhausted
   * (503 when the store fails under `deny`). With 0 points (a body of notifications or
   * responses, a DELETE) nothing is counted or refused; the decision only reports the state.
   */
  consume(principal: Principal, namespace: string, points: number): Promise<RateLimitDecision> {
    return this.decide(this.scopesFor(principal, namespace), points);
  }

  /**
   * A virtual server's request routed to one of its members: the member's own key × namespace
   * limit, which the server's request (counted against the key and tenant at admission) did not
   * take from, so a namespace's limit holds whichever endpoint its calls come through. Throws
   * 429 rate_limited as consume() does; nothing to take when the member has no limit.
   */
  async consumeMember(principal: Principal, namespace: string, points = 1): Promise<void> {
    const scopes = this.scopesFor(principal, namespace).filter(
      (scope) => scope.name === 'key_namespace',
    );
    if (scopes.length > 0) await this.decide(scopes, points);
  }

  private async decide(scopes: Scope[], points: number): Promise<RateLimitDecision> {
    if (this.shared) {
      let decision: RedisDecision | undefined;
      try {
        decision = await this.shared(
          scopes.map((scope) => this.redisScope(scope)),
          points,
        );
      } catch {
        decision = undefined;
      }
      if (decision) {
        if (decision.refused) this.refuse(scopes[decision.scope], decision.msLeft);
        const { used, msLeft } = decision;
        return tightest(
          scopes,
          (scope, i) => used[i],
          (scope, i) => (msLeft[i] > 0 ? msLeft[i] : scope.perMs),
        );
      }
      if (this.config.current.rate_limits.on_store_error === 'deny') {
        for (let i = 0; i < scopes.length; i++)
          this.metrics.rateLimitStoreErrors.inc({ limiter: 'requests' });
        throw new GatewayError(ErrorCode.Unavailable, 'Rate limit store unavailable', {
          'Retry-After': '1',
        });
      }
    }
    return this.consumeInMemory(scopes, points);
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

  private redisScope(scope: Scope): RedisScope {
    const durationSec = windowSeconds(scope);
    // The limit is part of the Redis key: a changed limit starts a fresh window rather than
    // being judged against counts taken under another limit.
    return {
      key: `${this.prefix}:rl:${scope.name}:${scope.requests}:${durationSec}:${scope.id}`,
      limit: scope.requests,
      durationSec,
    };
  }

  private refuse(scope: Scope, msLeft: number): never {
    this.metrics.rateLimited.inc({ scope: scope.name });
    const retryAfter = String(Math.max(1, Math.ceil(msLeft / 1000)));
    throw new GatewayError(ErrorCode.RateLimited, `Rate limit exceeded (${scope.name})`, {
      'Retry-After': retryAfter,
      'RateLimit-Limit': String(scope.requests),
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': retryAfter,
    });
  }

  /** Without Redis (standalone), or while it fails under `allow`: this replica's own counts. */
  private async consumeInMemory(scopes: Scope[], points: number): Promise<RateLimitDecision> {
    const results = await Promise.all(scopes.map((scope) => this.consumeScope(scope, points)));
    const rejected = results.findIndex((result) => result.outcome === 'rejected');
    if (rejected >= 0) {
      // A refused request did not run, so it counts nowhere: what every scope took is given
      // back. A key hammering past its own limit does not use up its tenant's limit, and a
      // refused batch does not eat the room a smaller request would still fit in.
      this.refund(scopes, results, points);
      this.refuse(scopes[rejected], results[rejected].res!.msBeforeNext);
    }
    return tightest(
      scopes,
      (scope, i) => results[i].res?.consumedPoints ?? 0,
      (scope, i) => results[i].res?.msBeforeNext ?? scope.perMs,
    );
  }

  private async consumeScope(scope: Scope, points: number): Promise<ScopeResult> {
    const limiter = this.limiterFor(scope);
    try {
      if (points === 0) return { outcome: 'allowed', res: await limiter.get(scope.id) };
      return { outcome: 'allowed', res: await limiter.consume(scope.id, points) };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { outcome: 'rejected', res: error };
      throw error;
    }
  }

  /** Gives back the points a refused request took from each scope that counted it. */
  private refund(scopes: Scope[], results: ScopeResult[], points: number): void {
    if (points === 0) return;
    results.forEach((result, i) => {
      this.limiterFor(scopes[i])
        .reward(scopes[i].id, points)
        .catch(() => undefined);
    });
  }

  private limiterFor(scope: Scope): RateLimiterAbstract {
    const durationSec = windowSeconds(scope);
    const id = `${scope.name}:${scope.requests}:${durationSec}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = createMemoryLimiter(
        { points: scope.requests, durationSec, keyPrefix: `rl:${id}` },
        // Counted only as the fallback of a replica that has Redis.
        this.shared ? { metrics: this.metrics, kind: 'requests' } : undefined,
      );
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}

function windowSeconds(scope: Scope): number {
  return Math.max(1, Math.ceil(scope.perMs / 1000));
}

/** The decision reported in RateLimit-* headers: the scope with the least room left. */
function tightest(
  scopes: Scope[],
  usedOf: (scope: Scope, i: number) => number,
  msLeftOf: (scope: Scope, i: number) => number,
): RateLimitDecision {
  let best: RateLimitDecision | undefined;
  for (let i = 0; i < scopes.length; i++) {
    const scope = scopes[i];
    const used = usedOf(scope, i);
    const decision: RateLimitDecision = {
      limit: scope.requests,
      remaining: Math.max(0, scope.requests - used),
      // Nothing counted yet in this window (a 0-point request before any other): a full one.
      resetSeconds: Math.max(0, Math.ceil((used > 0 ? msLeftOf(scope, i) : scope.perMs) / 1000)),
    };
    if (!best || decision.remaining < best.remaining) best = decision;
  }
  return best!;
}
