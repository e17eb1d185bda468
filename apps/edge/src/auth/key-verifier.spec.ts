import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  ConfigStore,
  ErrorCode,
  GatewayError,
  InProcessBus,
  parseConfig,
  type Principal,
  sha256Hex,
  type VerifyKeyReply,
} from '#common';
import { EdgeMetrics } from '../metrics/edge-metrics.js';
import { AuthFailureLimiter } from './auth-failures.js';
import { KeyVerifier } from './key-verifier.js';

const GOOD = 'good-key-0123456789abcdef';
const OTHER = 'other-key-0123456789abcdef';
const IP = '192.0.2.10';

const CONFIG = `
auth: { cache_ttl: 30s, negative_ttl: 10s, stale_max: 5m, max_failures: { count: 3, per: 1m } }
`;

function principal(keyId: string, overrides: Partial<Principal> = {}): Principal {
  return {
    keyId,
    user: null,
    tenant: null,
    role: 'user',
    namespaces: ['*'],
    rateLimit: null,
    expiresAt: null,
    ...overrides,
  };
}

/** The auth service's side of the bus, answering from a table of digests. */
class FakeAuthService {
  readonly asked: unknown[] = [];
  keys = new Map<string, Principal>([
    [sha256Hex(GOOD), principal('good')],
    [sha256Hex(OTHER), principal('other')],
  ]);
  hang = false;
  private held: Array<() => void> = [];
  holding = false;

  constructor(private readonly bus: InProcessBus) {
    this.up();
  }

  up(): void {
    this.bus.registerRequestHandler(AUTH_KEY_VERIFY, (request) => {
      this.asked.push(request);
      if (this.hang) return new Promise(() => undefined);
      const found = this.keys.get((request as { keySha256: string }).keySha256);
      const reply: VerifyKeyReply = found ? { ok: true, principal: found } : { ok: false };
      // Holding: the answer is decided now and delivered on release().
      if (this.holding) return new Promise((resolve) => this.held.push(() => resolve(reply)));
      return reply;
    });
  }

  release(): void {
    this.holding = false;
    for (const deliver of this.held.splice(0)) deliver();
  }

  down(): void {
    this.bus.unregisterRequestHandler(AUTH_KEY_VERIFY);
  }
}

function setup(yaml = CONFIG, verifyTimeoutMs = 2_000) {
  const bus = new InProcessBus();
  const auth = new FakeAuthService(bus);
  const config = new ConfigStore(parseConfig(yaml, {}));
  const metrics = new EdgeMetrics();
  const verifier = new KeyVerifier(
    bus,
    config,
    metrics,
    new AuthFailureLimiter(config, metrics),
    undefined,
    {
      verifyTimeoutMs,
    },
  );
  return { bus, auth, config, metrics, verifier };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof GatewayError) return error.code;
    throw error;
  }
}

