import {
  type GatewayConfig,
  type Principal,
  resolvePermissions,
  sha256Hex,
  digestsEqual,
  type VerifyKeyReply,
} from '#common';

interface StoredKey {
  digest: string;
  principal: Principal;
}

/**
 * The API keys in force, indexed by the SHA-256 of the key. Raw keys from the config (`key:`)
 * are hashed on load; only digests are kept here. Verification looks the digest up and then
 * compares it in constant time.
 */
export class KeyStore {
  private byDigest = new Map<string, StoredKey>();
  private fingerprint = '';
  version = 0;
  /** Ids of keys that share their secret with an earlier key (which wins); a config mistake. */
  shadowed: string[] = [];

  constructor(config: GatewayConfig) {
    this.load(config);
  }

  /** Replaces the key set; returns true when anything a verify answer depends on changed. */
  load(config: GatewayConfig): boolean {
    const next = new Map<string, StoredKey>();
    const shadowed: string[] = [];
    for (const key of config.keys) {
      const digest = (key.key_sha256 ?? sha256Hex(key.key!)).toLowerCase();
      if (next.has(digest)) {
        shadowed.push(key.id);
        continue;
      }
      // The key's roles resolved here, once per config: an edge applies the result as it is.
      const permissions = resolvePermissions(config, key);
      next.set(digest, {
        digest,
        principal: {
          keyId: key.id,
          user: key.user ?? null,
          tenant: key.tenant ?? null,
          role: permissions.role,
          namespaces: permissions.namespaces,
          roles: permissions.roles,
          tools: permissions.tools,
          rateLimit: key.rate_limit
            ? { requests: key.rate_limit.requests, perMs: key.rate_limit.per }
            : null,
          expiresAt: key.expires_at ? Date.parse(key.expires_at) : null,
        },
      });
    }
    const fingerprint = JSON.stringify([...next.values()]);
    const changed = fingerprint !== this.fingerprint;
    this.byDigest = next;
    this.fingerprint = fingerprint;
    this.shadowed = shadowed;
    if (changed) this.version++;
    return changed;
  }

  verify(keySha256: unknown, now = Date.now()): VerifyKeyReply {
    const digest =
      typeof keySha256 === 'string' && /^[0-9a-f]{64}$/i.test(keySha256)
        ? keySha256.toLowerCase()
        : '';
    const stored = this.byDigest.get(digest);
    // The map lookup finds the candidate; the constant-time compare is the actual check.
    if (!stored || !digestsEqual(stored.digest, digest)) return { ok: false };
    if (stored.principal.expiresAt !== null && stored.principal.expiresAt <= now)
      return { ok: false };
    return { ok: true, principal: stored.principal };
  }
}
