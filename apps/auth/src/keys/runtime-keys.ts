import { KEY_ID, parseDuration } from '#common';
import { z } from 'zod';

const names = z.array(z.string());

/**
 * A key created through the admin API, as the auth service stores it (SPEC §5 v2): the SHA-256 of
 * its secret, never the secret, and the same fields a file key has. Plain JSON; read back through
 * this schema, so a hand-edited entry that is not a key is ignored rather than trusted.
 */
export const runtimeKeyRecord = z.object({
  id: z.string().regex(KEY_ID),
  key_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  user: z.string(),
  tenant: z.string().nullable(),
  roles: names,
  namespaces: names,
  tools: z.object({ allow: names, deny: names }).nullable(),
  /** The tool scopes of the tenant admin who created it (absent in records of before). */
  inherited_tools: z.array(z.object({ allow: names, deny: names })).default([]),
  /** `per` as written (a duration like `1m`), so the stored value reads as the config does. */
  rate_limit: z
    .object({
      requests: z.number().int().positive(),
      per: z.string().refine((text) => parseDuration(text) !== undefined),
    })
    .nullable(),
  expires_at: z.iso.datetime({ offset: true }).nullable(),
  created_at: z.iso.datetime({ offset: true }),
  /** The key id of the admin who created it. */
  created_by: z.string(),
});

export type RuntimeKeyRecord = z.infer<typeof runtimeKeyRecord>;

/** The store cannot be reached (NATS or JetStream down, the file unwritable): admin writes get 503. */
export class KeyStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreUnavailableError';
  }
}

/** A created key's id is taken by another created key. */
export class DuplicateKeyIdError extends Error {
  constructor(readonly id: string) {
    super(`a key with id "${id}" exists`);
    this.name = 'DuplicateKeyIdError';
  }
}

/**
 * The durable store of keys created at run time, shared by every auth replica: a JetStream
 * key-value bucket in distributed mode (KvRuntimeKeys), a file beside the DuckDB file in
 * standalone mode (FileRuntimeKeys). The auth service holds what `watch` delivers in memory and
 * answers verify requests from it; writes go to the store and come back through the watch, on
 * every replica alike.
 */
export interface RuntimeKeys {
  /**
   * Delivers the whole set now (as soon as it is loaded) and again after every change, from any
   * replica. Resolves once the first set was delivered, or after `readyTimeoutMs` when the store
   * cannot be reached yet (it keeps trying; file and cached keys work meanwhile).
   */
  watch(onChange: (keys: RuntimeKeyRecord[]) => void, readyTimeoutMs?: number): Promise<void>;
  /** The set as last delivered. */
  list(): RuntimeKeyRecord[];
  /** The stored record of `id` (from the store itself, not the watch), or undefined. */
  get(id: string): Promise<RuntimeKeyRecord | undefined>;
  /**
   * Stores a new key; throws DuplicateKeyIdError when the id is taken, KeyStoreUnavailableError.
   * Resolves once this replica's watch has delivered it (bounded), so the key works at once.
   */
  create(record: RuntimeKeyRecord): Promise<void>;
  /** Deletes a key; false when there is none with that id. Resolves as create() does. */
  revoke(id: string): Promise<boolean>;
  close(): Promise<void>;
}
