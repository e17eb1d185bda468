import { configAdvice } from './advice.js';
import { gatewayConfigSchema } from './schema.js';

const config = (keys: unknown[]) =>
  gatewayConfigSchema.parse({
    namespaces: {
      a: { upstream: { url: 'http://127.0.0.1:1/mcp' } },
      b: { upstream: { url: 'http://127.0.0.1:2/mcp' } },
    },
    servers: { work: { namespaces: ['a', 'b'] }, any: { namespaces: ['*'] } },
    roles: { readers: { namespaces: ['a'] } },
    keys,
  });

describe('configAdvice', () => {
  it('names a key that may use a virtual server but none of its members', () => {
    const advice = configAdvice(
      config([{ id: 'only-server', key: 'k'.repeat(20), namespaces: ['work'] }]),
    );
    expect(advice).toHaveLength(1);
    expect(advice[0]).toMatch(
      /key only-server may use virtual server work but none of its members \(a, b\)/,
    );
  });

  it.each([
    ['a member', { namespaces: ['work', 'b'] }],
    ['a member through a role', { namespaces: ['work'], roles: ['readers'] }],
    ['every namespace', { namespaces: ['*'] }],
  ])('says nothing of a key holding %s', (_label, fields) => {
    expect(configAdvice(config([{ id: 'k1', key: 'k'.repeat(20), ...fields }]))).toEqual([]);
  });

  it('names a key of a "*" server that may use no namespace of its own', () => {
    expect(
      configAdvice(config([{ id: 'k2', key: 'k'.repeat(20), namespaces: ['any'] }])),
    ).toHaveLength(1);
    expect(
      configAdvice(config([{ id: 'k3', key: 'k'.repeat(20), namespaces: ['any', 'a'] }])),
    ).toEqual([]);
  });
});
