import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ConfigStore, ErrorCode, GatewayError, parseConfig, type Principal } from '#common';
import { eventually } from '../../../../test/support/eventually.js';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '../../../../test/support/private-redis-server.js';
import { AuthFailureLimiter } from '../auth/auth-failures.js';
import { EdgeMetrics } from '../metrics/edge-metrics.js';
import { RateLimiter } from './rate-limiter.js';
import { createRedisClient, REDIS_COMMAND_TIMEOUT_MS } from './redis-client.js';

// Real Redis: the shared one (unique key prefix per test) for counting across replicas, and a
// private redis-server for what needs a server of its own (killing it, stalling it, counting
// its reads).

const SHARED_REDIS = 'redis://127.0.0.1:6379';

const CONFIG = (onStoreError: 'allow' | 'deny') => `
namespaces:
  search: { upstream: { url: "http://127.0.0.1:1/mcp" }, rate_limit: { requests: 1000, per: 1h } }
tenants:
  acme: { rate_limit: { requests: 1000, per: 1h } }
auth: { max_failures: { count: 4, per: 1h } }
rate_limits:
  default: { requests: 100, per: 1h }
  on_store_error: ${onStoreError}
`;

function principal(overrides: Partial<Principal> = {}): Principal {
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

interface Replica {
  redis: Redis;
  metrics: EdgeMetrics;
  limiter: RateLimiter;
  failures: AuthFailureLimiter;
}

const clients: Redis[] = [];

/** One edge replica's limiters, with its own Redis connection configured as in production. */
async function replica(url: string, prefix: string, yaml = CONFIG('allow')): Promise<Replica> {
  const redis = createRedisClient(url);
  redis.on('error', () => undefined);
  clients.push(redis);
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const config = new ConfigStore(parseConfig(yaml, {}));
  const metrics = new EdgeMetrics();
  return {
    redis,
    metrics,
    limiter: new RateLimiter(config, metrics, redis, prefix),
    failures: new AuthFailureLimiter(config, metrics, redis, prefix),
  };
}

async function outcome(promise: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof GatewayError) return error.code;
    throw error;
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

async function storeErrors(metrics: EdgeMetrics, limiter: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const match = new RegExp(
    `mcp_gateway_rate_limit_store_errors_total\\{limiter="${limiter}"\\} (\\d+)`,
  ).exec(text);
  return match ? Number(match[1]) : 0;
}

/** Closes the connections to one server (all when no port is given) before it goes away. */
async function disconnect(port?: number): Promise<void> {
  const closing = clients.filter((client) => port === undefined || client.options.port === port);
  await Promise.all(
    closing.map((client) =>
      client.status === 'ready'
        ? client.quit().then(
            () => undefined,
            () => client.disconnect(),
          )
        : Promise.resolve(client.disconnect()),
    ),
  );
}

afterAll(() => disconnect());

describe('RateLimiter with the shared Redis', () => {
  it('lets exactly the limit through when three replicas are hit at once', async () => {
    const prefix = `int-${randomUUID()}`;
    const replicas = await Promise.all([1, 2, 3].map(() => replica(SHARED_REDIS, prefix)));
    const key = principal({ rateLimit: { requests: 100, perMs: 3_600_000 } });
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        outcome(replicas[i % 3].limiter.consume(key, 'search', 1)),
      ),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(100);
    expect(outcomes.filter((o) => o === ErrorCode.RateLimited)).toHaveLength(50);
  });

  it('shares the tenant limit between keys on different replicas', async () => {
    const prefix = `int-${randomUUID()}`;
    const config = `tenants:\n  t: { rate_limit: { requests: 10, per: 1h } }\n`;
    const [a, b] = await Promise.all([
      replica(SHARED_REDIS, prefix, config),
      replica(SHARED_REDIS, prefix, config),
    ]);
    const one = principal({ tenant: 't' });
    const two = principal({ tenant: 't' });
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        outcome((i % 2 ? a : b).limiter.consume(i % 2 ? one : two, 'x', 1)),
      ),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(10);
  });

  it('takes nothing from any scope when one refuses: a key over its limit leaves its tenant room', async () => {
    const prefix = `int-${randomUUID()}`;
    const config = `tenants:\n  t: { rate_limit: { requests: 5, per: 1h } }\n`;
    const [a, b] = await Promise.all([
      replica(SHARED_REDIS, prefix, config),
      replica(SHARED_REDIS, prefix, config),
    ]);
    const noisy = principal({ tenant: 't', rateLimit: { requests: 2, perMs: 3_600_000 } });
    const quiet = principal({ tenant: 't' });
    const noisyOutcomes = [];
    for (let i = 0; i < 6; i++)
      noisyOutcomes.push(await outcome((i % 2 ? a : b).limiter.consume(noisy, 'x', 1)));
    expect(noisyOutcomes).toEqual(['ok', 'ok', ...Array<string>(4).fill(ErrorCode.RateLimited)]);
    // A batch larger than the room left is refused whole and takes nothing either.
    expect(await outcome(a.limiter.consume(quiet, 'x', 4))).toBe(ErrorCode.RateLimited);
    const quietOutcomes = [];
    for (let i = 0; i < 4; i++)
      quietOutcomes.push(await outcome((i % 2 ? a : b).limiter.consume(quiet, 'x', 1)));
    expect(quietOutcomes).toEqual(['ok', 'ok', 'ok', ErrorCode.RateLimited]);
  });

  it('starts a window with the first request of it and a fresh one once it has passed', async () => {
    const prefix = `int-${randomUUID()}`;
    const [a, b] = await Promise.all([
      replica(SHARED_REDIS, prefix),
      replica(SHARED_REDIS, prefix),
    ]);
    const key = principal({ rateLimit: { requests: 2, perMs: 1_000 } });
    const first = await a.limiter.consume(key, 'x', 1);
    expect(first).toEqual({ limit: 2, remaining: 1, resetSeconds: 1 });
    // The counter carries its window as its TTL from the first request on (nothing left behind).
    const [counter] = await a.redis.keys(`${prefix}:rl:key:*`);
    expect(await a.redis.pttl(counter)).toBeGreaterThan(0);
    expect(await outcome(b.limiter.consume(key, 'x', 1))).toBe('ok');
    expect(await outcome(a.limiter.consume(key, 'x', 1))).toBe(ErrorCode.RateLimited);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // The counter expired with its window: the next request opens a new one, on any replica.
    expect(await b.limiter.consume(key, 'x', 1)).toEqual({
      limit: 2,
      remaining: 1,
      resetSeconds: 1,
    });
    const hourly = principal();
    expect(await a.limiter.consume(hourly, 'x', 1)).toMatchObject({ remaining: 99 });
    // The key × namespace scope (1000 per hour) and the key's own (100 per hour) both count.
    const later = await b.limiter.consume(hourly, 'x', 0);
    expect(later.remaining).toBe(99);
    expect(later.resetSeconds).toBeGreaterThan(3_590);
    expect(later.resetSeconds).toBeLessThanOrEqual(3_600);
  });

  it('shares failed-key counts between replicas: the limit holds wherever the guesses land', async () => {
    const prefix = `int-${randomUUID()}`;
    const replicas = await Promise.all([1, 2, 3].map(() => replica(SHARED_REDIS, prefix)));
    const ip = '198.51.100.7';
    for (let i = 0; i < 4; i++) (await replicas[i % 3].failures.attempt(ip)).fail();
    // A replica that has not seen this client fail refuses it too, from the shared count.
    expect(await outcome(replicas[2].failures.attempt(ip))).toBe(ErrorCode.TooManyAuthFailures);
    expect(await outcome(replicas[1].failures.attempt(ip))).toBe(ErrorCode.TooManyAuthFailures);
    expect(await outcome(replicas[0].failures.attempt('198.51.100.8'))).toBe('ok');
  });

  it('gives a good key attempt back, so good keys never add up to a block', async () => {
    const prefix = `int-${randomUUID()}`;
    const [a, b] = await Promise.all([
      replica(SHARED_REDIS, prefix),
      replica(SHARED_REDIS, prefix),
    ]);
    const ip = '198.51.100.9';
    for (let i = 0; i < 10; i++) {
      const attempt = await (i % 2 ? a : b).failures.attempt(ip);
      attempt.release();
    }
    // Releases are not awaited by the caller; they are ordered on each connection.
    expect(await outcome(a.failures.attempt(ip))).toBe('ok');
    expect(await outcome(b.failures.attempt(ip))).toBe('ok');
  });
});

