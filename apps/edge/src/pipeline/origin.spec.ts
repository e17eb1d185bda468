import { originAllowed } from './origin.js';

describe('originAllowed', () => {
  it.each<[string, string | undefined, string[] | undefined, boolean]>([
    ['no Origin (non-browser client)', undefined, undefined, true],
    ['localhost on any port by default', 'http://localhost:5173', undefined, true],
    ['localhost without a port by default', 'http://localhost', undefined, true],
    ['127.0.0.1 by default', 'http://127.0.0.1:3000', undefined, true],
    ['[::1] by default', 'http://[::1]:8080', undefined, true],
    ['https localhost by default', 'https://localhost:8443', undefined, true],
    ['a foreign origin by default', 'https://evil.example', undefined, false],
    ['a rebinding name that contains localhost', 'http://localhost.evil.example', undefined, false],
    ['a subdomain of localhost by default', 'http://evil.localhost:3000', undefined, false],
    ['"null" origin', 'null', undefined, false],
    ['a listed origin', 'https://app.example', ['https://app.example'], true],
    ['an unlisted origin when a list is set', 'http://localhost:1', ['https://app.example'], false],
  ])('%s', (_name, origin, allowed, expected) => {
    expect(originAllowed(origin, allowed)).toBe(expected);
  });
});

describe('allowed_origins patterns', () => {
  it.each<[string, string, string, boolean]>([
    // exact origins, normalised
    ['an exact origin', 'https://app.example', 'https://app.example', true],
    ['an exact origin with a trailing slash', 'https://app.example', 'https://app.example/', true],
    ['the host in another case', 'https://app.example', 'https://APP.Example', true],
    ['a pattern written in upper case', 'HTTPS://App.Example', 'https://app.example', true],
    ['the default port written out', 'https://app.example', 'https://app.example:443', true],
    ['a pattern with the default port', 'http://app.example:80', 'http://app.example', true],
    ['another port', 'https://app.example', 'https://app.example:8443', false],
    ['another scheme', 'https://app.example', 'http://app.example', false],
    ['a longer name', 'https://app.example', 'https://app.example.evil.com', false],
    ['a name that ends the same', 'https://app.example', 'https://evilapp.example', false],
    ['an origin with a path', 'https://app.example', 'https://app.example/x', false],
    ['an origin with credentials', 'https://app.example', 'https://u:p@app.example', false],
    ['"null"', 'https://app.example', 'null', false],
    ['garbage', 'https://app.example', 'not an origin', false],
    // "*" alone
    ['"*": any origin', '*', 'https://anything.example:9', true],
    ['"*": even "null"', '*', 'null', true],
    // "*" as the port
    ['a "*" port: a port', 'http://localhost:*', 'http://localhost:5173', true],
    ['a "*" port: no port', 'http://localhost:*', 'http://localhost', true],
    ['a "*" port: the host in another case', 'http://localhost:*', 'http://LOCALHOST:3000', true],
    ['a "*" port: another scheme', 'http://localhost:*', 'https://localhost:5173', false],
    ['a "*" port: a longer name', 'http://localhost:*', 'http://localhost.evil.com:80', false],
    ['a "*" port: a subdomain', 'http://localhost:*', 'http://a.localhost:80', false],
    ['a "*" port: another host', 'http://127.0.0.1:*', 'http://127.0.0.2:80', false],
    ['a "*" port on [::1]', 'http://[::1]:*', 'http://[::1]:5173', true],
    ['a "*" port on [::1]: [::2]', 'http://[::1]:*', 'http://[::2]:5173', false],
    // "*" as the first label
    ['a "*" label: a subdomain', 'https://*.example.com', 'https://app.example.com', true],
    ['a "*" label: a deeper subdomain', 'https://*.example.com', 'https://a.b.example.com', true],
    ['a "*" label: in another case', 'https://*.example.com', 'https://App.EXAMPLE.com', true],
    ['a "*" label: the name itself', 'https://*.example.com', 'https://example.com', false],
    ['a "*" label: a look-alike suffix', 'https://*.example.com', 'https://evilexample.com', false],
    [
      'a "*" label: the name inside another',
      'https://*.example.com',
      'https://example.com.evil.com',
      false,
    ],
    [
      'a "*" label: a subdomain inside another',
      'https://*.example.com',
      'https://app.example.com.evil.com',
      false,
    ],
    ['a "*" label: another scheme', 'https://*.example.com', 'http://app.example.com', false],
    ['a "*" label: a port', 'https://*.example.com', 'https://app.example.com:8443', false],
    ['a "*" label with a port', 'https://*.example.com:8443', 'https://a.example.com:8443', true],
    ['a "*" label and a "*" port', 'http://*.localhost:*', 'http://app.localhost:3000', true],
    [
      'a "*" label and a "*" port: the name',
      'http://*.localhost:*',
      'http://localhost:3000',
      false,
    ],
  ])('%s (%s, Origin %s)', (_name, pattern, origin, expected) => {
    expect(originAllowed(origin, [pattern])).toBe(expected);
  });

  it('allows what any entry of the list allows', () => {
    const allowed = ['https://app.example', 'http://localhost:*'];
    expect(originAllowed('http://localhost:4000', allowed)).toBe(true);
    expect(originAllowed('https://app.example', allowed)).toBe(true);
    expect(originAllowed('http://127.0.0.1:4000', allowed)).toBe(false);
  });
});
