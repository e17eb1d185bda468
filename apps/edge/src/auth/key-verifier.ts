import type { IncomingMessage } from 'node:http';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  type Bus,
  BusRemoteError,
  BusTimeoutError,
  BusUnavailableError,
  type ConfigStore,
  ErrorCode,
  type GatewayConfig,
  GatewayError,
  type Principal,
  presentedKey,
  sha256Hex,
  clientIp,
  failureSubject,
} from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { AuthFailureLimiter } from './auth-failures.js';
import { credentialOf } from './credential.js';
import { looksLikeJwt, type TokenVerifier } from './token-verifier.js';

interface CacheEntry {
  principal: Principal | null;
  /** Fresh until: after this the auth service is asked again. */
  freshUntil: number;
  /** For good keys: usable this long while the auth service is unreachable. */
  staleUntil: number;
}

export interface KeyVerifierOptions {
  /** Longest wait for the auth service's answer (a responder that exists but hangs). */
  verifyTimeoutMs?: number;
  maxEntries?: number;
  maxNegativeEntries?: number;
}

/** After a verify timed out, the auth service is not asked again for this long. */
const SUSPEND_AFTER_TIMEOUT_MS = 2_000;

/**
 * Verifies keys with the auth service and caches the answers (SPEC §5). Only the key's SHA-256
 * leaves the edge. A request costs at most one bus round trip: a cache hit costs none, and
 * concurrent requests with the same uncached key share one.
 *
 * - Good answers are cached for `auth.cache_ttl`, refusals for `auth.negative_ttl`, in two
 *   bounded maps so a flood of unknown keys cannot push the good ones out.
 * - `auth.keys.changed.v1` and a change of the `keys` section of the edge's own config file
 *   drop the cache; an answer that was in flight across a drop is not cached.
 * - While the auth service is unreachable (no responders, NATS down, timeout, failing), a good
 *   key serves from cache for `auth.stale_max` past its freshness; any other key gets 503
 *   `auth_unavailable`. An unknown key never passes.
 * - Failed keys are counted per client address (`auth.max_failures`, AuthFailureLimiter)
 *   before the auth service is asked, so a blocked client never reaches it.
 */
export class KeyVerifier {
  private readonly good = new Map<string, CacheEntry>();
  private readonly bad = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Principal | null>>();
  private readonly judging = new Map<string, Promise<Principal>>();
  /** Bumped on every cache drop: answers asked under an older generation are not cached. */
  private generation = 0;
  private suspendedUntil = 0;
  private readonly verifyTimeoutMs: number;
  private readonly maxEntries: number;
  private readonly maxNegativeEntries: number;

  constructor(
    private readonly bus: Bus,
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    private readonly failures: AuthFailureLimiter,
    private readonly tokens?: TokenVerifier,
    options: KeyVerifierOptions = {},
  ) {
    this.verifyTimeoutMs = options.verifyTimeoutMs ?? 2_000;
    this.maxEntries = options.maxEntries ?? 50_000;
    this.maxNegativeEntries = options.maxNegativeEntries ?? 10_000;
    bus.subscribe(AUTH_KEYS_CHANGED, () => this.clear());
    // The edge watches the same file as the auth service: a revocation applies here even when
    // the broadcast is lost (NATS down at that moment). Other config changes keep the cache.
    config.onChange((next, previous) => {
      if (keysChanged(next, previous)) this.clear();
    });
  }

  /**
   * The principal of the request's credential (headers only) for the route `name`, or a
   * GatewayError (401 / 403 insufficient_scope / 429 / 503). With `auth.oauth`, a bearer value
   * that is a JWT is an access token (TokenVerifier); anything else is an API key.
   */
  authenticate(req: IncomingMessage, name: string): Promise<Principal> {
    const ip = clientIp(req, this.config.current.server.trust_proxy);
    const bearer = bearerOf(req.headers.authorization);
    if (bearer !== undefined && this.tokens?.enabled) {
      const known = this.tokens.cached(bearer, name);
      if (known) {
        this.failures.assertNotBlocked(ip);
        return Promise.resolve(known);
      }
      if (looksLikeJwt(bearer)) return this.verifyToken(bearer, name, ip);
    }
    return this.verify(presentedKey(req.headers), ip);
  }

  /**
   * A refused token is knocking, not guessing: a signature cannot be guessed, and an expired
   * token is what a client sends once before it refreshes. So it spends the client's allowance
   * of requests without a valid credential (which bounds the signature checks a flood costs),
   * never its failed-key allowance: clients behind one address never lock each other's keys out.
   */
  private async verifyToken(token: string, name: string, ip: string): Promise<Principal> {
    this.failures.assertNotBlocked(ip);
    try {
      return await this.tokens!.verify(token, name);
    } catch (error) {
      if (error instanceof GatewayError && error.code === ErrorCode.Unauthorized) {
        await this.failures.anonymous(ip);
      }
      throw error;
    }
  }

