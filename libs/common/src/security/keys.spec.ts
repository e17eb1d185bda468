import { createHash } from 'node:crypto';
import { digestsEqual, redactSecrets, sha256Hex } from './keys.js';

describe('sha256Hex', () => {
  it.each([
    ['the empty string', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    [
      '"test" (the key of the SPEC example)',
      'test',
      '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    ],
    ['a non-ASCII key as UTF-8', 'clé', sha256HexOfBytes([0x63, 0x6c, 0xc3, 0xa9])],
  ])('hashes %s to lower-case hex', (_name, input, digest) => {
    expect(sha256Hex(input)).toBe(digest);
  });
});

describe('digestsEqual', () => {
  const digest = sha256Hex('a-long-enough-key-0123');

  it.each<[string, string, string, boolean]>([
    ['equal digests', digest, sha256Hex('a-long-enough-key-0123'), true],
    ['equal digests in different letter case', digest, digest.toUpperCase(), true],
    ['different digests of the same length', digest, sha256Hex('another-key-0123456789'), false],
    ['a digest and its prefix', digest, digest.slice(0, 32), false],
    ['digests of different length', digest, digest + '00', false],
    ['a digest and the empty string', digest, '', false],
    ['two empty strings', '', '', false],
    ['two non-hex strings', 'zz', 'zz', false],
  ])('%s → %s', (_name, a, b, equal) => {
    expect(digestsEqual(a, b)).toBe(equal);
    expect(digestsEqual(b, a)).toBe(equal);
  });
});

describe('redactSecrets', () => {
  it.each([
    [
      'a secret as a path segment',
      '/api/v1/admin/keys/mcpgw_Q2hlY2tTZWNyZXRTaGFwZWRMaWtlQUtleTAxMjM0NTY3OA',
      '/api/v1/admin/keys/[redacted]',
    ],
    [
      'a percent-encoded one',
      '/api/v1/admin/keys/MCPGW%5FQ2hlY2tTZWNyZXRTaGFwZWRMaWtlQUtleTAxMjM0NTY3OA',
      '/api/v1/admin/keys/[redacted]',
    ],
    ['a key id', '/api/v1/admin/keys/alice-api', '/api/v1/admin/keys/alice-api'],
    ['a path without ids', '/api/v1/summary', '/api/v1/summary'],
  ])('keeps %s out of a log line', (_name, path, logged) => {
    expect(redactSecrets(path)).toBe(logged);
  });
});

function sha256HexOfBytes(bytes: number[]): string {
  // Independent of sha256Hex's own UTF-8 handling: hash the bytes directly.
  return createHash('sha256').update(Buffer.from(bytes)).digest('hex');
}
