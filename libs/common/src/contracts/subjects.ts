/**
 * NATS contracts: every subject the services exchange, next to its payload types. Call sites
 * use these constants through the typed Bus, never string literals, so a subject and its
 * payload cannot drift apart. A breaking payload change gets a new `.vN` subject.
 */
export const AUTH_KEY_VERIFY = 'auth.key.verify.v1';
export const AUTH_KEYS_CHANGED = 'auth.keys.changed.v1';
export const EDGE_SESSION_CLOSED = 'edge.session.closed.v1';
/** (v2) Keys at run time (SPEC §5): the analytics service's admin API asks the auth service. */
export const AUTH_ADMIN_KEYS_CREATE = 'auth.admin.keys.create.v1';
export const AUTH_ADMIN_KEYS_LIST = 'auth.admin.keys.list.v1';
export const AUTH_ADMIN_KEYS_REVOKE = 'auth.admin.keys.revoke.v1';

export type Role = 'admin' | 'user';

export interface RateLimitSpec {
  requests: number;
  perMs: number;
}

/** Allow/deny tool globs (deny wins over allow), as a namespace, role or key writes them. */
export interface ToolRules {
  allow: string[];
  deny: string[];
}

/**
 * Who a key (or, later, a token) belongs to and what it may do, resolved from the config by
 * `resolvePermissions`. Never contains the key or its hash. Plain JSON: it crosses the bus and
 * is cached by edges.
 */
export interface Principal {
  keyId: string;
  user: string | null;
  tenant: string | null;
  /** `admin` when the key says so or any of its roles has `admin: true`. */
  role: Role;
  /** (v2) How it was proven: an API key (absent: a key, as v1 auth services send) or an OAuth token. */
  authMethod?: 'key' | 'oauth';
  /** Namespace names (the key's own and its roles'), or ["*"] for every namespace. */
  namespaces: string[];
  /**
   * (v2) The config roles the principal holds. Optional on the wire: an auth service of v1 sends
   * none (and knows no roles).
   */
  roles?: string[];
  /**
   * (v2) Tool rule sets applied on top of every namespace's own filter: a tool is visible only
   * when the namespace's filter and every set here allow it (the key's `tools`, each role's).
   * Absent or empty: only the namespace's filter applies.
   */
  tools?: ToolRules[];
  rateLimit: RateLimitSpec | null;
  /** Epoch ms after which the key is refused; null when it never expires. */
  expiresAt: number | null;
  /**
   * (v2) A fingerprint of the API key that proved the principal, set by the edge that checked
   * it: sessions are bound to it besides the key id, so a key id issued again, or a file key's
   * new secret, inherits no session. Absent for an OAuth principal (its id is the subject).
   */
  credential?: string;
}

export interface VerifyKeyRequest {
  /** Lower-case hex SHA-256 of the presented key: the raw key never crosses the bus. */
  keySha256: string;
}

export interface VerifyKeyReply {
  ok: boolean;
  principal?: Principal;
}

export interface KeysChangedEvent {
  /** Monotonic per auth process; lets edges ignore stale broadcasts after a restart race. */
  version: number;
  at: string;
}

export interface SessionClosedEvent {
  /** The signature part of the gateway session id that a client ended with DELETE. */
  sessionMac: string;
}

/**
 * The admin an admin request acts for, as the analytics service authenticated it (its guard
 * checked the key): the auth service scopes what a tenant admin may see and change by it.
 */
export interface AdminActor {
  keyId: string;
  user: string | null;
  /** A tenant admin's tenant; null for an admin of every tenant. */
  tenant: string | null;
  /**
   * What the admin may itself do, from its principal: a tenant admin creates keys within it
   * only. Absent (an analytics service of before it was sent): a tenant admin may create none.
   */
  grant?: AdminGrant;
}

