import { type AdminGrant, ConfigStore, parseConfig, sha256Hex } from '#common';
import { pino } from 'pino';
import { durationText } from './grant-bounds.js';
import { KeyAdmin } from './key-admin.js';
import {
  DuplicateKeyIdError,
  KeyStoreUnavailableError,
  type RuntimeKeyRecord,
  type RuntimeKeys,
} from './runtime-keys.js';

/** The store's contract in memory; `down` makes every call fail as an unreachable bucket does. */
class MemoryRuntimeKeys implements RuntimeKeys {
  records = new Map<string, RuntimeKeyRecord>();
  down = false;
  watch = () => Promise.resolve();
  list = () => [...this.records.values()];
  get = (id: string) => this.call(() => this.records.get(id));
  create = (record: RuntimeKeyRecord) =>
    this.call(() => {
      if (this.records.has(record.id)) throw new DuplicateKeyIdError(record.id);
      this.records.set(record.id, record);
    });
  revoke = (id: string) => this.call(() => this.records.delete(id));
  close = () => Promise.resolve();

  private call<T>(work: () => T): Promise<T> {
    if (this.down)
      return Promise.reject(new KeyStoreUnavailableError('the key store is unavailable'));
    return Promise.resolve().then(work);
  }
}

const config = new ConfigStore(
  parseConfig(
    `
namespaces:
  rec: { upstream: { url: "http://127.0.0.1:9/rec" } }
  rec2: { upstream: { url: "http://127.0.0.1:9/rec2" } }
roles:
  ops: { admin: true }
  reader: { namespaces: ["rec"], tools: { allow: ["read_*"] } }
keys:
  - { id: root, key: "root-key-0123456789abcdef", role: admin }
  - { id: acme-file, key: "acme-file-key-0123456789", tenant: acme, rate_limit: { requests: 5, per: 90s } }
`,
    {},
  ),
);
const ROOT = { keyId: 'root', user: null, tenant: null };
/** A tenant admin as the analytics service describes it: what its own key may do. */
const ACME_GRANT: AdminGrant = {
  namespaces: ['rec'],
  roles: ['reader'],
  tools: [{ allow: ['*'], deny: ['secret_*'] }],
  rateLimit: { requests: 100, perMs: 60_000 },
  expiresAt: null,
};
const ACME = { keyId: 'acme-ops', user: 'ops@acme', tenant: 'acme', grant: ACME_GRANT };
const DIGEST = sha256Hex('mcpgw_secret');
const NOW = Date.parse('2026-06-01T00:00:00Z');

