import { parseConfig } from '#common';
import { parseNewKey } from './new-key.js';

const CONFIG = parseConfig(
  `
namespaces:
  search: { upstream: { url: "http://127.0.0.1:1/mcp" } }
roles:
  analyst: { namespaces: ["search"] }
`,
  {},
);
const NOW = Date.parse('2026-06-01T00:00:00Z');

describe('parseNewKey', () => {
  it('accepts a full key, with the defaults of a file key', () => {
    expect(
      parseNewKey(
        {
          id: 'bob@acme.example',
          user: 'bob',
          tenant: 'acme',
          roles: ['analyst'],
          namespaces: ['search', '*'],
          tools: { deny: ['delete_*'] },
          rate_limit: { requests: 10, per: '1m' },
          expires_at: '2027-01-01T00:00:00+02:00',
        },
        CONFIG,
        NOW,
      ),
    ).toEqual({
      ok: true,
      key: {
        id: 'bob@acme.example',
        user: 'bob',
        tenant: 'acme',
        roles: ['analyst'],
        namespaces: ['search', '*'],
        tools: { allow: ['*'], deny: ['delete_*'] },
        rate_limit: { requests: 10, per: '1m' },
        expires_at: '2027-01-01T00:00:00+02:00',
      },
    });
    expect(parseNewKey({ user: 'u' }, CONFIG, NOW)).toEqual({
      ok: true,
      key: { user: 'u', roles: [], namespaces: [] },
    });
  });

  it.each<[string, unknown, string]>([
    ['not an object', ['user'], 'the body must be a JSON object'],
    ['nothing', undefined, 'the body must be a JSON object'],
    ['no user', {}, 'user: required'],
    ['a user that is not text', { user: 7 }, 'user: must be a string'],
    ['an empty user', { user: '' }, 'user: must not be empty'],
    ['a bad id', { user: 'u', id: 'a b' }, 'id: must be 1-128 characters'],
    ['a secret', { user: 'u', key: 'x'.repeat(20) }, 'key: unknown field'],
    ['a digest', { user: 'u', key_sha256: 'ab' }, 'key_sha256: unknown field'],
    ['a v1 role field', { user: 'u', role: 'admin' }, 'role: unknown field'],
    ['an unknown tools field', { user: 'u', tools: { hide: [] } }, 'tools.hide: unknown field'],
    ['an unknown role', { user: 'u', roles: ['analyst', 'root'] }, 'roles.1: unknown role "root"'],
    ['a role name of Object', { user: 'u', roles: ['constructor'] }, 'roles.0: unknown role'],
    [
      'an unknown namespace',
      { user: 'u', namespaces: ['files'] },
      'namespaces.0: unknown namespace "files"',
    ],
    [
      'a bad duration',
      { user: 'u', rate_limit: { requests: 1, per: '1 min' } },
      'rate_limit.per: invalid duration "1 min"',
    ],
    ['a zero rate', { user: 'u', rate_limit: { requests: 0, per: '1m' } }, 'rate_limit.requests'],
    [
      'a date without time',
      { user: 'u', expires_at: '2027-01-01' },
      'expires_at: must be an ISO 8601 date-time',
    ],
    [
      'a past expiry',
      { user: 'u', expires_at: '2026-05-31T23:59:59Z' },
      'expires_at: must be in the future',
    ],
  ])('refuses %s, naming the field', (_name, input, message) => {
    const result = parseNewKey(input, CONFIG, NOW);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain(message);
  });

  it('lists every problem at once', () => {
    const result = parseNewKey({ roles: ['x'], extra: 1 }, CONFIG, NOW);
    expect(!result.ok && result.message.split('; ').sort()).toEqual([
      'extra: unknown field',
      'user: required',
    ]);
  });
});
