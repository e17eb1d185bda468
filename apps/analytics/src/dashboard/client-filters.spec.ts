import {
  apiParams,
  DEFAULT_RANGE,
  filtersQuery,
  isFiltered,
  parseFilters,
  withChange,
} from './client/filters.js';

// The dashboard keeps its filters in the URL: a link must come back as the page it was.

const NONE = { server: null, namespace: null, tool: null, key_id: null, tenant: null };

describe('the dashboard filters in the URL', () => {
  it.each([
    ['no query', '', { range: DEFAULT_RANGE, ...NONE }],
    ['a range', '?range=24h', { range: '24h', ...NONE }],
    [
      'a tool of a namespace',
      '?namespace=search&tool=web',
      { range: DEFAULT_RANGE, ...NONE, namespace: 'search', tool: 'web' },
    ],
    [
      'a virtual server',
      '?server=assistant&range=24h',
      { range: '24h', ...NONE, server: 'assistant' },
    ],
    ['an unknown range', '?range=2y', { range: DEFAULT_RANGE, ...NONE }],
    ['an empty value', '?tool=&key_id=alice', { range: DEFAULT_RANGE, ...NONE, key_id: 'alice' }],
    [
      'a fragment of an older link',
      '#range=7d&tenant=globex',
      { range: '7d', ...NONE, tenant: 'globex' },
    ],
    ['a parameter the page does not know', '?secret=1', { range: DEFAULT_RANGE, ...NONE }],
  ])('reads %s', (_name, query, expected) => {
    expect(parseFilters(query)).toEqual(expected);
  });

  it('writes what it reads, leaving the defaults out', () => {
    const filters = withChange(parseFilters(''), {
      namespace: 'a b/c',
      tool: '<img src=x>',
      range: '7d',
    });
    const query = filtersQuery(filters);
    expect(query).toBe('?range=7d&namespace=a+b%2Fc&tool=%3Cimg+src%3Dx%3E');
    expect(parseFilters(query)).toEqual(filters);
    expect(filtersQuery(parseFilters(''))).toBe('');
    expect(filtersQuery(withChange(filters, { namespace: null, tool: null, range: '1h' }))).toBe(
      '',
    );
  });

  it('asks the API with the filters, never the range name', () => {
    const filters = parseFilters('?range=24h&key_id=alice&tool=web');
    expect(isFiltered(filters)).toBe(true);
    expect(isFiltered(parseFilters('?range=24h'))).toBe(false);
    expect(apiParams(filters, '2025-01-01T00:00:00.000Z', { limit: '10' }).toString()).toBe(
      'from=2025-01-01T00%3A00%3A00.000Z&tool=web&key_id=alice&limit=10',
    );
    expect(apiParams(null, '2025-01-01T00:00:00.000Z').toString()).toBe(
      'from=2025-01-01T00%3A00%3A00.000Z',
    );
  });

  it('keeps a virtual server in the link and asks the API with it, before the namespace', () => {
    const filters = withChange(parseFilters('?namespace=search'), { server: 'assistant' });
    expect(isFiltered(withChange(parseFilters(''), { server: 'assistant' }))).toBe(true);
    const query = filtersQuery(filters);
    expect(query).toBe('?server=assistant&namespace=search');
    expect(parseFilters(query)).toEqual(filters);
    expect(apiParams(filters, '2025-01-01T00:00:00.000Z').toString()).toBe(
      'from=2025-01-01T00%3A00%3A00.000Z&server=assistant&namespace=search',
    );
    expect(filtersQuery(withChange(filters, { server: null }))).toBe('?namespace=search');
  });
});
