import { randomUUID } from 'node:crypto';
import { eventually } from '../support/processes.js';
import { bearer, type Cluster, mcpPost, startCluster } from './auth-support.js';

// SPEC §5 and §9 with real processes: the auth service stopped while NATS runs (no responders:
// answered at once, not after the 2 s verify timeout), then NATS itself killed (cached keys
// serve until auth.stale_max past their freshness, then 503). An unknown key never passes.

const CACHE_TTL_MS = 1_000;
const STALE_MAX_MS = 3_000;
const VERIFY_TIMEOUT_MS = 2_000;

const key = (name: string) => `${name}-${randomUUID()}`;
const KEYS = { warm: key('warm'), cold: key('cold'), late: key('late') };

async function statusEventually(
  url: string,
  presented: string,
  status: number,
  timeoutMs: number,
): Promise<void> {
  let last = 0;
  await eventually(
    async () => (last = (await mcpPost(url, bearer(presented))).status) === status,
    timeoutMs,
    `status ${status}`,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last status ${last})`);
  });
}

describe('auth service and NATS outages', () => {
  let cluster: Cluster;
  let url = '';

  beforeAll(async () => {
    cluster = await startCluster({
      config: (backend) => `
namespaces:
  remote: { upstream: { url: "${backend}" } }
keys:
${Object.keys(KEYS)
  .map((name) => `  - { id: ${name}, key: "\${KEY_${name.toUpperCase()}}", namespaces: ["*"] }`)
  .join('\n')}
auth:
  cache_ttl: ${CACHE_TTL_MS}ms
  negative_ttl: ${CACHE_TTL_MS}ms
  stale_max: ${STALE_MAX_MS}ms
  # The polls below are attempts too; this file is not about the failed-key limit.
  max_failures: { count: 1000, per: 1m }
`,
      edges: 1,
      env: Object.fromEntries(
        Object.entries(KEYS).map(([name, value]) => [`KEY_${name.toUpperCase()}`, value]),
      ),
    });
    url = `${cluster.urls[0]}/mcp/remote`;
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('with the auth service down and NATS up: cached keys work, others get 503 auth_unavailable at once', async () => {
    expect((await mcpPost(url, bearer(KEYS.warm))).status).toBe(200);
    const stranger = key('stranger');
    expect((await mcpPost(url, bearer(stranger))).status).toBe(401);
    await cluster.auth.stop();

    expect((await mcpPost(url, bearer(KEYS.warm))).status).toBe(200);
    for (const presented of [KEYS.cold, key('never-seen')]) {
      const answer = await mcpPost(url, bearer(presented), {
        jsonrpc: '2.0',
        id: 11,
        method: 'ping',
      });
      expect(answer.status).toBe(503);
      expect(answer.json).toMatchObject({ id: 11, error: { data: { code: 'auth_unavailable' } } });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      // No responders: answered now, not when the verify timeout would have run out.
      expect(answer.ms).toBeLessThan(VERIFY_TIMEOUT_MS / 4);
    }
    // The refused key, once its refusal is no longer fresh, is not let through either.
    await statusEventually(url, stranger, 503, 5_000);
  });

  it('with NATS down: a cached key serves for stale_max past its freshness, then 503; others 503 throughout', async () => {
    cluster.restartAuth();
    await statusEventually(url, KEYS.late, 200, 20_000);
    const verifiedAt = Date.now();
    await cluster.killNats();

    const stranger = await mcpPost(url, bearer(key('stranger')));
    expect(stranger.status).toBe(503);
    expect(stranger.ms).toBeLessThan(VERIFY_TIMEOUT_MS / 4);
    expect((await mcpPost(url, bearer(KEYS.cold))).status).toBe(503);

    // Proxying does not need NATS: the cached key keeps working until its stale window ends.
    let lastOk = verifiedAt;
    const end = await eventually(
      async () => {
        const answer = await mcpPost(url, bearer(KEYS.late));
        if (answer.status === 200) {
          lastOk = Date.now();
          return false;
        }
        return answer;
      },
      CACHE_TTL_MS + STALE_MAX_MS + 5_000,
      'the cached key to run out of stale_max',
    );
    expect(end.status).toBe(503);
    expect(end.json?.error?.data?.code).toBe('auth_unavailable');
    expect(lastOk - verifiedAt).toBeGreaterThanOrEqual(CACHE_TTL_MS + STALE_MAX_MS - 500);
    expect(Date.now() - verifiedAt).toBeLessThan(CACHE_TTL_MS + STALE_MAX_MS + 1_500);
  });
});
