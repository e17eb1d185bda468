import { SessionCodec } from './session-codec.js';

describe('SessionCodec', () => {
  const codec = new SessionCodec('secret-a');
  const claims = { k: 'alice', n: 'search', t: 'h' as const, b: 'backend-session-1' };

  it('round-trips the claims of a session id it signed', () => {
    expect(codec.decode(codec.encode(claims))).toEqual(claims);
  });

  it('refuses an id signed with another secret (another gateway)', () => {
    expect(new SessionCodec('secret-b').decode(codec.encode(claims))).toBeUndefined();
  });

  it('refuses an id whose claims were edited', () => {
    const [, signature] = codec.encode(claims).split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, k: 'mallory' })).toString('base64url');
    expect(codec.decode(`${forged}.${signature}`)).toBeUndefined();
  });

  it.each(['', 'abc', '.', 'a.b', `${'x'.repeat(5000)}.y`])('refuses garbage %#', (token) => {
    expect(codec.decode(token)).toBeUndefined();
  });
});
