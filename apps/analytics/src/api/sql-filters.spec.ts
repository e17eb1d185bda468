import { filterConditions, SqlParams } from './sql-filters.js';
import { scopeToPrincipal } from './tenant-scope.js';
import type { Principal } from '#common';

describe('filterConditions', () => {
  it('is TRUE without filters', () => {
    const params = new SqlParams();
    expect(filterConditions({}, params)).toBe('TRUE');
    expect(params.values).toEqual([]);
  });

  it('binds every value as a parameter, never into the SQL text', () => {
    const hostile = "x'; DROP TABLE events; --";
    const params = new SqlParams();
    const sql = filterConditions(
      {
        from: new Date('2025-01-01T00:00:00Z'),
        to: new Date('2025-01-02T00:00:00Z'),
        namespace: hostile,
        server: hostile,
        tenant: hostile,
        keyId: hostile,
        tool: hostile,
      },
      params,
    );
    expect(sql).toBe(
      'ts >= $1::TIMESTAMPTZ AND ts < $2::TIMESTAMPTZ AND namespace = $3 AND server = $4 AND tenant = $5 AND key_id = $6 AND tool = $7',
    );
    expect(params.values).toEqual([
      '2025-01-01T00:00:00.000Z',
      '2025-01-02T00:00:00.000Z',
      ...Array<string>(5).fill(hostile),
    ]);
  });
});

describe('scopeToPrincipal', () => {
  const admin: Principal = {
    keyId: 'ops',
    user: null,
    tenant: null,
    role: 'admin',
    namespaces: ['*'],
    rateLimit: null,
    expiresAt: null,
  };
  const tenantAdmin: Principal = { ...admin, keyId: 'acme-ops', tenant: 'acme' };

  it.each([
    [
      'a global admin keeps the filters as asked',
      admin,
      { tenant: 'globex' },
      { tenant: 'globex' },
    ],
    ['a global admin without tenant filter sees all', admin, {}, {}],
    [
      'a tenant admin gets its tenant forced',
      tenantAdmin,
      { namespace: 'a' },
      { namespace: 'a', tenant: 'acme' },
    ],
    ['a tenant admin may name its own tenant', tenantAdmin, { tenant: 'acme' }, { tenant: 'acme' }],
  ])('%s', (_name, principal, filters, expected) => {
    expect(scopeToPrincipal(filters, principal)).toEqual(expected);
  });

  it('refuses a tenant admin another tenant with 403', () => {
    expect(() => scopeToPrincipal({ tenant: 'globex' }, tenantAdmin)).toThrow(
      expect.objectContaining({ status: 403, code: 'forbidden' }) as Error,
    );
  });
});
