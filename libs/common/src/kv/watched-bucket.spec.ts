import { kvKeyOf, textOfKvKey } from './watched-bucket.js';

describe('text keys in a key-value bucket', () => {
  it.each([
    ['alice', 'alice'],
    ['key-0a1b_C', 'key-0a1b_C'],
    ['bob@acme.example', 'bob=40acme=2Eexample'],
    ['.leading.dot.', '=2Eleading=2Edot=2E'],
    ['a..b', 'a=2E=2Eb'],
    ['search/web_search', 'search=2Fweb_search'],
    ['ns/météo', 'ns=2Fm=C3=A9t=C3=A9o'],
    ['a=41', 'a=3D41'],
  ])('stores %s under a valid KV key, %s, and reads it back', (text, key) => {
    expect(kvKeyOf(text)).toBe(key);
    // KV keys: [-/_=.A-Za-z0-9]; `.` separates tokens, so none is used.
    expect(kvKeyOf(text)).toMatch(/^[-_=A-Za-z0-9]+$/);
    expect(textOfKvKey(kvKeyOf(text))).toBe(text);
  });
});
