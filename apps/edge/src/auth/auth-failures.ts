import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { type ConfigStore, ErrorCode, GatewayError, failureSubject } from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { createLimiter, RateLimiterRes } from '../ratelimit/limiter-store.js';

/** One judged key attempt, reserved before the key is checked. */
export interface AuthAttempt {
  /** The key was good, or could not be judged (auth unreachable): the attempt does not count. */
  release(): void;
  /** The key was refused: the attempt stays counted as a failure. */
  fail(): void;
}

const MAX_LOCAL_BLOCKS = 10_000;
const ANONYMOUS_MESSAGE =
  'Too many requests without a valid credential from this client: send an API key (Authorization: Bearer <key> or X-API-Key) or a valid access token';

/** Notes a block in a bounded map (memory answers blocked clients without asking Redis). */
function remember(blocks: Map<string, number>, subject: string, until: number): void {
  if (blocks.size >= MAX_LOCAL_BLOCKS) {
    const now = Date.now();
    for (const [key, end] of blocks) if (end <= now) blocks.delete(key);
    // Still full: forget the oldest block; the shared counter still knows it.
    if (blocks.size >= MAX_LOCAL_BLOCKS) {
      const oldest = blocks.keys().next().value;
      if (oldest !== undefined) blocks.delete(oldest);
    }
  }
  blocks.set(subject, Math.max(until, blocks.get(subject) ?? 0));
}

/**
 * Brute-force defence (SPEC §3 `auth.max_failures`): at most `count` failed keys per client
 * address within `per`; beyond that 429 `too_many_auth_failures` until the block ends.
 *
 * An attempt is reserved (counted) *before* the key is judged and given back when the key
 * turns out good: so a burst of concurrent guesses cannot all pass a check that each of them
 * reads before any has failed, and a blocked client is answered before the auth service is
 * asked. With Redis the counters are shared by every replica; while Redis fails, and without
 * it, each replica counts on its own (failing open to no limit would invite the flood this
 * exists to stop, failing closed would lock out every client).
 *
 * A cached good key is not checked against the shared counter (that would cost every request
 * a round trip); a replica that has seen the client blocked refuses it from memory instead.
 */
export class AuthFailureLimiter {
  private current?: { id: string; limiter: RateLimiterAbstract };
  private anonymousLimiter?: { id: string; limiter: RateLimiterAbstract };
  private readonly blockedUntil = new Map<string, number>();
  private readonly anonymousBlockedUntil = new Map<string, number>();

  constructor(
    private readonly config: ConfigStore,
    private readonly metrics: EdgeMetrics,
    private readonly redis?: Redis,
    private readonly prefix = 'mcpgw',
  ) {}

  /** Memory only (the hot path of a cached good key): throws 429 while the client is blocked here. */
  assertNotBlocked(ip: string, now = Date.now()): void {
    const subject = failureSubject(ip);
    const until = this.blockedUntil.get(subject);
    if (until === undefined) return;
    if (until > now) throw this.refuse(until - now);
    this.blockedUntil.delete(subject);
  }

  /** Reserves an attempt for a key that is not known good; throws 429 when the client is over the limit. */
  async attempt(ip: string, now = Date.now()): Promise<AuthAttempt> {
    this.assertNotBlocked(ip, now);
    const subject = failureSubject(ip);
    const { limiter, count } = this.limiter();
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(subject, 1);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      this.block(subject, now + error.msBeforeNext);
      throw this.refuse(error.msBeforeNext);
    }
    let settled = false;
    return {
      release: () => {
        if (settled) return;
        settled = true;
        limiter.reward(subject, 1).catch(() => undefined);
      },
      fail: () => {
        if (settled) return;
        settled = true;
        this.metrics.authFailures.inc({ result: 'failed' });
        // The limit is reached: the next attempt is refused, and this replica refuses the
        // client's cached keys too from now on.
        if (res.consumedPoints >= count) this.block(subject, Date.now() + res.msBeforeNext);
      },
    };
  }

  /**
   * A request without any credential (SPEC §6 v2): limited per client address like failed keys,
   * with the same `auth.max_failures` allowance but a counter of its own. So knocking costs the
   * knocker, while a client whose discovery probes or misconfigured starts carry no key never
   * spends the allowance of its real key's attempts (and is never blocked from using it).
   * Throws 429 `too_many_auth_failures` when over; memory answers a blocked client first.
   */
  async anonymous(ip: string, now = Date.now()): Promise<void> {
    const subject = failureSubject(ip);
    const until = this.anonymousBlockedUntil.get(subject);
    if (until !== undefined) {
      if (until > now) throw this.refuse(until - now, ANONYMOUS_MESSAGE);
      this.anonymousBlockedUntil.delete(subject);
    }
    const { count, per } = this.config.current.auth.max_failures;
    const durationSec = Math.max(1, Math.ceil(per / 1000));
    const id = `${count}:${durationSec}`;
    if (this.anonymousLimiter?.id !== id) {
      this.anonymousLimiter = {
        id,
        limiter: createLimiter(
          {
            points: count,
            durationSec,
            blockDurationSec: durationSec,
            keyPrefix: `${this.prefix}:anon:${id}`,
          },
          { redis: this.redis, metrics: this.metrics, kind: 'auth_failures', fallback: true },
        ),
      };
    }
    try {
      await this.anonymousLimiter.limiter.consume(subject, 1);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      remember(this.anonymousBlockedUntil, subject, now + error.msBeforeNext);
      throw this.refuse(error.msBeforeNext, ANONYMOUS_MESSAGE);
    }
  }

  private refuse(
    msLeft: number,
    message = 'Too many failed key attempts from this client',
  ): GatewayError {
    this.metrics.authFailures.inc({ result: 'blocked' });
    return new GatewayError(ErrorCode.TooManyAuthFailures, message, {
      'Retry-After': String(Math.max(1, Math.ceil(msLeft / 1000))),
    });
  }

  private block(subject: string, until: number): void {
    remember(this.blockedUntil, subject, until);
  }

  private limiter(): { limiter: RateLimiterAbstract; count: number } {
    const { count, per } = this.config.current.auth.max_failures;
    const durationSec = Math.max(1, Math.ceil(per / 1000));
    const id = `${count}:${durationSec}`;
    if (this.current?.id !== id) {
      this.current = {
        id,
        limiter: createLimiter(
          // blockDuration: once over the limit the client waits a whole `per`, so failures
          // bunched at the end of one window and the start of the next do not double the rate.
          {
            points: count,
            durationSec,
            blockDurationSec: durationSec,
            keyPrefix: `${this.prefix}:authfail:${id}`,
          },
          { redis: this.redis, metrics: this.metrics, kind: 'auth_failures', fallback: true },
        ),
      };
    }
    return { limiter: this.current.limiter, count };
  }
}
