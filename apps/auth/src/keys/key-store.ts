import {
  type GatewayConfig,
  type PermissionGrant,
  type Principal,
  parseDuration,
  resolvePermissions,
  sha256Hex,
  digestsEqual,
  type VerifyKeyReply,
} from '#common';
import type { RuntimeKeyRecord } from './runtime-keys.js';

interface StoredKey {
  digest: string;
  principal: Principal;
}

/** What a key of either source says, before its roles are resolved. */
interface KeySource {
  id: string;
  digest: string;
  user: string | null;
  tenant: string | null;
  grant: PermissionGrant;
  rateLimit: Principal['rateLimit'];
  expiresAt: string | null;
}

/**
 * The API keys in force, indexed by the SHA-256 of the key: the config file's and those created
 * through the admin API (SPEC §5 v2), both resolved against the config's roles the same way.
 * Raw keys from the config (`key:`) are hashed on load; only digests are kept here. Verification
 * looks the digest up and then compares it in constant time.
 */
export class KeyStore {
  private byDigest = new Map<string, StoredKey>();
  private fingerprint = '';
  private config: GatewayConfig;
  private runtime: RuntimeKeyRecord[];
  version = 0;
  /** Ids of keys that share their secret with an earlier key (which wins); a config mistake. */
  shadowed: string[] = [];
  /** Ids of created keys that a file key has taken since (the file key wins). */
  overridden: string[] = [];

  constructor(config: GatewayConfig, runtime: RuntimeKeyRecord[] = []) {
    this.config = config;
    this.runtime = runtime;
    this.rebuild();
  }

  /** Applies a new config; returns true when anything a verify answer depends on changed. */
  load(config: GatewayConfig): boolean {
    this.config = config;
    return this.rebuild();
  }

  /** Applies a new set of created keys; returns true as load() does. */
  loadRuntime(runtime: RuntimeKeyRecord[]): boolean {
    this.runtime = runtime;
    return this.rebuild();
  }

  private rebuild(): boolean {
    const config = this.config;
    const next = new Map<string, StoredKey>();
    const shadowed: string[] = [];
    const overridden: string[] = [];
    const fileIds = new Set(config.keys.map((key) => key.id));
    const sources: KeySource[] = config.keys.map((key) => ({
      id: key.id,
      digest: (key.key_sha256 ?? sha256Hex(key.key!)).toLowerCase(),
      user: key.user ?? null,
      tenant: key.tenant ?? null,
      grant: { roles: key.roles, namespaces: key.namespaces, tools: key.tools, role: key.role },
      rateLimit: key.rate_limit
        ? { requests: key.rate_limit.requests, perMs: key.rate_limit.per }
        : null,
      expiresAt: key.expires_at ?? null,
    }));
    for (const record of this.runtime) {
      if (fileIds.has(record.id)) {
        overridden.push(record.id);
        continue;
      }
      sources.push({
        id: record.id,
        digest: record.key_sha256,
        user: record.user,
        tenant: record.tenant,
        grant: {
          roles: record.roles,
          namespaces: record.namespaces,
          tools: record.tools ?? undefined,
          inheritedTools: record.inherited_tools,
        },
        rateLimit: record.rate_limit
          ? { requests: record.rate_limit.requests, perMs: parseDuration(record.rate_limit.per)! }
          : null,
        expiresAt: record.expires_at,
      });
    }
    for (const key of sources) {
      if (next.has(key.digest)) {
        shadowed.push(key.id);
        continue;
      }
      // The key's roles resolved here, once per change: an edge applies the result as it is.
      const permissions = resolvePermissions(config, key.grant);
      next.set(key.digest, {
        digest: key.digest,
        principal: {
          keyId: key.id,
          user: key.user,
          tenant: key.tenant,
          role: permissions.role,
          namespaces: permissions.namespaces,
          roles: permissions.roles,
          tools: permissions.tools,
          rateLimit: key.rateLimit,
          expiresAt: key.expiresAt === null ? null : Date.parse(key.expiresAt),
        },
      });
    }
    const fingerprint = JSON.stringify([...next.values()]);
    const changed = fingerprint !== this.fingerprint;
    this.byDigest = next;
    this.fingerprint = fingerprint;
    this.shadowed = shadowed;
    this.overridden = overridden;
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