async function errorOf(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyVerifier', () => {
  it('sends only the SHA-256 of the key over the bus', async () => {
    const { auth, verifier } = setup();
    await verifier.verify(GOOD, IP);
    expect(auth.asked).toEqual([{ keySha256: sha256Hex(GOOD) }]);
    expect(JSON.stringify(auth.asked)).not.toContain(GOOD);
  });

  it('answers a good key from cache within cache_ttl and asks again after it', async () => {
    const { auth, verifier } = setup();
    const t0 = Date.now();
    expect((await verifier.verify(GOOD, IP, t0)).keyId).toBe('good');
    expect((await verifier.verify(GOOD, IP, t0 + 29_000)).keyId).toBe('good');
    expect(auth.asked).toHaveLength(1);
    await verifier.verify(GOOD, IP, t0 + 31_000);
    expect(auth.asked).toHaveLength(2);
  });

  it('caches refusals: a repeated unknown key is answered 401 without asking again', async () => {
    const { auth, verifier } = setup();
    const t0 = Date.now();
    expect(await codeOf(verifier.verify('unknown-key-0123456789', IP, t0))).toBe(
      ErrorCode.Unauthorized,
    );
    expect(await codeOf(verifier.verify('unknown-key-0123456789', '192.0.2.11', t0 + 9_000))).toBe(
      ErrorCode.Unauthorized,
    );
    expect(auth.asked).toHaveLength(1);
    expect(await codeOf(verifier.verify('unknown-key-0123456789', '192.0.2.12', t0 + 11_000))).toBe(
      ErrorCode.Unauthorized,
    );
    expect(auth.asked).toHaveLength(2);
  });

  it('answers a missing key 401 with WWW-Authenticate, without asking', async () => {
    const { auth, verifier } = setup();
    const error = await errorOf(verifier.verify(undefined, IP));
    expect(error.code).toBe(ErrorCode.Unauthorized);
    expect(error.headers['WWW-Authenticate']).toBe('Bearer');
    expect(auth.asked).toHaveLength(0);
  });

  it('shares one round trip between concurrent requests with the same key', async () => {
    const { auth, verifier } = setup();
    const answers = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(GOOD, IP)));
    expect(answers.every((p) => p.keyId === 'good')).toBe(true);
    expect(auth.asked).toHaveLength(1);
  });

  it('refuses an expired key even from cache', async () => {
    const { auth, verifier } = setup();
    const t0 = Date.now();
    auth.keys.set(sha256Hex(GOOD), principal('good', { expiresAt: t0 + 1_000 }));
    expect((await verifier.verify(GOOD, IP, t0)).keyId).toBe('good');
    expect(await codeOf(verifier.verify(GOOD, IP, t0 + 1_000))).toBe(ErrorCode.Unauthorized);
  });

  describe('cache drops', () => {
    it('drops the cache on auth.keys.changed.v1, so a revoked key is refused at once', async () => {
      const { auth, bus, verifier } = setup();
      await verifier.verify(GOOD, IP);
      auth.keys.delete(sha256Hex(GOOD));
      expect((await verifier.verify(GOOD, IP)).keyId).toBe('good'); // still cached
      await bus.emit(AUTH_KEYS_CHANGED, { version: 2, at: new Date().toISOString() });
      await flush();
      expect(await codeOf(verifier.verify(GOOD, IP))).toBe(ErrorCode.Unauthorized);
    });

    it('drops the cache when the keys of its own config file change, and only then', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mcpgw-verifier-'));
      try {
        const path = join(dir, 'gateway.yaml');
        writeFileSync(path, CONFIG);
        const bus = new InProcessBus();
        const auth = new FakeAuthService(bus);
        const config = ConfigStore.fromFile(path, {});
        const metrics = new EdgeMetrics();
        const verifier = new KeyVerifier(
          bus,
          config,
          metrics,
          new AuthFailureLimiter(config, metrics),
        );
        await verifier.verify(GOOD, IP);
        writeFileSync(path, `${CONFIG}\nrate_limits: { default: { requests: 5, per: 1m } }\n`);
        expect(config.reload()).toBe(true);
        await verifier.verify(GOOD, IP);
        expect(auth.asked).toHaveLength(1);
        writeFileSync(path, `${CONFIG}\nkeys: [{ id: new, key: "a-brand-new-key-0123456789" }]\n`);
        expect(config.reload()).toBe(true);
        await verifier.verify(GOOD, IP);
        expect(auth.asked).toHaveLength(2);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('does not cache an answer that was in flight when the cache was dropped', async () => {
      const { auth, bus, verifier } = setup();
      auth.holding = true;
      const inFlight = verifier.verify(GOOD, IP);
      while (auth.asked.length === 0) await flush();
      // The revocation lands while the answer (given before it) is on its way back.
      auth.keys.delete(sha256Hex(GOOD));
      await bus.emit(AUTH_KEYS_CHANGED, { version: 2, at: new Date().toISOString() });
      await flush();
      auth.release();
      expect((await inFlight).keyId).toBe('good');
      expect(await codeOf(verifier.verify(GOOD, IP))).toBe(ErrorCode.Unauthorized);
      expect(auth.asked).toHaveLength(2);
    });
  });

  describe('auth service unreachable', () => {
    it('answers an uncached key 503 auth_unavailable with Retry-After', async () => {
      const { auth, verifier } = setup();
      auth.down();
      const error = await errorOf(verifier.verify(GOOD, IP));
      expect(error.code).toBe(ErrorCode.AuthUnavailable);
      expect(error.status).toBe(503);
      expect(Number(error.headers['Retry-After'])).toBeGreaterThan(0);
    });

    it('serves a cached good key for stale_max past its freshness, then 503', async () => {
      const { auth, verifier } = setup();
      const t0 = Date.now();
      await verifier.verify(GOOD, IP, t0);
      auth.down();
      // Fresh for 30 s, then stale-usable for 5 min more.
      expect((await verifier.verify(GOOD, IP, t0 + 31_000)).keyId).toBe('good');
      expect((await verifier.verify(GOOD, IP, t0 + 30_000 + 299_000)).keyId).toBe('good');
      expect(await codeOf(verifier.verify(GOOD, IP, t0 + 30_000 + 301_000))).toBe(
        ErrorCode.AuthUnavailable,
      );
    });

    it('never lets an unknown key through, even one it refused before', async () => {
      const { auth, verifier } = setup();
      const t0 = Date.now();
      await codeOf(verifier.verify('unknown-key-0123456789', IP, t0));
      auth.down();
      expect(await codeOf(verifier.verify('unknown-key-0123456789', IP, t0 + 1_000))).toBe(
        ErrorCode.Unauthorized,
      );
      expect(await codeOf(verifier.verify('unknown-key-0123456789', IP, t0 + 11_000))).toBe(
        ErrorCode.AuthUnavailable,
      );
      expect(await codeOf(verifier.verify('never-seen-key-0123456789', IP, t0 + 11_000))).toBe(
        ErrorCode.AuthUnavailable,
      );
    });

    it('waits at most the verify timeout for a hung auth service, then stops asking for a while', async () => {
      const { auth, verifier } = setup(CONFIG, 100);
      const t0 = Date.now();
      await verifier.verify(GOOD, IP, t0);
      auth.hang = true;
      let started = Date.now();
      expect(await codeOf(verifier.verify(OTHER, IP))).toBe(ErrorCode.AuthUnavailable);
      expect(Date.now() - started).toBeLessThan(1_000);
      const askedBefore = auth.asked.length;
      started = Date.now();
      // Suspended: answered without asking, a stale good key served, an unknown one 503.
      expect((await verifier.verify(GOOD, IP, Date.now() + 31_000)).keyId).toBe('good');
      expect(await codeOf(verifier.verify('another-unknown-key-0123', IP))).toBe(
        ErrorCode.AuthUnavailable,
      );
      expect(Date.now() - started).toBeLessThan(50);
      expect(auth.asked.length).toBe(askedBefore);
    });
  });

  describe('failed keys per client address (auth.max_failures)', () => {
    it('answers 429 too_many_auth_failures after `count` failures, without asking the auth service', async () => {
      const { auth, verifier, metrics } = setup();
      for (let i = 0; i < 3; i++) {
        expect(await codeOf(verifier.verify(`guess-${i}-0123456789abcdef`, IP))).toBe(
          ErrorCode.Unauthorized,
        );
      }
      const asked = auth.asked.length;
      const error = await errorOf(verifier.verify('guess-3-0123456789abcdef', IP));
      expect(error.code).toBe(ErrorCode.TooManyAuthFailures);
      expect(error.status).toBe(429);
      const retryAfter = Number(error.headers['Retry-After']);
      expect(retryAfter).toBeGreaterThan(50);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // Good keys from the blocked address too, uncached or cached: no oracle while blocked.
      expect(await codeOf(verifier.verify(OTHER, IP))).toBe(ErrorCode.TooManyAuthFailures);
      expect(auth.asked.length).toBe(asked);
      const metricsText = await metrics.registry.metrics();
      expect(metricsText).toMatch(/mcp_gateway_auth_failures_total\{result="failed"\} 3/);
    });

    it('refuses a cached good key from an address it has blocked', async () => {
      const { verifier } = setup();
      await verifier.verify(GOOD, IP);
      for (let i = 0; i < 3; i++) await codeOf(verifier.verify(`guess-${i}-0123456789abcdef`, IP));
      expect(await codeOf(verifier.verify(GOOD, IP))).toBe(ErrorCode.TooManyAuthFailures);
      expect((await verifier.verify(GOOD, '192.0.2.99')).keyId).toBe('good');
    });

    it('counts a key refused moments ago as knocking, not as a new guess: the good key stays usable', async () => {
      const { verifier } = setup();
      // One guess, then its repeats (a client retrying or restarting with a wrong key): the
      // repeats have the key-less allowance (3 here).
      for (let i = 0; i < 4; i++) {
        expect(await codeOf(verifier.verify('same-guess-0123456789', IP))).toBe(
          ErrorCode.Unauthorized,
        );
      }
      // Repeats are limited as requests without a valid credential are...
      const refused = await errorOf(verifier.verify('same-guess-0123456789', IP));
      expect(refused.code).toBe(ErrorCode.TooManyAuthFailures);
      expect(refused.message).toMatch(/without a valid credential/);
      // ...and never spend the failed-key allowance: the good key is served.
      expect((await verifier.verify(GOOD, IP)).keyId).toBe('good');
      expect(await codeOf(verifier.verify('new-guess-0123456789ab', IP))).toBe(
        ErrorCode.Unauthorized,
      );
    });

    it('does not count good keys, missing keys or an unreachable auth service against the client', async () => {
      const { auth, verifier } = setup();
      for (let i = 0; i < 5; i++) {
        verifier.clear();
        await verifier.verify(GOOD, IP);
        await codeOf(verifier.verify(undefined, IP));
      }
      auth.down();
      for (let i = 0; i < 5; i++)
        expect(await codeOf(verifier.verify(`k-${i}-0123456789abcdef`, IP))).toBe(
          ErrorCode.AuthUnavailable,
        );
      auth.up();
      await flush();
      expect(await codeOf(verifier.verify('guess-0123456789abcdef', IP))).toBe(
        ErrorCode.Unauthorized,
      );
    });

    it('lets only `count` of a concurrent burst of guesses reach the auth service', async () => {
      const { auth, verifier } = setup();
      const codes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          codeOf(verifier.verify(`burst-${i}-0123456789abcdef`, IP)),
        ),
      );
      expect(codes.filter((c) => c === ErrorCode.Unauthorized)).toHaveLength(3);
      expect(codes.filter((c) => c === ErrorCode.TooManyAuthFailures)).toHaveLength(17);
      expect(auth.asked).toHaveLength(3);
    });
  });
});