describe('RateLimiter with a private Redis', () => {
  let server: PrivateRedisServer;
  let probe: Redis;

  beforeAll(async () => {
    server = await startPrivateRedisServer();
  });

  afterAll(async () => {
    await disconnect(server?.port);
    await server?.stop();
  });

  /**
   * Socket reads the server processed, scripts it ran and INCRBYs they made (one per scope),
   * from one INFO, which itself costs one read.
   */
  async function serverCounters(): Promise<{ reads: number; scripts: number; increments: number }> {
    const info = await probe.info('everything');
    return {
      reads: Number(/total_reads_processed:(\d+)/.exec(info)![1]),
      scripts: Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0),
      increments: Number(/cmdstat_incrby:calls=(\d+)/.exec(info)?.[1] ?? 0),
    };
  }

  it('sends the three scopes of a decision to Redis in one round trip', async () => {
    probe = createRedisClient(server.url);
    clients.push(probe);
    await new Promise((resolve) => probe.once('ready', resolve));
    const { limiter } = await replica(server.url, `int-${randomUUID()}`);
    const key = principal({ tenant: 'acme' });
    await limiter.consume(key, 'search', 1); // loads the Lua script (EVALSHA miss, then EVAL)

    for (let i = 0; i < 5; i++) {
      const before = await serverCounters();
      const decision = await limiter.consume(key, 'search', 1);
      const after = await serverCounters();
      expect(decision.remaining).toBe(100 - 2 - i);
      // One script counted the three scopes (key, key × namespace, tenant) ...
      expect(after.scripts - before.scripts).toBe(1);
      expect(after.increments - before.increments).toBe(3);
      // ... from one socket read: one pipeline, one round trip (the second INFO is the other read).
      expect(after.reads - before.reads).toBe(2);
    }
  });

  it('judges the decisions of one turn of the event loop in one script run, each on its own', async () => {
    probe = createRedisClient(server.url);
    clients.push(probe);
    await new Promise((resolve) => probe.once('ready', resolve));
    const prefix = `int-${randomUUID()}`;
    const { limiter } = await replica(server.url, prefix);
    const noisy = principal({ tenant: 'acme', rateLimit: { requests: 3, perMs: 3_600_000 } });
    const quiet = principal({ tenant: 'acme' });
    await limiter.consume(quiet, 'search', 1); // loads the Lua script (EVALSHA miss, then EVAL)

    const before = await serverCounters();
    const [noisyOutcomes, batch, read] = await Promise.all([
      Promise.all(Array.from({ length: 6 }, () => outcome(limiter.consume(noisy, 'search', 1)))),
      limiter.consume(quiet, 'search', 4),
      limiter.consume(quiet, 'search', 0),
    ]);
    const after = await serverCounters();
    // In the order asked: the noisy key's first three fit, the others are refused and take
    // nothing; the quiet key's batch of 4 counts, and the read after it sees it.
    expect(noisyOutcomes).toEqual([
      ...Array<string>(3).fill('ok'),
      ...Array<string>(3).fill(ErrorCode.RateLimited),
    ]);
    expect(batch.remaining).toBe(100 - 1 - 4);
    expect(read.remaining).toBe(100 - 1 - 4);
    // Eight decisions, one script run, one socket read; three scopes each for the three taken
    // noisy requests and the batch.
    expect(after.scripts - before.scripts).toBe(1);
    expect(after.reads - before.reads).toBe(2);
    expect(after.increments - before.increments).toBe(4 * 3);
    // Nothing of the refused ones was counted: the tenant saw 1 + 3 + 4 requests.
    const tenantKeys = await probe.keys(`${prefix}:rl:tenant:*`);
    expect(tenantKeys).toHaveLength(1);
    expect(Number(await probe.get(tenantKeys[0]))).toBe(1 + 3 + 4);
  });

  it('does not wait on a stalled Redis longer than the command timeout, and falls back', async () => {
    const { limiter, metrics } = await replica(server.url, `int-${randomUUID()}`);
    server.pause();
    try {
      const { value, ms } = await timed(() => outcome(limiter.consume(principal(), 'search', 1)));
      expect(value).toBe('ok');
      expect(ms).toBeGreaterThanOrEqual(REDIS_COMMAND_TIMEOUT_MS - 20);
      expect(ms).toBeLessThan(REDIS_COMMAND_TIMEOUT_MS + 300);
      expect(await storeErrors(metrics, 'requests')).toBeGreaterThan(0);
    } finally {
      server.resume();
    }
  });

  describe('Redis down', () => {
    let allow: Replica;
    let deny: Replica;

    beforeAll(async () => {
      [allow, deny] = await Promise.all([
        replica(server.url, `int-${randomUUID()}`, CONFIG('allow')),
        replica(server.url, `int-${randomUUID()}`, CONFIG('deny')),
      ]);
      await server.kill();
    });

    it('on_store_error allow: limits each replica in memory, counted in /metrics, without waiting', async () => {
      const key = principal({ rateLimit: { requests: 3, perMs: 3_600_000 } });
      const results = [];
      for (let i = 0; i < 4; i++)
        results.push(await timed(() => outcome(allow.limiter.consume(key, 'search', 1))));
      expect(results.map((r) => r.value)).toEqual(['ok', 'ok', 'ok', ErrorCode.RateLimited]);
      for (const { ms } of results) expect(ms).toBeLessThan(50);
      // 4 requests × 2 scopes (key, key × namespace), each decided by the fallback.
      expect(await storeErrors(allow.metrics, 'requests')).toBe(4 * 2);
    });

    it('on_store_error deny: answers 503 with Retry-After at once', async () => {
      const started = performance.now();
      let error: unknown;
      try {
        await deny.limiter.consume(principal(), 'search', 1);
      } catch (caught) {
        error = caught;
      }
      expect(performance.now() - started).toBeLessThan(50);
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).status).toBe(503);
      expect((error as GatewayError).headers['Retry-After']).toBe('1');
    });

    it('keeps limiting failed keys per replica', async () => {
      const ip = '203.0.113.50';
      for (let i = 0; i < 4; i++) (await deny.failures.attempt(ip)).fail();
      expect(await outcome(deny.failures.attempt(ip))).toBe(ErrorCode.TooManyAuthFailures);
      expect(await storeErrors(deny.metrics, 'auth_failures')).toBeGreaterThan(0);
    });

    it('counts in Redis again once it is back', async () => {
      await server.restart();
      const check = createRedisClient(server.url);
      clients.push(check);
      await new Promise((resolve) => check.once('ready', resolve));
      const key = principal();
      const stored = await eventually(
        async () => {
          await allow.limiter.consume(key, 'search', 1);
          const keys = await check.keys(`*${key.keyId}*`);
          return keys.length > 0 && keys;
        },
        10_000,
        'the limiter to write to Redis again',
      );
      expect(stored.length).toBeGreaterThan(0);
    });
  });
});
