import { randomBytes } from 'node:crypto';
import {
  type AdminActor,
  type AdminRefusal,
  AUTH_ADMIN_KEYS_CREATE,
  AUTH_ADMIN_KEYS_LIST,
  AUTH_ADMIN_KEYS_REVOKE,
  type Bus,
  ErrorCode,
  GatewayError,
  type KeyListing,
  type Principal,
  type ReplyOf,
  type RequestOf,
  type RequestSubject,
  looksLikeSecret,
  SECRET_PREFIX,
  sha256Hex,
} from '#common';
import type { Logger } from 'pino';
import { readableBody } from '../api/json-body.js';
import type { AdminRequestContext, AuditLog } from './audit-log.js';

/** What `POST /api/v1/admin/keys` answers: the only time the secret is shown (SPEC §5 v2). */
export interface CreatedKey {
  id: string;
  key: string;
}

/** An admin request waits this long for the auth service (a write waits for the key store). */
const ADMIN_TIMEOUT_MS = 5_000;
const RETRY_AFTER_S = '5';

const REFUSALS: Record<AdminRefusal['code'], ErrorCode> = {
  bad_request: ErrorCode.BadRequest,
  forbidden: ErrorCode.Forbidden,
  exceeds_grant: ErrorCode.ExceedsGrant,
  not_found: ErrorCode.NotFound,
  conflict: ErrorCode.Conflict,
  unavailable: ErrorCode.Unavailable,
};

/**
 * The admin API's side of keys at run time (SPEC §5 v2). The auth service owns the keys and
 * decides; this asks it for the admin the guard authenticated, makes the secret of a new key
 * (the auth service gets its SHA-256 only, as for every verify) and records each write, done or
 * refused, in the audit log.
 */
export class AdminKeys {
  constructor(
    private readonly bus: Bus,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
  ) {}

  async create(
    body: unknown,
    principal: Principal,
    context: AdminRequestContext,
  ): Promise<CreatedKey> {
    const secret = newSecret();
    const asked = isRecord(body) && typeof body.id === 'string' ? body.id : null;
    const audit = { method: 'admin/keys/create', principal, context, target: asked, status: 201 };
    return this.audit.audited(audit, async () => {
      const reply = await this.send(AUTH_ADMIN_KEYS_CREATE, {
        actor: actorOf(principal),
        input: readableBody(body),
        keySha256: sha256Hex(secret),
      });
      if (!reply.ok) throw refused(reply);
      return { result: { id: reply.key.id, key: secret }, target: reply.key.id };
    });
  }

  async list(principal: Principal): Promise<KeyListing[]> {
    const reply = await this.send(AUTH_ADMIN_KEYS_LIST, { actor: actorOf(principal) });
    if (!reply.ok) throw refused(reply);
    return reply.keys;
  }

  async revoke(id: string, principal: Principal, context: AdminRequestContext): Promise<void> {
    // A secret where the id belongs is refused without being echoed, sent on or recorded.
    const secret = looksLikeSecret(id);
    const target = secret ? null : id;
    const audit = { method: 'admin/keys/revoke', principal, context, target, status: 204 };
    await this.audit.audited(audit, async () => {
      if (secret) {
        throw new GatewayError(
          ErrorCode.BadRequest,
          'that is a key’s secret, not its id: revoke a key by its id (keys list shows them); ' +
            'the secret was not recorded, but treat it as exposed',
        );
      }
      const reply = await this.send(AUTH_ADMIN_KEYS_REVOKE, { actor: actorOf(principal), id });
      if (!reply.ok) throw refused(reply);
      return { result: undefined, target: id };
    });
  }

  private async send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
  ): Promise<ReplyOf<S>> {
    try {
      return await this.bus.send(subject, payload, { timeoutMs: ADMIN_TIMEOUT_MS });
    } catch (error) {
      this.logger.warn({ err: error }, 'auth service unavailable for an admin request');
      throw new GatewayError(
        ErrorCode.AuthUnavailable,
        'the auth service is unavailable, retry shortly',
        { 'Retry-After': RETRY_AFTER_S },
      );
    }
  }
}

/** A new key's secret: 32 random bytes, with a prefix that says what it is (secret scanners). */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function actorOf(principal: Principal): AdminActor {
  return {
    keyId: principal.keyId,
    user: principal.user,
    tenant: principal.tenant,
    grant: {
      namespaces: principal.namespaces,
      roles: principal.roles ?? [],
      tools: principal.tools ?? [],
      rateLimit: principal.rateLimit,
      expiresAt: principal.expiresAt,
    },
  };
}

function refused(reply: AdminRefusal): GatewayError {
  const code = REFUSALS[reply.code] ?? ErrorCode.Internal;
  const headers: Record<string, string> =
    code === ErrorCode.Unavailable ? { 'Retry-After': RETRY_AFTER_S } : {};
  return new GatewayError(code, reply.message, headers);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
