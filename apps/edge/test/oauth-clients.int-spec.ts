import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import {
  completeAuthorization,
  startTestIdp,
  type TestIdp,
} from '../../../test/support/oidc-provider.js';
import { freePort } from '../../../test/support/processes.js';
import { ToolboxBackend } from '../../../test/support/toolbox-backend.js';

// The MCP TypeScript SDK's own OAuth support, end to end against a real OpenID provider
// (oidc-provider) and the gateway: a 401 sends it to the route's protected-resource metadata, the
// issuer's metadata, the token endpoint (with the route as RFC 8707 resource), then the call.
// Both a machine client (client credentials) and a user's client (authorization code + PKCE,
// registered dynamically, consent automated).

const toolbox = new ToolboxBackend();
let idp: TestIdp;
let gateway: InProcessGateway;
let base: string;

beforeAll(async () => {
  await toolbox.start();
  idp = await startTestIdp({
    claims: ({ sub }) => ({ email: `${sub}@acme.example`, groups: ['mcp-analysts'] }),
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startInProcessGateway(
    `
server: { public_url: "${base}" }
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
roles:
  analyst: { namespaces: ["tools"], tools: { deny: ["write_*", "delete_*"] } }
auth:
  oauth:
    jwks_cache: 1s
    issuers:
      - issuer: "${idp.issuer}"
        required_scopes: ["mcp"]
        claims: { user: email, roles: groups }
        role_map: { "mcp-analysts": analyst }
`,
    { port },
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await idp?.stop();
  await toolbox.stop();
});

async function connected(authProvider: OAuthClientProvider): Promise<Client> {
  const client = new Client({ name: 'oauth-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp/tools`), { authProvider }),
  );
  return client;
}

/** A user's client: dynamic registration, PKCE, the browser step done by the test IdP. */
class UserClient implements OAuthClientProvider {
  private info?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier = '';
  code?: string;

  constructor(private readonly user: string) {}

  get redirectUrl() {
    return 'http://localhost:8976/callback';
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'gateway test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'mcp',
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.code = (await completeAuthorization(url, { user: this.user })).code;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

describe('the SDK client with OAuth', () => {
  it('client credentials: discovers, gets a token for the route, and calls', async () => {
    const client = await connected(
      new ClientCredentialsProvider({
        clientId: idp.clients.confidential.id,
        clientSecret: idp.clients.confidential.secret,
        expectedIssuer: idp.issuer,
        scope: 'mcp',
      }),
    );
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(['echo', 'read_note', 'search__query']);
      const result = await client.callTool({ name: 'echo', arguments: {} });
      expect(result.content).toEqual([{ type: 'text', text: 'ran echo' }]);
    } finally {
      await client.close();
    }
    await gateway.flush();
    expect(
      gateway.events.some(
        (e) =>
          e.auth_method === 'oauth' &&
          e.key_id === `oauth:${idp.issuer}#${idp.clients.confidential.id}`,
      ),
    ).toBe(true);
  });

  it('authorization code + PKCE: registers, the user consents, and the session is theirs', async () => {
    const user = `user-${randomUUID().slice(0, 8)}`;
    const provider = new UserClient(user);
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/tools`), {
      authProvider: provider,
    });
    const first = new Client({ name: 'oauth-test', version: '1.0.0' });
    await expect(first.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.code).toBeDefined();
    await transport.finishAuth(provider.code!);
    const client = await connected(provider);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).not.toContain('write_note');
      // A hidden tool's call is a JSON-RPC error (-32602), which the SDK throws.
      await expect(client.callTool({ name: 'write_note', arguments: {} })).rejects.toThrow(
        /Tool not found: write_note/,
      );
    } finally {
      await client.close();
    }
    expect(toolbox.ran).not.toContain('write_note');
    await gateway.flush();
    const mine = gateway.events.filter((e) => e.key_id === `oauth:${idp.issuer}#${user}`);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((e) => e.user === `${user}@acme.example`)).toBe(true);
  });

  it('keeps working across a key rotation at the provider', async () => {
    const machine = () =>
      new ClientCredentialsProvider({
        clientId: idp.clients.confidential.id,
        clientSecret: idp.clients.confidential.secret,
        expectedIssuer: idp.issuer,
        scope: 'mcp',
      });
    const before = idp.currentKid;
    await idp.rotateKeys({ dropOld: true });
    expect(idp.currentKid).not.toBe(before);
    // jwks_cache is 1 s here: past it, the edge refetches and knows the new key.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const client = await connected(machine());
    try {
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('keeps accepting tokens it can verify while the provider is down', async () => {
    const token = await idp.clientCredentialsToken({ resource: `${base}/mcp/tools` });
    // Let the edge know the current keys first, then take the provider away.
    const warm = await idp.clientCredentialsToken({ resource: `${base}/mcp/tools` });
    const ping = (bearer: string) =>
      fetch(`${base}/mcp/tools`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
    expect((await ping(warm)).status).toBe(200);
    await idp.stop();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // past jwks_cache: a refetch fails
      expect((await ping(token)).status).toBe(200);
    } finally {
      await idp.start();
    }
  });
});
