import { parseConfig } from '#common';
import { ToolFilter, toolFilterFor } from './tool-filter.js';

describe('ToolFilter', () => {
  it.each([
    ['allow-all lets everything through', { allow: ['*'], deny: [] }, 'anything', true],
    ['deny wins over allow', { allow: ['*'], deny: ['delete_*'] }, 'delete_file', false],
    ['names are case-sensitive', { allow: ['*'], deny: ['delete_*'] }, 'Delete_file', true],
    ['allow is exact, not a prefix', { allow: ['read'], deny: [] }, 'read_file', false],
    ['glob * matches a run', { allow: ['read_*'], deny: [] }, 'read_multiple_files', true],
    ['glob ? matches one character', { allow: ['get-su?'], deny: [] }, 'get-sum', true],
    ['regex metacharacters are literal', { allow: ['a.b'], deny: [] }, 'axb', false],
    ['nothing allowed when allow is empty', { allow: [], deny: [] }, 'echo', false],
  ])('%s', (_name, tools, name, allowed) => {
    expect(new ToolFilter(tools).allows(name)).toBe(allowed);
  });

  it('refuses a tool name that is not a string', () => {
    expect(new ToolFilter({ allow: ['*'], deny: [] }).allows({ toString: () => 'echo' })).toBe(
      false,
    );
  });

  it('filters a tools/list result and keeps nextCursor', () => {
    const result = { tools: [{ name: 'read_file' }, { name: 'write_file' }], nextCursor: 'c2' };
    expect(new ToolFilter({ allow: ['read_*'], deny: [] }).filterListResult(result)).toBe(true);
    expect(result).toEqual({ tools: [{ name: 'read_file' }], nextCursor: 'c2' });
  });
});

describe('ToolFilter over several rule sets (namespace, key, roles)', () => {
  const namespace = { allow: ['*'], deny: ['get-env'] };
  it.each<[string, Array<{ allow: string[]; deny: string[] }>, string, boolean]>([
    ['what every set allows', [{ allow: ['*'], deny: ['write_*'] }], 'read_file', true],
    [
      'a tool the namespace hides, whatever the scope',
      [{ allow: ['*'], deny: [] }],
      'get-env',
      false,
    ],
    ["a tool a role's deny hides", [{ allow: ['*'], deny: ['write_*'] }], 'write_file', false],
    ["a tool outside a role's allow", [{ allow: ['read_*'], deny: [] }], 'write_file', false],
    [
      'a tool one of two sets hides',
      [
        { allow: ['*'], deny: ['search__*'] },
        { allow: ['*'], deny: ['write_*'] },
      ],
      'search__query',
      false,
    ],
    [
      'a tool one set allows and another does not (intersection, not union)',
      [
        { allow: ['read_*'], deny: [] },
        { allow: ['write_*'], deny: [] },
      ],
      'write_file',
      false,
    ],
  ])('allows %s: %s', (_name, scopes, name, allowed) => {
    expect(new ToolFilter(namespace, ...scopes).allows(name)).toBe(allowed);
  });

  it('allows everything only when every set does', () => {
    const all = { allow: ['*'], deny: [] };
    expect(new ToolFilter(all, all).allowsEverything).toBe(true);
    expect(new ToolFilter(all, { allow: ['*'], deny: ['x'] }).allowsEverything).toBe(false);
  });

  it('filters a list by every set', () => {
    const result = { tools: [{ name: 'read_a' }, { name: 'write_a' }, { name: 'get-env' }] };
    new ToolFilter(namespace, { allow: ['*'], deny: ['write_*'] }).filterListResult(result);
    expect(result.tools).toEqual([{ name: 'read_a' }]);
  });
});

describe('toolFilterFor', () => {
  const config = parseConfig(
    'namespaces:\n  ns: { upstream: { url: "http://127.0.0.1:1/mcp" }, tools: { deny: [get-env] } }\n',
    {},
  );
  const ns = config.namespaces.ns;
  const scope = [{ allow: ['*'], deny: ['write_*'] }];

  it("is the namespace's own filter for a principal without a scope", () => {
    expect(toolFilterFor(ns, { tools: [] })).toBe(toolFilterFor(ns));
    expect(toolFilterFor(ns, {})).toBe(toolFilterFor(ns));
  });

  it('intersects the namespace filter with the principal scope', () => {
    const filter = toolFilterFor(ns, { tools: scope });
    expect(filter.allows('write_a')).toBe(false);
    expect(filter.allows('get-env')).toBe(false);
    expect(filter.allows('read_a')).toBe(true);
  });

  it('compiles once per namespace config and scope: principals with equal scopes share it', () => {
    const first = toolFilterFor(ns, { tools: scope });
    expect(toolFilterFor(ns, { tools: scope })).toBe(first);
    expect(toolFilterFor(ns, { tools: JSON.parse(JSON.stringify(scope)) as typeof scope })).toBe(
      first,
    );
    expect(toolFilterFor(ns, { tools: [{ allow: ['*'], deny: ['rm'] }] })).not.toBe(first);
  });

  it('is compiled anew for a new config generation', () => {
    const next = parseConfig(
      'namespaces:\n  ns: { upstream: { url: "http://127.0.0.1:1/mcp" }, tools: { deny: [echo] } }\n',
      {},
    ).namespaces.ns;
    const filter = toolFilterFor(next, { tools: scope });
    expect(filter).not.toBe(toolFilterFor(ns, { tools: scope }));
    expect(filter.allows('echo')).toBe(false);
    expect(filter.allows('get-env')).toBe(true);
  });
});
