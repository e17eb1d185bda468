import { VerifyCache } from './verify-cache.js';
import { presentedKey } from '#common';

describe('VerifyCache', () => {
  it('forgets an answer after its ttl', () => {
    let now = 0;
    const cache = new VerifyCache(10_000, 10, () => now);
    cache.set('a', { ok: false });
    now = 9_999;
    expect(cache.get('a')).toEqual({ ok: false });
    now = 10_000;
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps at most maxEntries, dropping the least recently used', () => {
    const cache = new VerifyCache(10_000, 2, () => 0);
    cache.set('a', { ok: false });
    cache.set('b', { ok: false });
    cache.get('a');
    cache.set('c', { ok: false });
    expect(cache.size).toBe(2);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
  });
});

describe('presentedKey', () => {
  it.each([
    ['a bearer token', { authorization: 'Bearer k-123' }, 'k-123'],
    ['a lower-case scheme', { authorization: 'bearer k-123' }, 'k-123'],
    ['X-API-Key', { 'x-api-key': 'k-456' }, 'k-456'],
    [
      'another scheme, falling back to X-API-Key',
      { authorization: 'Basic abc', 'x-api-key': 'k-456' },
      'k-456',
    ],
    ['an empty bearer', { authorization: 'Bearer ' }, undefined],
    ['nothing', {}, undefined],
  ])('reads %s', (_name, headers, expected) => {
    expect(presentedKey(headers)).toBe(expected);
  });
});
