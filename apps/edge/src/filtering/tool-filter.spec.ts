import { ToolFilter } from './tool-filter.js';

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
