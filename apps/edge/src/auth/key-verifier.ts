import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  type Bus,
  BusUnavailableError,
  BusTimeoutError,
  type ConfigStore,
  ErrorCode,
  GatewayError,
  type Principal,
  sha256Hex,
} from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';

interface CacheEntry {
  principal: Principal | null;
  /** Fresh until: after this the auth service is asked again. */
  freshUntil: number;
  /** For positive answers: usable this long while the auth service is unreachable. */
  staleUntil: number;
}

const MAX_ENTRIES = 50_000;
const VERIFY_TIMEOUT_MS = 2_000;

/** Takes the key from `Authorization: Bearer` or `X-API-Key`; never from the query string. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}

/**
 * Verifies keys with the auth service (one bus round trip at most) and caches the answers,
 * positive and negative, bounded in size and time. While the auth service is unreachable a
 * cached positive answer serves up to `auth.stale_max`; an unknown key never passes.
 */
export class KeyVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Principal | null>>();

  constructor(
    private readonly bus: Bus,
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
  ) {
    bus.subscribe(AUTH_KEYS_CHANGED, () => this.cache.clear());
    config.onChange(() => this.cache.clear());
  }

  /** Resolves the principal of a presented key or throws a GatewayError (401 / 503). */
  async verify(key: string | undefined, now = Date.now()): Promise<Principal> {
    if (!key) throw unauthorized();
    const digest = sha256Hex(key);
    const cached = this.cache.get(digest);
    if (cached && cached.freshUntil > now) {
      this.metrics.authCache.inc({ result: 'hit' });
      return usable(cached.principal, now);
    }
    this.metrics.authCache.inc({ result: 'miss' });
    let principal: Principal | null;
    try {
      principal = await this.ask(digest);
    } catch (error) {
      if (error instanceof BusUnavailableError || error instanceof BusTimeoutError) {
        if (cached?.principal && cached.staleUntil > now) return usable(cached.principal, now);
        throw new GatewayError(ErrorCode.AuthUnavailable, 'Authentication service unavailable', {
          'Retry-After': '5',
        });
      }
      throw error;
    }
    this.remember(digest, principal, now);
    return usable(principal, now);
  }

  clear(): void {
    this.cache.clear();
  }

  private ask(digest: string): Promise<Principal | null> {
    // Concurrent requests with the same key share one round trip.
    let pending = this.inflight.get(digest);
    if (!pending) {
      pending = this.bus
        .send(AUTH_KEY_VERIFY, { keySha256: digest }, { timeoutMs: VERIFY_TIMEOUT_MS })
        .then((reply) => (reply.ok && reply.principal ? reply.principal : null))
        .finally(() => this.inflight.delete(digest));
      this.inflight.set(digest, pending);
    }
    return pending;
  }

  private remember(digest: string, principal: Principal | null, now: number): void {
    const { cache_ttl, negative_ttl, stale_max } = this.config.current.auth;
    if (this.cache.size >= MAX_ENTRIES) {
      // Map iteration order is insertion order: drop the oldest entry.
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.delete(digest);
    this.cache.set(digest, {
      principal,
      freshUntil: now + (principal ? cache_ttl : negative_ttl),
      staleUntil: principal ? now + stale_max : 0,
    });
  }
}

function usable(principal: Principal | null, now: number): Principal {
  if (!principal || (principal.expiresAt !== null && principal.expiresAt <= now)) throw unauthorized();
  return principal;
}

function unauthorized(): GatewayError {
  // One answer for missing, unknown, revoked and expired keys: no oracle.
  return new GatewayError(ErrorCode.Unauthorized, 'Missing or invalid API key', { 'WWW-Authenticate': 'Bearer' });
}

export function mayUseNamespace(principal: Principal, namespace: string): boolean {
  return principal.namespaces.includes('*') || principal.namespaces.includes(namespace);
}
