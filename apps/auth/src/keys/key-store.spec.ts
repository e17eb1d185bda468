import { parseConfig, sha256Hex } from '#common';
import { KeyStore } from './key-store.js';

const ALICE_KEY = 'alice-secret-0123456789';
const OPS_KEY = 'ops-secret-0123456789ab';
const CONFIG = `
namespaces:
  search: { upstream: { url: "http://127.0.0.1:1/mcp" } }
  files: { upstream: { url: "http://127.0.0.1:1/mcp" } }
tenants:
  acme: { rate_limit: { requests: 100, per: 1h } }
keys:
  - id: alice
    user: alice@acme.example
    tenant: acme
    key_sha256: "${sha256Hex(ALICE_KEY).toUpperCase()}"
    namespaces: ["search", "files"]
    rate_limit: { requests: 600, per: 1m }
    expires_at: 2030-01-01T00:00:00Z
  - id: ops
    key: \${OPS_KEY}
    role: admin
    namespaces: ["*"]
  - id: acme-admin
    key: acme-admin-secret-0123456
    tenant: acme
    role: admin
    namespaces: ["*"]
`;

const store = () => new KeyStore(parseConfig(CONFIG, { OPS_KEY }));

describe('KeyStore', () => {
  it('answers a key_sha256 key (any hex case) with its whole principal', () => {
    expect(store().verify(sha256Hex(ALICE_KEY), Date.parse('2029-12-31T00:00:00Z'))).toEqual({
      ok: true,
      principal: {
        keyId: 'alice',
        user: 'alice@acme.example',
        tenant: 'acme',
        role: 'user',
        namespaces: ['search', 'files'],
        roles: [],
        tools: [],
        rateLimit: { requests: 600, perMs: 60_000 },
        expiresAt: Date.parse('2030-01-01T00:00:00Z'),
      },
    });
  });

  it('answers an env-expanded `key:` key by the SHA-256 of the key', () => {
    const reply = store().verify(sha256Hex(OPS_KEY));
    expect(reply.principal).toMatchObject({
      keyId: 'ops',
      role: 'admin',
      tenant: null,
      namespaces: ['*'],
      rateLimit: null,
    });
  });

  it("answers a tenant admin as role admin with its tenant (analytics shows it only its tenant's data)", () => {
    expect(store().verify(sha256Hex('acme-admin-secret-0123456')).principal).toMatchObject({
      role: 'admin',
      tenant: 'acme',
    });
  });

  it.each([
    ['an unknown digest', sha256Hex('not-a-key-0123456789')],
    ['the raw key instead of its digest', OPS_KEY],
    ['the digest of the digest', sha256Hex(sha256Hex(OPS_KEY))],
    ['an empty string', ''],
    ['a non-string', 42],
    ['a truncated digest', sha256Hex(OPS_KEY).slice(0, 63)],
  ])('refuses %s', (_label, presented) => {
    expect(store().verify(presented)).toEqual({ ok: false });
  });

  it('refuses a key from its expires_at on', () => {
    const expiry = Date.parse('2030-01-01T00:00:00Z');
    expect(store().verify(sha256Hex(ALICE_KEY), expiry - 1).ok).toBe(true);
    expect(store().verify(sha256Hex(ALICE_KEY), expiry)).toEqual({ ok: false });
  });

  it('keeps no raw key, only digests', () => {
    const keys = store();
    expect(
      JSON.stringify([...(keys as unknown as { byDigest: Map<string, unknown> }).byDigest]),
    ).not.toContain(OPS_KEY);
  });

  it('reports a change (and bumps its version) only when an answer would differ', () => {
    const keys = store();
    const version = keys.version;
    expect(keys.load(parseConfig(CONFIG, { OPS_KEY }))).toBe(false);
    expect(keys.version).toBe(version);
    expect(
      keys.load(parseConfig(CONFIG.replace('requests: 600', 'requests: 60'), { OPS_KEY })),
    ).toBe(true);
    expect(keys.version).toBe(version + 1);
  });

  it('revokes a key removed from the config', () => {
    const keys = store();
    keys.load(parseConfig(CONFIG, { OPS_KEY: 'a-different-ops-key-0123' }));
    expect(keys.verify(sha256Hex(OPS_KEY))).toEqual({ ok: false });
  });

  describe('(v2) roles and tool scopes', () => {
    const ROLES = `
namespaces:
  search: { upstream: { url: "http://127.0.0.1:1/mcp" } }
  files: { upstream: { url: "http://127.0.0.1:1/mcp" } }
roles:
  analyst: { namespaces: [search], tools: { deny: ["write_*"] } }
  auditor: { admin: true }
keys:
  - { id: bob, key: "${ALICE_KEY}", roles: [analyst], namespaces: [files], tools: { deny: ["rm"] } }
  - { id: eve, key: "${OPS_KEY}", tenant: acme, roles: [auditor] }
`;

    it('answers a key with its roles resolved: namespaces joined, every tool rule set, admin', () => {
      const keys = new KeyStore(parseConfig(ROLES, {}));
      expect(keys.verify(sha256Hex(ALICE_KEY)).principal).toMatchObject({
        keyId: 'bob',
        role: 'user',
        roles: ['analyst'],
        namespaces: ['files', 'search'],
        tools: [
          { allow: ['*'], deny: ['rm'] },
          { allow: ['*'], deny: ['write_*'] },
        ],
      });
      // role admin: the analytics admin guard (principal.role === 'admin') admits it unchanged.
      expect(keys.verify(sha256Hex(OPS_KEY)).principal).toMatchObject({
        keyId: 'eve',
        role: 'admin',
        roles: ['auditor'],
        tenant: 'acme',
      });
    });

    it("reports a change when only a role's rules change: edges must drop their cached principals", () => {
      const keys = new KeyStore(parseConfig(ROLES, {}));
      const changed = keys.load(
        parseConfig(ROLES.replace('"write_*"', '"write_*", "delete_*"'), {}),
      );
      expect(changed).toBe(true);
      expect(keys.verify(sha256Hex(ALICE_KEY)).principal?.tools?.[1].deny).toEqual([
        'write_*',
        'delete_*',
      ]);
    });
  });

  it('keeps the first of two keys sharing a secret and reports the other', () => {
    const keys = new KeyStore(
      parseConfig(
        `keys:\n  - { id: first, key: "${OPS_KEY}" }\n  - { id: second, key: "${OPS_KEY}" }\n`,
        {},
      ),
    );
    expect(keys.verify(sha256Hex(OPS_KEY)).principal?.keyId).toBe('first');
    expect(keys.shadowed).toEqual(['second']);
  });
});
