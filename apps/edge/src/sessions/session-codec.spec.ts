import fc from 'fast-check';
import { jest } from '@jest/globals';
import { InProcessBus } from '#common';
import { ClosedSessions } from './closed-sessions.js';
import { SessionCodec, type SessionClaims } from './session-codec.js';

describe('SessionCodec', () => {
  const codec = new SessionCodec('secret-a');
  const claims: SessionClaims = {
    k: 'alice',
    n: 'search',
    t: 'b',
    b: 'bridge-1',
    e: 'edge-7',
    u: 'http://10.1.2.3:8080',
  };

  it('round-trips the claims of a session id it sealed, with an expiry', () => {
    const decoded = codec.decode(codec.encode(claims));
    expect(decoded).toMatchObject(claims);
    expect(decoded!.x! * 1000).toBeGreaterThan(Date.now());
  });

  it('gives the same session the same id', () => {
    const x = Math.floor(Date.now() / 1000) + 60;
    expect(codec.encode({ ...claims, x })).toBe(codec.encode({ ...claims, x }));
  });

  it('keeps what it carries unreadable: no address, no backend id in any decoding of it', () => {
    const token = codec.encode(claims);
    for (const text of [token, Buffer.from(token, 'base64url').toString('latin1')]) {
      expect(text).not.toContain('10.1.2.3');
      expect(text).not.toContain('bridge-1');
      expect(text).not.toContain('alice');
    }
  });

  it('refuses an id sealed with another secret (another gateway)', () => {
    expect(new SessionCodec('secret-b').decode(codec.encode(claims))).toBeUndefined();
  });

  it('refuses an expired id', () => {
    expect(
      codec.decode(codec.encode({ ...claims, x: Math.floor(Date.now() / 1000) - 1 })),
    ).toBeUndefined();
  });

  it('refuses an id that expired after it was last used (an opened id is remembered)', () => {
    const soon = Math.floor(Date.now() / 1000) + 5;
    const token = codec.encode({ ...claims, x: soon });
    expect(codec.decode(token)).toMatchObject(claims);
    const now = jest.spyOn(Date, 'now').mockReturnValue((soon + 1) * 1000);
    try {
      expect(codec.decode(token)).toBeUndefined();
    } finally {
      now.mockRestore();
    }
  });

  it('hands out claims nobody can change for the next request of the session', () => {
    const token = codec.encode(claims);
    const decoded = codec.decode(token)!;
    expect(() => {
      (decoded as { k: string }).k = 'mallory';
    }).toThrow(TypeError);
    expect(codec.decode(token)!.k).toBe('alice');
  });

  it.each([
    ['padding added', (token: string) => `${token}==`],
    [
      'standard base64 instead of base64url',
      (token: string) => Buffer.from(token, 'base64url').toString('base64'),
    ],
    ['a flipped byte', (token: string) => flip(token, 20)],
    ['other trailing bits', (token: string) => withOtherTrailingBits(token)],
  ])('refuses a twin of a sound id: %s', (_name, twin) => {
    // An id with a base64url-only character, so that its standard-base64 spelling differs.
    let token = codec.encode(claims);
    for (let i = 0; !/[-_]/.test(token); i++) token = codec.encode({ ...claims, b: `bridge-${i}` });
    const other = twin(token);
    expect(other).not.toBe(token);
    expect(codec.decode(other)).toBeUndefined();
  });

  it.each(['', 'abc', '.', 'a.b', `${'x'.repeat(5000)}`])('refuses garbage %#', (token) => {
    expect(codec.decode(token)).toBeUndefined();
  });
});

describe('ClosedSessions', () => {
  it('remembers an ended session by what it is, whatever id presents it', () => {
    const codec = new SessionCodec('secret');
    const closed = new ClosedSessions(new InProcessBus());
    const claims: SessionClaims = { k: 'alice', n: 'search', t: 'h', b: 'backend-1' };
    closed.close(codec.decode(codec.encode({ ...claims, pv: '2025-06-18' }))!);
    // Another id of the same session (other client details, another expiry).
    const twin = codec.decode(codec.encode({ ...claims, pv: '2025-11-25', x: 2e9 }))!;
    expect(closed.has(twin)).toBe(true);
    expect(closed.has({ ...claims, b: 'backend-2' })).toBe(false);
  });
});

function flip(token: string, at: number): string {
  const raw = Buffer.from(token, 'base64url');
  raw[at] ^= 1;
  return raw.toString('base64url');
}

/** The same bytes, but with the unused low bits of the last character set. */
function withOtherTrailingBits(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token[token.length - 1]);
  const unused = token.length % 4 === 2 ? 0b1111 : token.length % 4 === 3 ? 0b11 : 0;
  if (unused === 0) return `${token}A`; // no unused bits: a character more is no longer canonical
  return token.slice(0, -1) + alphabet[last ^ 1];
}

describe('session ids under generated input', () => {
  const codec = new SessionCodec('fuzz-secret');
  const token = codec.encode({ k: 'alice', n: 'search', t: 'h', b: 'backend-1' });

  it('never throws, and accepts nothing but the ids it sealed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (text) => {
        expect(codec.decode(text)).toBeUndefined();
      }),
      { numRuns: 2_000 },
    );
  });

  it('refuses every edit of a sound id: a character changed, added or removed', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.';
    fc.assert(
      fc.property(
        fc.nat({ max: token.length }),
        fc.constantFrom(...alphabet),
        fc.constantFrom('replace', 'insert', 'delete'),
        (at, char, edit) => {
          const edited =
            edit === 'replace'
              ? token.slice(0, at) + char + token.slice(at + 1)
              : edit === 'insert'
                ? token.slice(0, at) + char + token.slice(at)
                : token.slice(0, at) + token.slice(at + 1);
          fc.pre(edited !== token);
          expect(codec.decode(edited)).toBeUndefined();
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
