import { parseConfig } from './load.js';
import { type PermissionGrant, type Permissions, resolvePermissions } from './permissions.js';

const config = parseConfig(
  `
namespaces:
  search: { upstream: { url: "http://127.0.0.1:1/mcp" } }
  files: { upstream: { url: "http://127.0.0.1:1/mcp" } }
  notes: { upstream: { url: "http://127.0.0.1:1/mcp" } }
roles:
  analyst:
    namespaces: [search, files]
    tools: { deny: ["write_*", "delete_*"] }
  reader:
    namespaces: [files]
    tools: { allow: ["read_*", "list_*"] }
  ops: { namespaces: ["*"], admin: true }
  plain: {}
  open: { tools: { allow: ["*"] } }
  twin: { namespaces: [notes], tools: { deny: ["write_*", "delete_*"] } }
`,
  {},
);

describe('resolvePermissions', () => {
  it.each<[string, PermissionGrant, Permissions]>([
    [
      'a v1 key: its own namespaces and role, no roles, no tool rules',
      { namespaces: ['search'], role: 'user' },
      { role: 'user', roles: [], namespaces: ['search'], tools: [] },
    ],
    [
      'a v1 admin key stays admin',
      { namespaces: ['*'], role: 'admin' },
      { role: 'admin', roles: [], namespaces: ['*'], tools: [] },
    ],
    [
      "a role's namespaces and tool rules",
      { roles: ['analyst'] },
      {
        role: 'user',
        roles: ['analyst'],
        namespaces: ['search', 'files'],
        tools: [{ allow: ['*'], deny: ['write_*', 'delete_*'] }],
      },
    ],
    [
      "namespaces as the union of the key's and each role's, each once",
      { namespaces: ['notes', 'files'], roles: ['analyst', 'reader'] },
      {
        role: 'user',
        roles: ['analyst', 'reader'],
        namespaces: ['notes', 'files', 'search'],
        tools: [
          { allow: ['*'], deny: ['write_*', 'delete_*'] },
          { allow: ['read_*', 'list_*'], deny: [] },
        ],
      },
    ],
    [
      "tool rules as every set to intersect: the key's own first, then each role's",
      { roles: ['analyst'], tools: { allow: ['*'], deny: ['search__*'] } },
      {
        role: 'user',
        roles: ['analyst'],
        namespaces: ['search', 'files'],
        tools: [
          { allow: ['*'], deny: ['search__*'] },
          { allow: ['*'], deny: ['write_*', 'delete_*'] },
        ],
      },
    ],
    [
      'admin from any role with admin: true, and "*" absorbing the other namespaces',
      { namespaces: ['search'], roles: ['analyst', 'ops'], role: 'user' },
      {
        role: 'admin',
        roles: ['analyst', 'ops'],
        namespaces: ['*'],
        tools: [{ allow: ['*'], deny: ['write_*', 'delete_*'] }],
      },
    ],
    [
      'rule sets that allow everything, and repeated identical sets, add nothing',
      { roles: ['plain', 'open', 'analyst', 'twin'], tools: { allow: ['*'], deny: [] } },
      {
        role: 'user',
        roles: ['plain', 'open', 'analyst', 'twin'],
        namespaces: ['search', 'files', 'notes'],
        tools: [{ allow: ['*'], deny: ['write_*', 'delete_*'] }],
      },
    ],
    [
      'roles the config does not hold grant nothing (Object.prototype names included)',
      { roles: ['ghost', 'constructor', '__proto__', 'toString'], namespaces: ['notes'] },
      { role: 'user', roles: [], namespaces: ['notes'], tools: [] },
    ],
    [
      'a role named twice counts once',
      { roles: ['reader', 'reader'] },
      {
        role: 'user',
        roles: ['reader'],
        namespaces: ['files'],
        tools: [{ allow: ['read_*', 'list_*'], deny: [] }],
      },
    ],
    ['nothing at all', {}, { role: 'user', roles: [], namespaces: [], tools: [] }],
  ])('resolves %s', (_name, grant, expected) => {
    expect(resolvePermissions(config, grant)).toEqual(expected);
  });

  it('returns plain JSON, the same after a round trip (principals cross the bus)', () => {
    const permissions = resolvePermissions(config, { roles: ['analyst', 'ops'] });
    expect(JSON.parse(JSON.stringify(permissions))).toEqual(permissions);
  });

  it("never hands out the config's own arrays (a principal is no alias of the config)", () => {
    const permissions = resolvePermissions(config, { roles: ['analyst'] });
    permissions.tools[0].deny.push('x');
    expect(config.roles.analyst.tools?.deny).toEqual(['write_*', 'delete_*']);
  });
});
