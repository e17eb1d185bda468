import { createHash, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { eventually } from '../support/processes.js';
import {
  bearer,
  type Cluster,
  logCount,
  mcpPost,
  startCluster,
  waitForLog,
} from './auth-support.js';

// Keys (SPEC §3, §5) against real processes: a private nats-server, the auth service and three
// edges sharing the shared Redis, in front of a real server-everything, all logging at debug.
// Edges 0 and 1 watch the auth service's config file; edge 2 reads a copy of its own, so it
// learns of key changes only from the auth.keys.changed.v1 broadcast.

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const secret = (name: string) => `${name}-${randomUUID()}`;

const KEYS = {
  user: secret('user'),
  hashed: secret('hashed'),
  expired: secret('expired'),
  revoked: secret('revoked'),
  spare: secret('spare'),
  tenantAdmin: secret('tenant-admin'),
  /** Too short to be a key: only ever in the invalid config file, whose refusal is logged. */
  short: randomUUID().slice(0, 12),
};
/** Good keys used once each to fence the auth service's log (see `fencedVerifies`). */
const SENTINELS = [1, 2, 3, 4].map((n) => secret(`sentinel-${n}`));
/** Every key the test sends that is not in the config. */
const unknownKeys: string[] = [];
const unknown = () => {
  const key = secret('unknown');
  unknownKeys.push(key);
  return key;
};

const config = (backend: string, options: { revoked?: boolean } = {}) => `
server: { trust_proxy: true }
namespaces:
  remote: { upstream: { url: "${backend}" } }
  other: { upstream: { url: "${backend}" } }
tenants:
  acme: { rate_limit: { requests: 1000, per: 1h } }
keys:
  - { id: user-1, user: user@acme.test, tenant: acme, key: "\${USER_KEY}", namespaces: ["remote"] }
  - { id: hashed-1, key_sha256: "${sha256(KEYS.hashed)}", namespaces: ["*"] }
  - { id: expired-1, key: "\${EXPIRED_KEY}", namespaces: ["*"], expires_at: "2020-01-01T00:00:00Z" }
${options.revoked ? '' : '  - { id: revoked-1, key: "${REVOKED_KEY}", namespaces: ["*"] }'}
  - { id: spare-1, key: "\${SPARE_KEY}", namespaces: ["*"] }
${SENTINELS.map((_, i) => `  - { id: sentinel-${i}, key: "\${SENTINEL_${i}}", namespaces: ["*"] }`).join('\n')}
  - { id: acme-admin, key: "\${TENANT_ADMIN_KEY}", tenant: acme, role: admin, namespaces: ["*"], expires_at: "2099-01-01T00:00:00Z" }
auth: { cache_ttl: 30s, negative_ttl: 30s, max_failures: { count: 5, per: 1m } }
`;

describe('keys across three edges (auth service, NATS, Redis)', () => {
  let cluster: Cluster;
  const ns = (edge: number, namespace = 'remote') => `${cluster.urls[edge]}/mcp/${namespace}`;
  /** Each test its own client address (the edges trust X-Forwarded-For here). */
  const from = (ip: string) => ({ 'X-Forwarded-For': ip });
  const verifies = () => logCount(cluster.auth, 'key verify answered');
  /**
   * The auth service's count of verify answers, read once the answer for a never-used good key
   * is in its log (that line names the key id): the lines of every earlier answer are in too.
   */
  const fencedVerifies = async (sentinel: number) => {
    expect(
      (await mcpPost(ns(0), { ...bearer(SENTINELS[sentinel]), ...from('10.9.9.9') })).status,
    ).toBe(200);
    const line = `"key_id":"sentinel-${sentinel}"`;
    await eventually(
      () => Promise.resolve(cluster.auth.output.includes(line)),
      5_000,
      `the verify of sentinel ${sentinel}`,
    );
    return verifies();
  };

  /** Every message on the private NATS server (all subjects, replies included) during the tests. */
  const onTheBus: string[] = [];
  let sniffer: NatsConnection | undefined;

  beforeAll(async () => {
    cluster = await startCluster({
      config: (backend) => config(backend),
      edges: [{}, {}, { config: config('BACKEND') }],
      env: {
        LOG_LEVEL: 'debug',
        USER_KEY: KEYS.user,
        EXPIRED_KEY: KEYS.expired,
        REVOKED_KEY: KEYS.revoked,
        SPARE_KEY: KEYS.spare,
        TENANT_ADMIN_KEY: KEYS.tenantAdmin,
        SHORT_KEY: KEYS.short,
        ...Object.fromEntries(SENTINELS.map((value, i) => [`SENTINEL_${i}`, value])),
      },
    });
    sniffer = await connect({ servers: cluster.natsUrl, name: 'sniffer' });
    sniffer.subscribe('>', {
      callback: (_error, msg) => {
        onTheBus.push(`${msg.subject} ${msg.string()}`);
      },
    });
    await sniffer.flush();
  }, 60_000);

  afterAll(async () => {
    await sniffer?.close();
    await cluster?.stop();
  });

  it('accepts a `key:` from the environment and a `key_sha256` key, as Bearer or X-API-Key, on every edge', async () => {
    for (const edge of [0, 1, 2]) {
      expect((await mcpPost(ns(edge), { ...bearer(KEYS.user), ...from('10.1.0.1') })).status).toBe(
        200,
      );
      expect(
        (await mcpPost(ns(edge), { 'X-API-Key': KEYS.hashed, ...from('10.1.0.1') })).status,
      ).toBe(200);
      expect(
        (await mcpPost(ns(edge), { ...bearer(KEYS.tenantAdmin), ...from('10.1.0.1') })).status,
      ).toBe(200);
    }
  });

  it('refuses a key on a namespace it was not given: 403 forbidden_namespace', async () => {
    const answer = await mcpPost(
      ns(0, 'other'),
      { ...bearer(KEYS.user), ...from('10.1.0.2') },
      { jsonrpc: '2.0', id: 3, method: 'ping' },
    );
    expect(answer.status).toBe(403);
    expect(answer.json).toMatchObject({ id: 3, error: { data: { code: 'forbidden_namespace' } } });
  });

  it('answers an expired key exactly as an unknown one: 401 unauthorized, no oracle', async () => {
    const expired = await mcpPost(ns(1), { ...bearer(KEYS.expired), ...from('10.1.0.3') });
    const stranger = await mcpPost(ns(1), { ...bearer(unknown()), ...from('10.1.0.3') });
    for (const answer of [expired, stranger]) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toMatch(
        /^Bearer .*error_description=".*X-API-Key/,
      );
      expect(answer.json?.error?.data?.code).toBe('unauthorized');
    }
    expect(expired.json?.error?.message).toBe(stranger.json?.error?.message);
  });

  it('answers a repeated unknown key from the negative cache, without asking the auth service again', async () => {
    const before = await fencedVerifies(0);
    const repeated = unknown();
    for (const ip of ['10.2.0.1', '10.2.0.2', '10.2.0.3', '10.2.0.4']) {
      expect((await mcpPost(ns(0), { ...bearer(repeated), ...from(ip) })).status).toBe(401);
    }
    // The repeated key once, then the closing sentinel.
    expect((await fencedVerifies(1)) - before).toBe(2);
  });

  it('answers 429 too_many_auth_failures after max_failures from one client, on every edge, before asking the auth service', async () => {
    const attacker = from('10.3.0.1');
    for (let i = 0; i < 5; i++) {
      expect((await mcpPost(ns(i % 3), { ...bearer(unknown()), ...attacker })).status).toBe(401);
    }
    const before = await fencedVerifies(2);
    for (const edge of [0, 1, 2]) {
      const answer = await mcpPost(
        ns(edge),
        { ...bearer(unknown()), ...attacker },
        { jsonrpc: '2.0', id: `guess-${edge}`, method: 'ping' },
      );
      expect(answer.status).toBe(429);
      expect(answer.json).toMatchObject({
        id: `guess-${edge}`,
        error: { data: { code: 'too_many_auth_failures' } },
      });
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // While blocked, a good key from that client is refused too: guessing gains nothing.
    expect((await mcpPost(ns(0), { ...bearer(KEYS.spare), ...attacker })).status).toBe(429);
    // None of the refused attempts reached the auth service: only the closing sentinel did.
    expect((await fencedVerifies(3)) - before).toBe(1);
    // Other clients are not affected.
    expect((await mcpPost(ns(1), { ...bearer(unknown()), ...from('10.3.0.2') })).status).toBe(401);
  });

  it('stops a revoked key on every edge within 2 s of the config change, though each had it cached (edge 2 by the broadcast alone)', async () => {
    for (const edge of [0, 1, 2]) {
      expect(
        (await mcpPost(ns(edge), { ...bearer(KEYS.revoked), ...from('10.4.0.1') })).status,
      ).toBe(200);
    }
    const changed = Date.now();
    cluster.writeConfig(config(cluster.backendUrl, { revoked: true }));
    const stoppedAfter = await Promise.all(
      [0, 1, 2].map(async (edge) => {
        await eventually(
          async () =>
            (await mcpPost(ns(edge), { ...bearer(KEYS.revoked), ...from('10.4.0.1') })).status ===
            401,
          5_000,
          `edge ${edge} to refuse the revoked key`,
        );
        return Date.now() - changed;
      }),
    );
    for (const ms of stoppedAfter) expect(ms).toBeLessThan(2_000);
    await waitForLog(cluster.auth, 'keys changed');
  });

  it('refuses an invalid new config file, logs it, and keeps the old keys in force', async () => {
    const refused = 'config reload refused; the previous config stays in force';
    const watching = [cluster.auth, cluster.edges[0], cluster.edges[1]];
    const refusalsBefore = watching.map((proc) => logCount(proc, refused));
    cluster.writeConfig(
      config(cluster.backendUrl, { revoked: true }).replace(
        'keys:\n',
        'keys:\n  - { id: broken, key: "${SHORT_KEY}", namespaces: ["nowhere"] }\n',
      ),
    );
    await Promise.all(watching.map((proc, i) => waitForLog(proc, refused, refusalsBefore[i] + 1)));
    expect(cluster.auth.output).toContain('keys are at least 16 characters');
    // spare-1 was never used: the auth service itself answers it, from the old config.
    expect((await mcpPost(ns(0), { ...bearer(KEYS.spare), ...from('10.5.0.1') })).status).toBe(200);
    expect((await mcpPost(ns(1), { ...bearer(KEYS.user), ...from('10.5.0.1') })).status).toBe(200);
    expect((await mcpPost(ns(0), { ...bearer(KEYS.revoked), ...from('10.5.0.1') })).status).toBe(
      401,
    );
  });

  it('never writes a key (or its SHA-256) to any log, at debug level', () => {
    const output = cluster.output();
    expect(output).toContain('"level":20'); // debug lines were written
    expect(output).toContain('"msg":"key verify answered"');
    const presented = [...Object.values(KEYS), ...SENTINELS, ...unknownKeys];
    expect(presented.length).toBeGreaterThan(15);
    for (const key of presented) {
      expect(output).not.toContain(key);
      expect(output).not.toContain(sha256(key));
    }
  });

  it('never sends a key over NATS: verify requests carry its SHA-256 only', () => {
    const verifyRequests = onTheBus.filter((message) => message.startsWith('auth.key.verify.v1 '));
    expect(verifyRequests.length).toBeGreaterThan(15);
    const bus = onTheBus.join('\n');
    expect(bus).toContain(sha256(KEYS.user));
    expect(bus).toContain('auth.keys.changed.v1');
    for (const key of [...Object.values(KEYS), ...SENTINELS, ...unknownKeys])
      expect(bus).not.toContain(key);
  });
});
