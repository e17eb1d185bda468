import { originAllowed } from './origin.js';

describe('originAllowed', () => {
  it.each([
    ['no Origin (non-browser client)', undefined, undefined, true],
    ['localhost on any port by default', 'http://localhost:5173', undefined, true],
    ['127.0.0.1 by default', 'http://127.0.0.1:3000', undefined, true],
    ['[::1] by default', 'http://[::1]:8080', undefined, true],
    ['a foreign origin by default', 'https://evil.example', undefined, false],
    ['a rebinding name that contains localhost', 'http://localhost.evil.example', undefined, false],
    ['"null" origin', 'null', undefined, false],
    ['a listed origin', 'https://app.example', ['https://app.example'], true],
    ['an unlisted origin when a list is set', 'http://localhost:1', ['https://app.example'], false],
  ])('%s', (_name, origin, allowed, expected) => {
    expect(originAllowed(origin, allowed)).toBe(expected);
  });
});
