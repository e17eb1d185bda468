import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '../support/private-redis-server.js';
import { eventually } from '../support/processes.js';
import { bearer, type Cluster, INITIALIZE, mcpPost, metric, startCluster } from './auth-support.js';

// Rate limits (SPEC §6) with real processes. Edges 0-2 share the shared Redis (one key prefix):
// the limits must hold exactly across them. Edges 3 (on_store_error: allow) and 4 (deny) use a
// private redis-server that the test kills.

const key = (name: string) => `${name}-${randomUUID()}`;
const KEYS = {
  headers: key('headers'),
  exact: key('exact'),
  narrow: key('narrow'),
  noisy: key('noisy'),
  quiet: key('quiet'),
  fallback: key('fallback'),
  denied: key('denied'),
};
const EXACT_LIMIT = 20;

const config = (backend: string, onStoreError: 'allow' | 'deny' = 'allow') => `
namespaces:
  wide: { upstream: { url: "${backend}" } }
  narrow: { upstream: { url: "${backend}" }, rate_limit: { requests: 3, per: 1h } }
tenants:
  t1: { rate_limit: { requests: 5, per: 1h } }
keys:
  - { id: headers, key: "\${KEY_HEADERS}", namespaces: ["*"] }
  - { id: exact, key: "\${KEY_EXACT}", namespaces: ["*"], rate_limit: { requests: ${EXACT_LIMIT}, per: 1h } }
  - { id: narrow, key: "\${KEY_NARROW}", namespaces: ["*"] }
  - { id: noisy, key: "\${KEY_NOISY}", tenant: t1, namespaces: ["*"], rate_limit: { requests: 2, per: 1h } }
  - { id: quiet, key: "\${KEY_QUIET}", tenant: t1, namespaces: ["*"] }
  - { id: fallback, key: "\${KEY_FALLBACK}", namespaces: ["*"], rate_limit: { requests: 3, per: 1h } }
  - { id: denied, key: "\${KEY_DENIED}", namespaces: ["*"] }
auth: { max_failures: { count: 5, per: 1m } }
rate_limits:
  default: { requests: 50, per: 1h }
  on_store_error: ${onStoreError}
`;

