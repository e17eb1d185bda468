import { ConfigStore, parseConfig } from '#common';
import pino from 'pino';
import { TokenVerifier } from '../src/auth/token-verifier.js';
import { FakeIssuer } from '../../../test/support/fake-issuer.js';

// A route's resource URL (RFC 8707: the `aud` of its tokens) and its metadata URL (RFC 9728)
// when `server.public_url` is not written in canonical form or has a path. Clients normalise the
// URL they were given before asking for a token, and RFC 9728 §3.1 puts the well-known segment
// between the host and the path.

const issuer = new FakeIssuer();

beforeAll(async () => {
  await issuer.start();
});

afterAll(async () => {
  await issuer.stop();
});

describe('audiences, compared canonical', () => {
  const verifier = (publicUrl: string, audiences = '') =>
    new TokenVerifier(
      new ConfigStore(
        parseConfig(
          `
server: { public_url: "${publicUrl}" }
auth: { oauth: { issuers: [{ issuer: "${issuer.url}"${audiences} }] } }
`,
          {},
        ),
      ),
      pino({ level: 'silent' }),
    );
  let tokens: TokenVerifier;
  beforeAll(() => {
    tokens = verifier('https://GW.Example:443/');
  });

  it.each([
    ['the normalised URL clients send', 'https://gw.example/mcp/rec'],
    ['the URL as public_url writes it', 'https://GW.Example:443/mcp/rec'],
    ['the URL with a final slash', 'https://gw.example/mcp/rec/'],
  ])('accepts %s', async (_name, aud) => {
    await expect(tokens.verify(await issuer.sign({ aud }), 'rec')).resolves.toMatchObject({
      keyId: `oauth:${issuer.url}#user-ada`,
    });
  });

  it.each([
    ['another route', 'https://gw.example/mcp/other'],
    ['another port', 'https://gw.example:8443/mcp/rec'],
    ['another scheme', 'http://gw.example/mcp/rec'],
    ['a path in another case', 'https://gw.example/MCP/rec'],
    ['another host', 'https://gw.example.evil/mcp/rec'],
  ])('refuses %s', async (_name, aud) => {
    await expect(tokens.verify(await issuer.sign({ aud }), 'rec')).rejects.toThrow(
      /not for this resource/,
    );
  });

  it('compares configured audiences canonical too, and other strings exactly', async () => {
    const configured = verifier(
      'https://gw.example',
      ', audiences: ["HTTPS://GW.example:443/mcp", "api://Gateway"]',
    );
    await expect(
      configured.verify(await issuer.sign({ aud: 'https://gw.example/mcp' }), 'rec'),
    ).resolves.toBeDefined();
    await expect(
      configured.verify(await issuer.sign({ aud: 'api://Gateway' }), 'rec'),
    ).resolves.toBeDefined();
    await expect(
      configured.verify(await issuer.sign({ aud: 'api://gateway' }), 'rec'),
    ).rejects.toThrow(/not for this resource/);
  });
});