  async verify(key: string | undefined, ip: string, now = Date.now()): Promise<Principal> {
    // No key is no guess: it never counts against the client's failed-key allowance, but it is
    // limited on a counter of its own, so knocking is not free (SPEC §6 v2).
    if (!key) {
      await this.failures.anonymous(ip, now);
      throw unauthorized();
    }
    const digest = sha256Hex(key);
    const known = this.good.get(digest);
    if (known && known.freshUntil > now) {
      this.failures.assertNotBlocked(ip, now);
      this.metrics.authCacheHits.inc();
      return usable(known.principal, now);
    }
    // Concurrent requests of one client with one key are one attempt, judged once: a client
    // opening several streams with a new key must not count as several failures.
    const id = `${failureSubject(ip)} ${digest}`;
    let judgement = this.judging.get(id);
    if (!judgement) {
      const pending = this.judge(digest, ip, now).finally(() => {
        if (this.judging.get(id) === pending) this.judging.delete(id);
      });
      this.judging.set(id, pending);
      judgement = pending;
    }
    return judgement;
  }

  private async judge(digest: string, ip: string, now: number): Promise<Principal> {
    const refused = this.bad.get(digest);
    if (refused && refused.freshUntil > now) {
      // A key refused moments ago is no new guess (a client retrying, restarting with a wrong
      // key): it costs the client's allowance of requests without a valid credential, not its
      // failed-key allowance, so retries never lock out the client's good key.
      this.failures.assertNotBlocked(ip, now);
      this.metrics.authCache.inc({ result: 'hit' });
      await this.failures.anonymous(ip, now);
      throw unauthorized();
    }
    const attempt = await this.failures.attempt(ip, now);
    this.metrics.authCache.inc({ result: 'miss' });

    let principal: Principal | null;
    try {
      if (Date.now() < this.suspendedUntil)
        throw new BusTimeoutError(AUTH_KEY_VERIFY, this.verifyTimeoutMs);
      principal = await this.ask(digest, now);
    } catch (error) {
      // Not the client's fault: the attempt does not count.
      attempt.release();
      if (!(
        error instanceof BusUnavailableError ||
        error instanceof BusTimeoutError ||
        error instanceof BusRemoteError
      )) {
        throw error;
      }
      const known = this.good.get(digest);
      if (known?.principal && known.staleUntil > now) {
        this.metrics.authCache.inc({ result: 'stale' });
        return usable(known.principal, now);
      }
      throw new GatewayError(ErrorCode.AuthUnavailable, 'Authentication service unavailable', {
        'Retry-After': '5',
      });
    }
    if (!principal || expired(principal, now)) {
      attempt.fail();
      throw unauthorized();
    }
    attempt.release();
    return principal;
  }

  clear(): void {
    this.good.clear();
    this.bad.clear();
    this.inflight.clear();
    this.judging.clear();
    this.generation++;
  }

  private ask(digest: string, now: number): Promise<Principal | null> {
    // Concurrent requests with the same key share one round trip.
    const existing = this.inflight.get(digest);
    if (existing) return existing;
    const generation = this.generation;
    const pending = this.bus
      .send(AUTH_KEY_VERIFY, { keySha256: digest }, { timeoutMs: this.verifyTimeoutMs })
      .then(
        (reply) => {
          const principal =
            reply.ok && reply.principal
              ? { ...reply.principal, credential: credentialOf(digest) }
              : null;
          // A drop while the question was out (a revocation) makes its answer unsafe to keep.
          if (generation === this.generation) this.remember(digest, principal, now);
          return principal;
        },
        (error: unknown) => {
          if (error instanceof BusTimeoutError)
            this.suspendedUntil = Date.now() + SUSPEND_AFTER_TIMEOUT_MS;
          throw error;
        },
      )
      .finally(() => {
        if (this.inflight.get(digest) === pending) this.inflight.delete(digest);
      });
    this.inflight.set(digest, pending);
    return pending;
  }

  private remember(digest: string, principal: Principal | null, now: number): void {
    const { cache_ttl, negative_ttl, stale_max } = this.config.current.auth;
    const [map, bound] = principal
      ? [this.good, this.maxEntries]
      : [this.bad, this.maxNegativeEntries];
    map.delete(digest);
    if (map.size >= bound) {
      // Map iteration order is insertion order: drop the oldest entry.
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    const freshUntil = now + (principal ? cache_ttl : negative_ttl);
    map.set(digest, { principal, freshUntil, staleUntil: principal ? freshUntil + stale_max : 0 });
    // A key is either good or bad: a newer answer replaces the other kind.
    (principal ? this.bad : this.good).delete(digest);
  }
}

function expired(principal: Principal, now: number): boolean {
  return principal.expiresAt !== null && principal.expiresAt <= now;
}

function usable(principal: Principal | null, now: number): Principal {
  if (!principal || expired(principal, now)) throw unauthorized();
  return principal;
}

function unauthorized(): GatewayError {
  // One answer for missing, unknown, revoked and expired keys: no oracle.
  return new GatewayError(ErrorCode.Unauthorized, 'Missing or invalid API key', {
    'WWW-Authenticate': 'Bearer',
  });
}

/** Keys, or the roles they hold (which decide their namespaces and tool scopes), changed. */
function keysChanged(next: GatewayConfig, previous: GatewayConfig): boolean {
  return (
    JSON.stringify([next.keys, next.roles]) !== JSON.stringify([previous.keys, previous.roles])
  );
}

function bearerOf(authorization: string | string[] | undefined): string | undefined {
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  return value === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value)?.[1];
}

export function mayUseNamespace(principal: Principal, namespace: string): boolean {
  return principal.namespaces.includes('*') || principal.namespaces.includes(namespace);
}
