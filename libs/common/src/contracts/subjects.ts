/**
 * NATS contracts: every subject the services exchange, next to its payload types. Call sites
 * use these constants through the typed Bus, never string literals, so a subject and its
 * payload cannot drift apart. A breaking payload change gets a new `.vN` subject.
 */
export const AUTH_KEY_VERIFY = 'auth.key.verify.v1';
export const AUTH_KEYS_CHANGED = 'auth.keys.changed.v1';
export const EDGE_SESSION_CLOSED = 'edge.session.closed.v1';

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

/** Request-reply subjects and their payloads. */
export interface RequestContracts {
  [AUTH_KEY_VERIFY]: { request: VerifyKeyRequest; reply: VerifyKeyReply };
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