describe('rate limits across edge replicas', () => {
  let cluster: Cluster;
  let redis: PrivateRedisServer;
  const ns = (edge: number, namespace = 'wide') => `${cluster.urls[edge]}/mcp/${namespace}`;

  beforeAll(async () => {
    redis = await startPrivateRedisServer();
    const privateRedis = { REDIS_URL: redis.url, REDIS_PREFIX: `test-${randomUUID()}` };
    cluster = await startCluster({
      config: (backend) => config(backend),
      edges: [
        {},
        {},
        {},
        { config: config('BACKEND', 'allow'), env: privateRedis },
        { config: config('BACKEND', 'deny'), env: privateRedis },
      ],
      env: Object.fromEntries(
        Object.entries(KEYS).map(([name, value]) => [`KEY_${name.toUpperCase()}`, value]),
      ),
    });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('puts RateLimit-* headers on successful proxied responses', async () => {
    const first = await mcpPost(ns(0), bearer(KEYS.headers));
    const second = await mcpPost(ns(1), bearer(KEYS.headers));
    for (const answer of [first, second]) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('mcp-session-id')).toBeTruthy(); // the backend's answer, relayed
      expect(answer.headers.get('ratelimit-limit')).toBe('50');
      expect(Number(answer.headers.get('ratelimit-reset'))).toBeGreaterThan(3_500);
    }
    expect(first.headers.get('ratelimit-remaining')).toBe('49');
    expect(second.headers.get('ratelimit-remaining')).toBe('48');
  });

  it(`lets exactly ${EXACT_LIMIT} of ${EXACT_LIMIT * 1.5} concurrent requests through, spread over three edges`, async () => {
    const answers = await Promise.all(
      Array.from({ length: EXACT_LIMIT * 1.5 }, (_, i) =>
        mcpPost(ns(i % 3), bearer(KEYS.exact), INITIALIZE(i)),
      ),
    );
    const passed = answers.filter((answer) => answer.status === 200);
    const refused = answers.filter((answer) => answer.status === 429);
    expect(passed).toHaveLength(EXACT_LIMIT);
    expect(refused).toHaveLength(EXACT_LIMIT / 2);
    for (const answer of refused) {
      const id = answers.indexOf(answer);
      expect(answer.json).toMatchObject({
        jsonrpc: '2.0',
        id,
        error: { code: -32029, data: { code: 'rate_limited' } },
      });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(3_500);
      expect(answer.headers.get('ratelimit-remaining')).toBe('0');
    }
  });

  it("limits a key within a namespace by the namespace's rate_limit, and only there", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await mcpPost(ns(i % 3, 'narrow'), bearer(KEYS.narrow))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await mcpPost(ns(0, 'wide'), bearer(KEYS.narrow))).status).toBe(200);
  });

  it("limits a tenant's keys together, and a key's refused requests do not use up its tenant's limit", async () => {
    // One edge: a refused request gives its points back without delaying the answer, and
    // commands on one connection run in order, so the next request sees the refund.
    const noisy = [];
    for (let i = 0; i < 5; i++) noisy.push((await mcpPost(ns(0), bearer(KEYS.noisy))).status);
    expect(noisy).toEqual([200, 200, 429, 429, 429]);
    const quiet = [];
    for (let i = 0; i < 4; i++) quiet.push(await mcpPost(ns(0), bearer(KEYS.quiet)));
    expect(quiet.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(quiet[3].json?.error?.message).toBe('Rate limit exceeded (tenant)');
  });

  it('counts failed keys by the socket address, ignoring X-Forwarded-For without server.trust_proxy', async () => {
    for (let i = 0; i < 5; i++) {
      const forged = { 'X-Forwarded-For': `10.7.0.${i}` };
      expect((await mcpPost(ns(i % 3), { ...bearer(key('guess')), ...forged })).status).toBe(401);
    }
    const answer = await mcpPost(ns(0), {
      ...bearer(key('guess')),
      'X-Forwarded-For': '10.7.0.99',
    });
    expect(answer.status).toBe(429);
    expect(answer.json?.error?.data?.code).toBe('too_many_auth_failures');
  });

  describe('Redis down', () => {
    const allow = 3;
    const deny = 4;

    beforeAll(async () => {
      // Both edges verified their key and counted in Redis before it goes.
      expect((await mcpPost(ns(allow), bearer(KEYS.fallback))).status).toBe(200);
      expect((await mcpPost(ns(deny), bearer(KEYS.denied))).status).toBe(200);
      await redis.kill();
    });

    it('on_store_error allow: requests pass, limited per replica in memory, counted in /metrics, none waiting on Redis', async () => {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await mcpPost(ns(allow), bearer(KEYS.fallback)));
      // The in-memory fallback starts empty: the key's whole limit of 3, then 429.
      const seen = answers.map((answer) =>
        [answer.status, answer.json?.error?.data?.code ?? ''].join(' ').trim(),
      );
      if (seen.join() !== '200,200,200,429 rate_limited') {
        // Not expected: show what the edge logged, so a failure in CI can be read.
        process.stderr.write(`${seen.join(', ')}\n${cluster.output().slice(-20_000)}\n`);
      }
      expect(seen).toEqual(['200', '200', '200', '429 rate_limited']);
      for (const answer of answers) expect(answer.ms).toBeLessThan(1_000);
      expect(answers[0].headers.get('ratelimit-limit')).toBe('3');
      expect(
        await metric(
          cluster.urls[allow],
          'mcp_gateway_rate_limit_store_errors_total{limiter="requests"}',
        ),
      ).toBeGreaterThanOrEqual(4);
    });

    it('on_store_error deny: 503 with Retry-After at once', async () => {
      const answer = await mcpPost(ns(deny), bearer(KEYS.denied), {
        jsonrpc: '2.0',
        id: 'd',
        method: 'ping',
      });
      expect(answer.status).toBe(503);
      expect(answer.ms).toBeLessThan(1_000);
      expect(answer.headers.get('retry-after')).toBeTruthy();
      expect(answer.json).toMatchObject({ id: 'd', error: { data: { code: 'unavailable' } } });
    });

    it('counts in Redis again once it is back', async () => {
      await redis.restart();
      const probe = new Redis(redis.url);
      try {
        await eventually(
          async () => {
            await mcpPost(ns(deny), bearer(KEYS.denied));
            return (await probe.keys('*:rl:key:*')).length > 0;
          },
          15_000,
          'the edge to count in Redis again',
        );
        expect((await mcpPost(ns(deny), bearer(KEYS.denied))).status).toBe(200);
      } finally {
        probe.disconnect();
      }
    });
  });
});
