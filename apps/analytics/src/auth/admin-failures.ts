import type { IncomingMessage } from 'node:http';
import { clientIp, type ConfigStore, ErrorCode, failureSubject, GatewayError } from '#common';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * The failed-key limit in front of the analytics and admin API (SPEC §3 `auth.max_failures`, as
 * on the edge): per client address, at most `count` refused keys within `per` (beyond that every
 * request of that address gets 429 `too_many_auth_failures` until the block ends, so a key cannot
 * be guessed here either), and as many requests without a new credential on a counter of their
 * own (beyond that those get 429; a new key is still judged).
 *
 * In memory: the analytics service is a single replica (the DuckDB file's one writer).
 */
export class AdminFailureLimiter {
  private limiters?: { id: string; failed: RateLimiterMemory; anonymous: RateLimiterMemory };
  private readonly blockedUntil = new Map<string, number>();
  private readonly anonymousBlockedUntil = new Map<string, number>();

  constructor(private readonly config: ConfigStore) {}

  /** What a request is counted against: its client address (`server.trust_proxy` as on the edge), an IPv6 /64. */
  subjectOf(req: IncomingMessage): string {
    return failureSubject(clientIp(req, this.config.current.server.trust_proxy));
  }

  /** Throws 429 while the address is blocked (before its key is looked at). */
  assertNotBlocked(ip: string, now = Date.now()): void {
    const until = this.blockedUntil.get(ip);
    if (until === undefined) return;
    if (until > now) throw refuse(until - now);
    this.blockedUntil.delete(ip);
  }

  /**
   * Counts a refused key, or (`anonymous`) a request without a new credential: no key, or a
   * repeat of a key refused moments ago. Throws 429 once the address is over. Only refused keys
   * block the address for every request; knocking blocks only more knocking.
   */
  async failed(ip: string, anonymous: boolean): Promise<void> {
    const { failed, anonymous: knocks } = this.current();
    const blocks = anonymous ? this.anonymousBlockedUntil : this.blockedUntil;
    const until = blocks.get(ip);
    if (until !== undefined && until > Date.now()) throw refuse(until - Date.now());
    try {
      await (anonymous ? knocks : failed).consume(ip, 1);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      if (blocks.size >= 10_000) blocks.clear();
      blocks.set(ip, Date.now() + error.msBeforeNext);
      throw refuse(error.msBeforeNext);
    }
  }

  private current(): { failed: RateLimiterMemory; anonymous: RateLimiterMemory } {
    const { count, per } = this.config.current.auth.max_failures;
    const duration = Math.max(1, Math.ceil(per / 1000));
    const id = `${count}:${duration}`;
    if (this.limiters?.id !== id) {
      const options = { points: count, duration, blockDuration: duration };
      this.limiters = {
        id,
        failed: new RateLimiterMemory(options),
        anonymous: new RateLimiterMemory(options),
      };
    }
    return this.limiters;
  }
}

function refuse(msLeft: number): GatewayError {
  return new GatewayError(
    ErrorCode.TooManyAuthFailures,
    'Too many failed key attempts from this client',
    {
      'Retry-After': String(Math.max(1, Math.ceil(msLeft / 1000))),
    },
  );
}
