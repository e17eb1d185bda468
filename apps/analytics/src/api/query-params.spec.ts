import { BadParameterError, encodeCursor, FILTER_PARAMETERS, QueryParams } from './query-params.js';

function badParameter(fn: () => unknown): BadParameterError {
  try {
    fn();
  } catch (error) {
    if (error instanceof BadParameterError) return error;
    throw error;
  }
  throw new Error('expected a BadParameterError');
}

describe('QueryParams', () => {
  it('reads every common filter', () => {
    const params = new QueryParams(
      {
        from: '2025-01-01',
        to: '2025-01-02T00:00:00+01:00',
        namespace: 'search',
        server: 'assistant',
        tenant: 'acme',
        key_id: 'alice',
        tool: 'web',
      },
      FILTER_PARAMETERS,
    );
    expect(params.filters()).toEqual({
      from: new Date('2025-01-01T00:00:00Z'),
      to: new Date('2025-01-01T23:00:00Z'),
      namespace: 'search',
      server: 'assistant',
      tenant: 'acme',
      keyId: 'alice',
      tool: 'web',
    });
  });

  it('gives undefined filters when none are set', () => {
    expect(new QueryParams({}, FILTER_PARAMETERS).filters()).toEqual({});
  });

  it.each([
    ['from', { from: 'yesterday' }],
    ['from', { from: '2025-02-30' }],
    ['to', { to: '2025-01-01T00:00:00' }],
    ['from', { from: '2025-01-02', to: '2025-01-01' }],
    ['from', { from: '2025-01-01', to: '2025-01-01' }],
    ['namespace', { namespace: '' }],
    ['server', { server: '' }],
    ['server', { server: 'x'.repeat(257) }],
    ['server', { server: ['a', 'b'] }],
    ['tool', { tool: 'x'.repeat(300) }],
    ['tenant', { tenant: ['a', 'b'] }],
    ['tenat', { tenat: 'acme' }],
  ])('names "%s" when it is bad', (name, query) => {
    const error = badParameter(() => new QueryParams(query, FILTER_PARAMETERS).filters());
    expect(error.parameter).toBe(name);
    expect(error.message).toContain(`"${name}"`);
    expect(error.status).toBe(400);
  });

  it.each([
    ['0', false],
    ['1', true],
    ['1000', true],
    ['1001', false],
    ['ten', false],
    ['-1', false],
    ['1.5', false],
  ])('limit=%s valid: %s', (value, ok) => {
    const read = () =>
      new QueryParams({ limit: value }, ['limit']).integer('limit', {
        min: 1,
        max: 1000,
        default: 50,
      });
    if (ok) expect(read()).toBe(Number(value));
    else expect(badParameter(read).parameter).toBe('limit');
  });

  it('checks bucket against its choices', () => {
    expect(new QueryParams({}, ['bucket']).oneOf('bucket', ['1m', '1h'], '1h')).toBe('1h');
    expect(
      badParameter(() =>
        new QueryParams({ bucket: '5m' }, ['bucket']).oneOf('bucket', ['1m', '1h'], '1h'),
      ).message,
    ).toContain('bucket');
  });

  it('reads before as a time or as a next_before cursor', () => {
    expect(
      new QueryParams({ before: '2025-01-01T00:00:00Z' }, ['before']).cursor('before'),
    ).toEqual({
      tsMicros: BigInt(Date.UTC(2025, 0, 1)) * 1000n,
    });
    const cursor = encodeCursor({ tsMicros: 1735689600000123n, id: 'evt|7' });
    expect(new QueryParams({ before: cursor }, ['before']).cursor('before')).toEqual({
      tsMicros: 1735689600000123n,
      id: 'evt|7',
    });
    expect(
      badParameter(() => new QueryParams({ before: 'nope!' }, ['before']).cursor('before'))
        .parameter,
    ).toBe('before');
  });

  it.each([
    ['a time past year 9999', '253402300800000000|evt'],
    ['a time past the 64-bit range', '99999999999999999999|evt'],
    ['a negative time', '-1|evt'],
    ['an id too long to be ours', `1|${'x'.repeat(500)}`],
  ])('refuses a cursor with %s (400, never a failed query)', (_name, raw) => {
    const before = Buffer.from(raw).toString('base64url');
    expect(
      badParameter(() => new QueryParams({ before }, ['before']).cursor('before')).parameter,
    ).toBe('before');
  });
});
