import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '#common';
import { FileRuntimeKeys, KeysFileError } from './file-runtime-keys.js';
import { DuplicateKeyIdError, type RuntimeKeyRecord } from './runtime-keys.js';

// Standalone mode's store of created keys: a file beside the DuckDB file (SPEC §5 v2).

const SECRET = 'mcpgw_the-secret-never-written-0123456789';

function record(id: string, overrides: Partial<RuntimeKeyRecord> = {}): RuntimeKeyRecord {
  return {
    id,
    key_sha256: sha256Hex(`${SECRET}-${id}`),
    user: `${id}@example.com`,
    tenant: null,
    roles: [],
    namespaces: ['*'],
    tools: null,
    inherited_tools: [],
    rate_limit: { requests: 10, per: '1m' },
    expires_at: null,
    created_at: '2026-01-01T00:00:00.000Z',
    created_by: 'ops',
    ...overrides,
  };
}

describe('FileRuntimeKeys', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-keys-file-'));
    path = join(dir, 'keys.json');
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts empty without a file, and delivers the set on watch and after each change', async () => {
    const keys = new FileRuntimeKeys(path);
    const seen: string[][] = [];
    await keys.watch((records) => seen.push(records.map((r) => r.id)));
    await keys.create(record('a'));
    await keys.create(record('b'));
    expect(await keys.revoke('a')).toBe(true);
    expect(seen).toEqual([[], ['a'], ['a', 'b'], ['b']]);
  });

  it('keeps created and revoked keys across a new instance (a restart)', async () => {
    const first = new FileRuntimeKeys(path);
    await first.create(record('a', { tenant: 'acme', expires_at: '2030-01-01T00:00:00.000Z' }));
    await first.create(record('b'));
    await first.revoke('b');
    const second = new FileRuntimeKeys(path);
    expect(second.list()).toEqual([
      record('a', { tenant: 'acme', expires_at: '2030-01-01T00:00:00.000Z' }),
    ]);
    expect(await second.get('a')).toMatchObject({ id: 'a' });
    expect(await second.get('b')).toBeUndefined();
  });

  it('writes the file readable by its owner only, atomically, with digests and never a secret', async () => {
    const keys = new FileRuntimeKeys(path);
    await keys.create(record('a'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await keys.create(record('b'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(SECRET);
    expect(text).toContain(sha256Hex(`${SECRET}-a`));
    // No temporary file is left beside it.
    expect(readdirSync(dir)).toEqual(['keys.json']);
  });

  it('refuses an id that exists, and answers false for revoking an unknown one', async () => {
    const keys = new FileRuntimeKeys(path);
    await keys.create(record('a'));
    await expect(keys.create(record('a'))).rejects.toBeInstanceOf(DuplicateKeyIdError);
    expect(await keys.revoke('nobody')).toBe(false);
  });

  it.each([
    ['not JSON', '{ nope'],
    ['not a keys file', '{"keys": "all of them"}'],
    ['a record that is not a key', '{"version": 1, "keys": [{"id": "a"}]}'],
  ])('refuses to start over a file that is %s, naming it', (_name, content) => {
    writeFileSync(path, content);
    expect(() => new FileRuntimeKeys(path)).toThrow(KeysFileError);
    expect(() => new FileRuntimeKeys(path)).toThrow(path);
  });
});