/** An admin's own permissions, as its principal carries them (see Principal). */
export interface AdminGrant {
  /** Namespace names, or ["*"]. */
  namespaces: string[];
  roles: string[];
  /** Every tool rule set the admin is bounded by (its key's own and its roles'). */
  tools: ToolRules[];
  /** null: `rate_limits.default` applies to it. */
  rateLimit: RateLimitSpec | null;
  expiresAt: number | null;
}

/** What an admin asks for in `POST /api/v1/admin/keys` (SPEC §5 v2); the auth service validates it. */
export interface NewKeyInput {
  id?: string;
  user: string;
  tenant?: string;
  roles?: string[];
  namespaces?: string[];
  tools?: { allow?: string[]; deny?: string[] };
  /** `per` is a duration as in the config file (`1m`). */
  rate_limit?: { requests: number; per: string };
  /** ISO 8601 date-time, in the future. */
  expires_at?: string;
}

/** One key as the admin API lists it: never its secret, nor the secret's digest. */
export interface KeyListing {
  id: string;
  /** `file`: from the config file (read-only here); `api`: created through the admin API. */
  source: 'file' | 'api';
  user: string | null;
  tenant: string | null;
  roles: string[];
  namespaces: string[];
  tools: ToolRules | null;
  /**
   * Tool rule sets the key is bounded by besides its own `tools`: those of the tenant admin who
   * created it (a key never reaches a tool its creator could not). Empty for file keys.
   */
  inherited_tools: ToolRules[];
  rate_limit: { requests: number; per: string } | null;
  expires_at: string | null;
  /** Whether the key may use the analytics and admin API (its `role`, or an admin role). */
  admin: boolean;
  /** Keys created through the API: when and by which key id; null for file keys. */
  created_at: string | null;
  created_by: string | null;
}

/** Why the auth service refused an admin request; the analytics service maps it to HTTP. */
export type AdminRefusalCode =
  'bad_request' | 'forbidden' | 'exceeds_grant' | 'not_found' | 'conflict' | 'unavailable';

export interface AdminRefusal {
  ok: false;
  code: AdminRefusalCode;
  message: string;
}

export interface CreateKeyRequest {
  actor: AdminActor;
  /** The request body as the client sent it (unvalidated: the auth service validates it). */
  input: unknown;
  /**
   * SHA-256 of the new key's secret. The analytics service makes the secret and shows it to the
   * admin once; like a verify request, this request carries only its digest.
   */
  keySha256: string;
}

export type CreateKeyReply = { ok: true; key: KeyListing } | AdminRefusal;

export interface ListKeysRequest {
  actor: AdminActor;
}

export type ListKeysReply = { ok: true; keys: KeyListing[] } | AdminRefusal;

export interface RevokeKeyRequest {
  actor: AdminActor;
  id: string;
}

export type RevokeKeyReply = { ok: true } | AdminRefusal;

/** Request-reply subjects and their payloads. */
export interface RequestContracts {
  [AUTH_KEY_VERIFY]: { request: VerifyKeyRequest; reply: VerifyKeyReply };
  [AUTH_ADMIN_KEYS_CREATE]: { request: CreateKeyRequest; reply: CreateKeyReply };
  [AUTH_ADMIN_KEYS_LIST]: { request: ListKeysRequest; reply: ListKeysReply };
  [AUTH_ADMIN_KEYS_REVOKE]: { request: RevokeKeyRequest; reply: RevokeKeyReply };
}

/** Broadcast subjects and their payloads. */
export interface EventContracts {
  [AUTH_KEYS_CHANGED]: KeysChangedEvent;
  [EDGE_SESSION_CLOSED]: SessionClosedEvent;
}

export type RequestSubject = keyof RequestContracts;
export type EventSubject = keyof EventContracts;
export type RequestOf<S extends RequestSubject> = RequestContracts[S]['request'];
export type ReplyOf<S extends RequestSubject> = RequestContracts[S]['reply'];
export type EventOf<S extends EventSubject> = EventContracts[S];
