import { idOfKvKey, kvKeyOf } from './kv-runtime-keys.js';

describe('key ids in the key-value bucket', () => {
  it.each([
    ['alice', 'alice'],
    ['key-0a1b_C', 'key-0a1b_C'],
    ['bob@acme.example', 'bob=40acme=2Eexample'],
    ['.leading.dot.', '=2Eleading=2Edot=2E'],
    ['a..b', 'a=2E=2Eb'],
  ])('stores %s under a valid KV key, %s, and reads it back', (id, key) => {
    expect(kvKeyOf(id)).toBe(key);
    // KV keys: [-/_=.A-Za-z0-9]; `.` separates tokens, so none is used.
    expect(kvKeyOf(id)).toMatch(/^[-_=A-Za-z0-9]+$/);
    expect(idOfKvKey(kvKeyOf(id))).toBe(id);
  });
});
