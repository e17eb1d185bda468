import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { type ConfigStore, ErrorCode, GatewayError } from '#common';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { createLimiter, RateLimiterRes } from '../ratelimit/limiter-store.js';
import { failureSubject } from './client-ip.js';

/** One judged key attempt, reserved before the key is checked. */
export interface AuthAttempt {
  /** The key was good, or could not be judged (auth unreachable): the attempt does not count. */
  release(): void;
  /** The key was refused: the attempt stays counted as a failure. */
  fail(): void;
}

const MAX_LOCAL_BLOCKS = 10_000;

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
  private readonly blockedUntil = new Map<string, number>();

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

  private refuse(msLeft: number): GatewayError {
    this.metrics.authFailures.inc({ result: 'blocked' });
    return new GatewayError(
      ErrorCode.TooManyAuthFailures,
      'Too many failed key attempts from this client',
      {
        'Retry-After': String(Math.max(1, Math.ceil(msLeft / 1000))),
      },
    );
  }

  private block(subject: string, until: number): void {
    if (this.blockedUntil.size >= MAX_LOCAL_BLOCKS) {
      const now = Date.now();
      for (const [key, end] of this.blockedUntil) if (end <= now) this.blockedUntil.delete(key);
      // Still full: forget the oldest block; the shared counter still knows it.
      if (this.blockedUntil.size >= MAX_LOCAL_BLOCKS) {
        const oldest = this.blockedUntil.keys().next().value;
        if (oldest !== undefined) this.blockedUntil.delete(oldest);
      }
    }
    this.blockedUntil.set(subject, Math.max(until, this.blockedUntil.get(subject) ?? 0));
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
