import { ConfigStore, parseConfig } from '#common';
import pino from 'pino';
import { TokenVerifier } from '../src/auth/token-verifier.js';
import { FakeIssuer } from '../../../test/support/fake-issuer.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ToolboxBackend } from '../../../test/support/toolbox-backend.js';

// A route's resource URL (RFC 8707: the `aud` of its tokens) and its metadata URL (RFC 9728)
// when `server.public_url` is not written in canonical form or has a path. Clients normalise the
// URL they were given before asking for a token, and RFC 9728 §3.1 puts the well-known segment
// between the host and the path.

const issuer = new FakeIssuer();
const toolbox = new ToolboxBackend();

beforeAll(async () => {
  await Promise.all([issuer.start(), toolbox.start()]);
});

afterAll(async () => {
  await Promise.all([issuer.stop(), toolbox.stop()]);
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

describe('a public_url with a path', () => {
  let gateway: InProcessGateway;
  let edge: string;
  const RESOURCE = 'https://gw.example/base/mcp/tools';
  const METADATA = 'https://gw.example/.well-known/oauth-protected-resource/base/mcp/tools';

  beforeAll(async () => {
    gateway = await startInProcessGateway(`
server: { public_url: "https://GW.example:443/base/" }
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
auth:
  oauth: { issuers: [{ issuer: "${issuer.url}", required_scopes: ["mcp"] }] }
`);
    edge = gateway.edges[0].url;
  });

  afterAll(() => gateway?.stop());

  const call = (token?: string) =>
    fetch(`${edge}/mcp/tools`, {
      method: 'POST',
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });

  it('serves a token for the canonical resource URL', async () => {
    expect((await call(await issuer.sign({ aud: RESOURCE }))).status).toBe(200);
  });

  it('advertises the metadata URL of RFC 9728 §3.1: the well-known segment before the path', async () => {
    const refused = await call();
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${METADATA}", scope="mcp"`,
    );
    const scopeless = await call(await issuer.sign({ aud: RESOURCE, scope: 'profile' }));
    expect(scopeless.status).toBe(403);
    expect(scopeless.headers.get('www-authenticate')).toContain(`resource_metadata="${METADATA}"`);
  });

  it.each([
    ['as the client asks for it (a proxy forwarding it as it is)', '/base/mcp/tools'],
    ['without the path (a proxy stripping it, as from /base/mcp)', '/mcp/tools'],
  ])('answers the metadata %s', async (_name, rest) => {
    const res = await fetch(`${edge}/.well-known/oauth-protected-resource${rest}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      resource: RESOURCE,
      authorization_servers: [issuer.url],
    });
  });

  it.each([
    ['another path', '/.well-known/oauth-protected-resource/other/mcp/tools'],
    ['the path after the route', '/.well-known/oauth-protected-resource/mcp/tools/base'],
    [
      'the path before the well-known segment',
      '/base/.well-known/oauth-protected-resource/mcp/tools',
    ],
  ])('answers 404 for %s', async (_name, path) => {
    expect((await fetch(`${edge}${path}`)).status).toBe(404);
  });
});
