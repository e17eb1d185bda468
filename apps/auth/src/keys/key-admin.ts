import { randomBytes } from 'node:crypto';
import {
  type AdminActor,
  type AdminGrant,
  type AdminRefusal,
  type AdminRefusalCode,
  type ConfigStore,
  type CreateKeyReply,
  type CreateKeyRequest,
  type GatewayConfig,
  type KeyConfig,
  type KeyListing,
  type ListKeysReply,
  type ListKeysRequest,
  resolvePermissions,
  type RevokeKeyReply,
  type RevokeKeyRequest,
  type ToolRules,
} from '#common';
import type { Logger } from 'pino';
import { boundByGrant, durationText } from './grant-bounds.js';
import { parseNewKey } from './new-key.js';
import {
  DuplicateKeyIdError,
  KeyStoreUnavailableError,
  type RuntimeKeyRecord,
  type RuntimeKeys,
} from './runtime-keys.js';

/**
 * The admin API's work (SPEC §5 v2), on the auth service that owns the keys: create, list and
 * revoke keys for the admin the analytics service authenticated. A tenant admin sees and
 * changes its own tenant's keys only: another tenant's key is "not found" to it (no oracle),
 * creating one for another tenant is forbidden. File keys are listed but read-only (conflict).
 */
export class KeyAdmin {
  constructor(
    private readonly config: ConfigStore,
    /** null: no store (in process without a keys file); writes answer `unavailable`. */
    private readonly runtime: RuntimeKeys | null,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async create(request: CreateKeyRequest): Promise<CreateKeyReply> {
    const actor = actorOf(request);
    if (
      !actor ||
      typeof request.keySha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(request.keySha256)
    ) {
      return refuse('bad_request', 'malformed admin request');
    }
    const config = this.config.current;
    const parsed = parseNewKey(request.input, config, this.now());
    if (!parsed.ok) return refuse('bad_request', parsed.message);
    let input = parsed.key;
    let inheritedTools: RuntimeKeyRecord['inherited_tools'] = [];
    const tenant = input.tenant ?? actor.tenant;
    if (actor.tenant !== null) {
      if (tenant !== actor.tenant) {
        return refuse('forbidden', `this key may only manage keys of tenant "${actor.tenant}"`);
      }
      const bounded = boundByGrant(input, actor.grant, config);
      if (!bounded.ok) return refuse('exceeds_grant', bounded.message);
      ({ key: input, inheritedTools } = bounded.bounded);
    }
    const id = input.id ?? `key-${randomBytes(6).toString('hex')}`;
    if (config.keys.some((key) => key.id === id)) {
      return refuse('conflict', `key id "${id}" is taken by a key in the config file`);
    }
    if (!this.runtime) return noStore();
    const record: RuntimeKeyRecord = {
      id,
      key_sha256: request.keySha256,
      user: input.user,
      tenant: tenant ?? null,
      roles: input.roles,
      namespaces: input.namespaces,
      tools: input.tools ?? null,
      inherited_tools: inheritedTools,
      rate_limit: input.rate_limit ?? null,
      expires_at: input.expires_at ? new Date(input.expires_at).toISOString() : null,
      created_at: new Date(this.now()).toISOString(),
      created_by: actor.keyId,
    };
    try {
      await this.runtime.create(record);
    } catch (error) {
      if (error instanceof DuplicateKeyIdError) return refuse('conflict', error.message);
      return this.failed(error, 'create');
    }
    this.logger.info({ key_id: id, tenant: record.tenant, by: actor.keyId }, 'key created');
    return { ok: true, key: apiListing(record, config) };
  }

  list(request: ListKeysRequest): ListKeysReply {
    const actor = actorOf(request);
    if (!actor) return refuse('bad_request', 'malformed admin request');
    const config = this.config.current;
    const fileIds = new Set(config.keys.map((key) => key.id));
    const keys = [
      ...config.keys.map((key) => fileListing(key, config)),
      // A created key whose id a file key has taken since is not in force: not listed either.
      ...(this.runtime?.list() ?? [])
        .filter((record) => !fileIds.has(record.id))
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((record) => apiListing(record, config)),
    ];
    return { ok: true, keys: keys.filter((key) => visibleTo(actor, key.tenant)) };
  }

  async revoke(request: RevokeKeyRequest): Promise<RevokeKeyReply> {
    const actor = actorOf(request);
    if (!actor || typeof request.id !== 'string')
      return refuse('bad_request', 'malformed admin request');
    const id = request.id;
    const notFound = refuse('not_found', `no key "${id}"`);
    const fileKey = this.config.current.keys.find((key) => key.id === id);
    if (fileKey) {
      if (!visibleTo(actor, fileKey.tenant ?? null)) return notFound;
      return refuse(
        'conflict',
        `key "${id}" is defined in the config file: edit the file to revoke it`,
      );
    }
    if (!this.runtime) return noStore();
    try {
      const record = await this.runtime.get(id);
      if (!record || !visibleTo(actor, record.tenant)) return notFound;
      if (!(await this.runtime.revoke(id))) return notFound;
    } catch (error) {
      return this.failed(error, 'revoke');
    }
    this.logger.info({ key_id: id, by: actor.keyId }, 'key revoked');
    return { ok: true };
  }

  private failed(error: unknown, action: string): AdminRefusal {
    if (error instanceof KeyStoreUnavailableError) {
      this.logger.warn({ err: error.cause ?? error, action }, 'key store unavailable');
      return refuse('unavailable', `${error.message}, retry shortly`);
    }
    throw error;
  }
}

function refuse(code: AdminRefusalCode, message: string): AdminRefusal {
  return { ok: false, code, message };
}

function noStore(): AdminRefusal {
  return refuse('unavailable', 'this auth service has no store for created keys');
}

/** The acting admin, when the request names one in the shape the analytics service sends. */
function actorOf(request: { actor?: unknown } | undefined): AdminActor | undefined {
  const actor = request?.actor as Partial<AdminActor> | undefined;
  if (typeof actor?.keyId !== 'string') return undefined;
  if (actor.tenant !== null && typeof actor.tenant !== 'string') return undefined;
  return {
    keyId: actor.keyId,
    user: typeof actor.user === 'string' ? actor.user : null,
    tenant: actor.tenant,
    grant: grantOf(actor.grant),
  };
}

/** The admin's own permissions in the shape the analytics service sends; else undefined. */
function grantOf(value: unknown): AdminGrant | undefined {
  const grant = value as Partial<AdminGrant> | undefined;
  const names = (list: unknown): list is string[] =>
    Array.isArray(list) && list.every((item) => typeof item === 'string');
  const rules = (item: unknown): item is ToolRules =>
    typeof item === 'object' &&
    item !== null &&
    names((item as ToolRules).allow) &&
    names((item as ToolRules).deny);
  const limit = grant?.rateLimit;
  if (
    !grant ||
    !names(grant.namespaces) ||
    !names(grant.roles) ||
    !Array.isArray(grant.tools) ||
    !grant.tools.every(rules) ||
    (limit !== null &&
      !(Number.isSafeInteger(limit?.requests) && Number.isSafeInteger(limit?.perMs))) ||
    (grant.expiresAt !== null && typeof grant.expiresAt !== 'number')
  ) {
    return undefined;
  }
  return grant as AdminGrant;
}

function visibleTo(actor: AdminActor, tenant: string | null): boolean {
  return actor.tenant === null || actor.tenant === tenant;
}

function fileListing(key: KeyConfig, config: GatewayConfig): KeyListing {
  return {
    id: key.id,
    source: 'file',
    user: key.user ?? null,
    tenant: key.tenant ?? null,
    roles: key.roles,
    namespaces: key.namespaces,
    tools: key.tools ?? null,
    inherited_tools: [],
    rate_limit: key.rate_limit
      ? { requests: key.rate_limit.requests, per: durationText(key.rate_limit.per) }
      : null,
    expires_at: key.expires_at ? new Date(key.expires_at).toISOString() : null,
    admin: resolvePermissions(config, key).role === 'admin',
    created_at: null,
    created_by: null,
  };
}

function apiListing(record: RuntimeKeyRecord, config: GatewayConfig): KeyListing {
  const grant = { roles: record.roles, namespaces: record.namespaces };
  return {
    id: record.id,
    source: 'api',
    user: record.user,
    tenant: record.tenant,
    roles: record.roles,
    namespaces: record.namespaces,
    tools: record.tools,
    inherited_tools: record.inherited_tools,
    rate_limit: record.rate_limit,
    expires_at: record.expires_at,
    admin: resolvePermissions(config, grant).role === 'admin',
    created_at: record.created_at,
    created_by: record.created_by,
  };
}
