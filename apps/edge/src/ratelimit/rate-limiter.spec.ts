import { randomUUID } from 'node:crypto';
import { ConfigStore, ErrorCode, GatewayError, parseConfig, type Principal } from '#common';
import { EdgeMetrics } from '../metrics/edge-metrics.js';
import { RateLimiter } from './rate-limiter.js';

const CONFIG = `
namespaces:
  wide: { upstream: { url: "http://127.0.0.1:1/mcp" } }
  narrow: { upstream: { url: "http://127.0.0.1:1/mcp" }, rate_limit: { requests: 3, per: 1h } }
tenants:
  acme: { rate_limit: { requests: 5, per: 1h } }
rate_limits:
  default: { requests: 4, per: 1m }
`;

function key(overrides: Partial<Principal> = {}): Principal {
  return {
    keyId: `key-${randomUUID()}`,
    user: null,
    tenant: null,
    role: 'user',
    namespaces: ['*'],
    rateLimit: null,
    expiresAt: null,
    ...overrides,
  };
}

function limiter(): RateLimiter {
  return new RateLimiter(new ConfigStore(parseConfig(CONFIG, {})), new EdgeMetrics());
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof GatewayError) return error.code;
    throw error;
  }
}

async function run(
  limits: RateLimiter,
  principal: Principal,
  namespace: string,
  times: number,
): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < times; i++)
    outcomes.push(await outcome(limits.consume(principal, namespace, 1)));
  return outcomes;
}

describe('RateLimiter (in memory)', () => {
  it('limits a key by rate_limits.default when it has no limit of its own', async () => {
    expect(await run(limiter(), key(), 'wide', 5)).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
      ErrorCode.RateLimited,
    ]);
  });

  it('limits a key by its own rate_limit', async () => {
    const own = key({ rateLimit: { requests: 2, perMs: 60_000 } });
    expect(await run(limiter(), own, 'wide', 3)).toEqual(['ok', 'ok', ErrorCode.RateLimited]);
  });

  it('limits a key in a namespace with the namespace rate_limit, separately from its other namespaces', async () => {
    const limits = limiter();
    const principal = key({ rateLimit: { requests: 100, perMs: 60_000 } });
    expect(await run(limits, principal, 'narrow', 4)).toEqual([
      'ok',
      'ok',
      'ok',
      ErrorCode.RateLimited,
    ]);
    expect(await run(limits, principal, 'wide', 1)).toEqual(['ok']);
    // Per key: another key has its own key × namespace count.
    expect(await run(limits, key(), 'narrow', 1)).toEqual(['ok']);
  });

  it("limits all keys of a tenant together by the tenant's rate_limit", async () => {
    const limits = limiter();
    const a = key({ tenant: 'acme', rateLimit: { requests: 100, perMs: 60_000 } });
    const b = key({ tenant: 'acme', rateLimit: { requests: 100, perMs: 60_000 } });
    expect(await run(limits, a, 'wide', 3)).toEqual(['ok', 'ok', 'ok']);
    expect(await run(limits, b, 'wide', 3)).toEqual(['ok', 'ok', ErrorCode.RateLimited]);
  });

  it("does not let one key's rejected requests use up its tenant's limit", async () => {
    const limits = limiter();
    const noisy = key({ tenant: 'acme', rateLimit: { requests: 2, perMs: 60_000 } });
    const quiet = key({ tenant: 'acme', rateLimit: { requests: 100, perMs: 60_000 } });
    expect(await run(limits, noisy, 'wide', 10)).toEqual([
      'ok',
      'ok',
      ...Array<string>(8).fill(ErrorCode.RateLimited),
    ]);
    // The tenant counted only noisy's 2 requests that ran: 3 left for quiet.
    expect(await run(limits, quiet, 'wide', 4)).toEqual(['ok', 'ok', 'ok', ErrorCode.RateLimited]);
  });

  it('counts a batch by its number of requests', async () => {
    const limits = limiter();
    const principal = key();
    expect(await outcome(limits.consume(principal, 'wide', 3))).toBe('ok');
    expect(await outcome(limits.consume(principal, 'wide', 2))).toBe(ErrorCode.RateLimited);
    expect(await outcome(limits.consume(principal, 'wide', 1))).toBe('ok');
  });

  it('never refuses a body without requests (notifications, responses) but reports the state', async () => {
    const limits = limiter();
    const principal = key();
    expect(await limits.consume(principal, 'wide', 0)).toEqual({
      limit: 4,
      remaining: 4,
      resetSeconds: 60,
    });
    await run(limits, principal, 'wide', 5);
    const decision = await limits.consume(principal, 'wide', 0);
    expect(decision).toMatchObject({ limit: 4, remaining: 0 });
  });

  it('reports the tightest scope for the RateLimit-* headers', async () => {
    const limits = limiter();
    const principal = key({ tenant: 'acme', rateLimit: { requests: 100, perMs: 60_000 } });
    const decision = await limits.consume(principal, 'narrow', 1);
    // key 99 left, key × narrow 2 left, tenant 4 left.
    expect(decision.limit).toBe(3);
    expect(decision.remaining).toBe(2);
    expect(decision.resetSeconds).toBeGreaterThan(3_590);
    expect(decision.resetSeconds).toBeLessThanOrEqual(3_600);
  });

  it('refuses with 429 rate_limited, Retry-After and RateLimit-* headers', async () => {
    const limits = limiter();
    const principal = key();
    await run(limits, principal, 'wide', 4);
    let error: unknown;
    try {
      await limits.consume(principal, 'wide', 1);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(GatewayError);
    const refusal = error as GatewayError;
    expect(refusal.status).toBe(429);
    expect(refusal.code).toBe(ErrorCode.RateLimited);
    const retryAfter = Number(refusal.headers['Retry-After']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refusal.headers).toMatchObject({ 'RateLimit-Limit': '4', 'RateLimit-Remaining': '0' });
  });
});