describe('KeyAdmin', () => {
  let store: MemoryRuntimeKeys;
  let admin: KeyAdmin;

  beforeEach(() => {
    store = new MemoryRuntimeKeys();
    admin = new KeyAdmin(config, store, pino({ level: 'silent' }), () => NOW);
  });

  it('creates a key in a tenant admin’s tenant, recording who and when', async () => {
    const reply = await admin.create({
      actor: ACME,
      input: { id: 'bot', user: 'bot' },
      keySha256: DIGEST,
    });
    expect(reply).toMatchObject({ ok: true, key: { id: 'bot', tenant: 'acme', source: 'api' } });
    expect(store.records.get('bot')).toEqual({
      id: 'bot',
      key_sha256: DIGEST,
      user: 'bot',
      tenant: 'acme',
      roles: [],
      namespaces: [],
      tools: null,
      inherited_tools: [{ allow: ['*'], deny: ['secret_*'] }],
      rate_limit: { requests: 100, per: '1m' },
      expires_at: null,
      created_at: '2026-06-01T00:00:00.000Z',
      created_by: 'acme-ops',
    });
  });

  it('lets a global admin create any key, unbounded by its own', async () => {
    const reply = await admin.create({
      actor: ROOT,
      input: { id: 'wide', user: 'u', roles: ['ops'], namespaces: ['*'] },
      keySha256: DIGEST,
    });
    expect(reply).toMatchObject({ ok: true, key: { admin: true, inherited_tools: [] } });
    expect(store.records.get('wide')).toMatchObject({ namespaces: ['*'], rate_limit: null });
  });

  it('creates a tenant admin’s key within its own grant, inheriting its tool scope and expiry', async () => {
    const expiresAt = NOW + 86_400_000;
    const reply = await admin.create({
      actor: { ...ACME, grant: { ...ACME.grant, expiresAt } },
      input: {
        id: 'bot',
        user: 'bot',
        roles: ['reader'],
        namespaces: ['rec'],
        tools: { deny: ['write_*'] },
        rate_limit: { requests: 10, per: '10s' },
      },
      keySha256: DIGEST,
    });
    expect(reply).toMatchObject({
      ok: true,
      key: {
        tools: { allow: ['*'], deny: ['write_*'] },
        inherited_tools: [{ allow: ['*'], deny: ['secret_*'] }],
        rate_limit: { requests: 10, per: '10s' },
        expires_at: new Date(expiresAt).toISOString(),
      },
    });
  });

  it.each<[string, Record<string, unknown>, Partial<AdminGrant>, string]>([
    ['every namespace (*)', { namespaces: ['*'] }, {}, 'namespaces.0: "*" needs an admin'],
    [
      'a namespace it may not use',
      { namespaces: ['rec', 'rec2'] },
      {},
      'namespaces.1: "rec2" is not a namespace this admin may use',
    ],
    ['a role it does not hold', { roles: ['ops'] }, {}, 'roles.0: "ops" is not a role'],
    [
      'a higher rate limit',
      { rate_limit: { requests: 1000, per: '1m' } },
      {},
      'rate_limit: 1000 per 1m is more than this admin’s own 100 per 1m',
    ],
    [
      'a higher rate in a shorter window',
      { rate_limit: { requests: 10, per: '1s' } },
      {},
      'rate_limit: 10 per 1s',
    ],
    [
      'more than rate_limits.default when the admin has no limit of its own',
      { rate_limit: { requests: 601, per: '1m' } },
      { rateLimit: null },
      'own 600 per 1m',
    ],
    [
      'an expiry after the admin’s own',
      { expires_at: '2026-07-01T00:00:00Z' },
      { expiresAt: NOW + 60_000 },
      'expires_at: after this admin’s own key expires (2026-06-01T00:01:00.000Z)',
    ],
  ])(
    'refuses a tenant admin a key with %s (exceeds_grant)',
    async (_name, input, grant, message) => {
      const reply = await admin.create({
        actor: { ...ACME, grant: { ...ACME.grant, ...grant } },
        input: { user: 'u', ...input },
        keySha256: DIGEST,
      });
      expect(reply).toEqual({
        ok: false,
        code: 'exceeds_grant',
        message: expect.stringContaining(message) as string,
      });
      expect(store.records.size).toBe(0);
    },
  );

  it('refuses a tenant admin whose own grant the request does not carry', async () => {
    const { grant: _grant, ...bare } = ACME;
    expect(
      await admin.create({ actor: bare, input: { user: 'u' }, keySha256: DIGEST }),
    ).toMatchObject({ ok: false, code: 'exceeds_grant' });
  });

  it.each<[string, Parameters<KeyAdmin['create']>[0], string, string]>([
    [
      'another tenant, for a tenant admin',
      { actor: ACME, input: { user: 'u', tenant: 'globex' }, keySha256: DIGEST },
      'forbidden',
      'tenant "acme"',
    ],
    [
      'a file key’s id',
      { actor: ROOT, input: { id: 'acme-file', user: 'u' }, keySha256: DIGEST },
      'conflict',
      'config file',
    ],
    [
      'a request without an actor',
      { input: { user: 'u' }, keySha256: DIGEST } as never,
      'bad_request',
      'malformed',
    ],
    [
      'a digest that is not one',
      { actor: ROOT, input: { user: 'u' }, keySha256: 'secret' },
      'bad_request',
      'malformed',
    ],
  ])('refuses to create for %s', async (_name, request, code, message) => {
    const reply = await admin.create(request);
    expect(reply).toEqual({ ok: false, code, message: expect.stringContaining(message) as string });
    expect(store.records.size).toBe(0);
  });

  it('answers unavailable when the store is down or absent, and conflict for a taken id', async () => {
    const request = { actor: ROOT, input: { id: 'a', user: 'u' }, keySha256: DIGEST };
    expect(await admin.create(request)).toMatchObject({ ok: true });
    expect(await admin.create(request)).toMatchObject({ ok: false, code: 'conflict' });
    store.down = true;
    expect(await admin.create({ ...request, input: { user: 'u' } })).toMatchObject({
      ok: false,
      code: 'unavailable',
    });
    expect(await admin.revoke({ actor: ROOT, id: 'a' })).toMatchObject({
      ok: false,
      code: 'unavailable',
    });
    const none = new KeyAdmin(config, null, pino({ level: 'silent' }), () => NOW);
    expect(await none.create(request)).toMatchObject({ ok: false, code: 'unavailable' });
    expect(none.list({ actor: ROOT })).toMatchObject({
      ok: true,
      keys: [{ id: 'root' }, { id: 'acme-file' }],
    });
  });

  it('lists a tenant admin’s tenant only, file keys in the config’s notation', async () => {
    await admin.create({
      actor: ROOT,
      input: { id: 'global', user: 'u', roles: ['ops'] },
      keySha256: DIGEST,
    });
    const root = admin.list({ actor: ROOT });
    expect(root.ok && root.keys.map((key) => [key.id, key.source, key.admin])).toEqual([
      ['root', 'file', true],
      ['acme-file', 'file', false],
      ['global', 'api', true],
    ]);
    const acme = admin.list({ actor: ACME });
    expect(acme).toEqual({
      ok: true,
      keys: [expect.objectContaining({ id: 'acme-file', rate_limit: { requests: 5, per: '90s' } })],
    });
  });

  it('revokes created keys only, and only its tenant’s for a tenant admin', async () => {
    await admin.create({ actor: ROOT, input: { id: 'global', user: 'u' }, keySha256: DIGEST });
    expect(await admin.revoke({ actor: ACME, id: 'global' })).toMatchObject({ code: 'not_found' });
    expect(await admin.revoke({ actor: ACME, id: 'root' })).toMatchObject({ code: 'not_found' });
    expect(await admin.revoke({ actor: ACME, id: 'acme-file' })).toMatchObject({
      code: 'conflict',
    });
    expect(await admin.revoke({ actor: ROOT, id: 'global' })).toEqual({ ok: true });
    expect(await admin.revoke({ actor: ROOT, id: 'global' })).toMatchObject({ code: 'not_found' });
  });
});

describe('durationText', () => {
  it.each([
    [500, '500ms'],
    [1_500, '1500ms'],
    [30_000, '30s'],
    [90_000, '90s'],
    [60_000, '1m'],
    [3_600_000, '1h'],
    [86_400_000 * 7, '7d'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });
});
