import type { IncomingMessage } from 'node:http';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  type Bus,
  ErrorCode,
  GatewayError,
  type Principal,
  sha256Hex,
  type VerifyKeyReply,
  presentedKey,
} from '#common';
import type { Logger } from 'pino';
import type { AdminFailureLimiter } from './admin-failures.js';
import { VerifyCache } from './verify-cache.js';

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Bearer' };
const AUTH_RETRY_AFTER_S = '5';

/**
 * Checks the admin key of an analytics request against the auth service (SPEC §5): only the
 * key's SHA-256 crosses the bus, answers are cached briefly, and a missing, unknown, expired or
 * non-admin key gets the same 401 so the answer is no oracle (which keys exist, which are
 * admins). Refused keys count against the client's address (AdminFailureLimiter): 429 beyond.
 */
export class AdminAuthenticator {
  private readonly unsubscribe: () => void;
  private readonly pending = new Map<string, Promise<VerifyKeyReply>>();

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly failures: AdminFailureLimiter,
    private readonly cache = new VerifyCache(),
    private readonly now: () => number = Date.now,
  ) {
    // A revoked key must not live on in the cache for its TTL when auth announces the change.
    this.unsubscribe = bus.subscribe(AUTH_KEYS_CHANGED, () => this.cache.clear());
  }

  async authenticate(
    headers: Record<string, string | string[] | undefined>,
    req: IncomingMessage,
  ): Promise<Principal> {
    const ip = this.failures.subjectOf(req);
    this.failures.assertNotBlocked(ip);
    const key = presentedKey(headers);
    if (key === undefined) {
      await this.failures.failed(ip, true);
      throw unauthorized();
    }
    const digest = sha256Hex(key);
    // How this request learnt the answer: judged now (a new attempt), shared with a concurrent
    // request of the same key (the same attempt: the dashboard asks several endpoints at once),
    // or cached (a repeat of a key already judged).
    let source: 'judged' | 'shared' | 'cached' = 'cached';
    let reply = this.cache.get(digest);
    if (reply === undefined) {
      let pending = this.pending.get(digest);
      source = pending ? 'shared' : 'judged';
      if (!pending) {
        pending = this.verify(digest).finally(() => this.pending.delete(digest));
        this.pending.set(digest, pending);
      }
      reply = await pending;
      if (source === 'judged') this.cache.set(digest, reply);
    }
    const principal = reply.ok ? reply.principal : undefined;
    if (
      !principal ||
      (principal.expiresAt !== null && principal.expiresAt <= this.now()) ||
      principal.role !== 'admin'
    ) {
      // A new refused key is a guess; a repeat of one refused moments ago is knocking (its own
      // allowance, which never blocks a new key); the concurrent twin of an attempt is that attempt.
      if (source !== 'shared') await this.failures.failed(ip, source === 'cached');
      throw unauthorized();
    }
    return principal;
  }

  close(): void {
    this.unsubscribe();
  }

  private async verify(keySha256: string): Promise<VerifyKeyReply> {
    try {
      return await this.bus.send(AUTH_KEY_VERIFY, { keySha256 });
    } catch (error) {
      this.logger.warn({ err: error }, 'auth service unavailable; refusing uncached key');
      throw new GatewayError(
        ErrorCode.AuthUnavailable,
        'the auth service is unavailable, retry shortly',
        {
          'Retry-After': AUTH_RETRY_AFTER_S,
        },
      );
    }
  }
}

function unauthorized(): GatewayError {
  return new GatewayError(
    ErrorCode.Unauthorized,
    'a valid admin API key is required',
    UNAUTHORIZED_HEADERS,
  );
}
