import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { ConfigStore, parseConfig } from '#common';
import pino from 'pino';
import { TokenVerifier } from '../src/auth/token-verifier.js';
import { eventually } from '../../../test/support/eventually.js';
import { FakeIssuer } from '../../../test/support/fake-issuer.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ToolboxBackend } from '../../../test/support/toolbox-backend.js';
import { StreamableRawClient } from '../../../test/support/raw-client.js';
import { ROOT } from '../../../test/support/processes.js';
import { join } from 'node:path';

// The edge as an OAuth 2.1 resource server (SPEC §3 `auth.oauth`, §4 v2), against an issuer
// faked at the wire (its discovery document and JWKS over HTTP), so each token can be shaped
// exactly: every malformed, foreign or tampered one is refused with the right status and
// challenge; a good one is a principal like a key's, whose roles scope its tools; keys are
// verified locally (the JWKS fetched once, refetched on an unknown kid at most every 30 s, kept
// while the issuer is down); no token ever reaches a backend.

const PUBLIC_URL = 'https://gateway.test';
const resource = (ns: string) => `${PUBLIC_URL}/mcp/${ns}`;

const key = `key-${randomUUID()}`;
const issuer = new FakeIssuer(resource('tools'));
const toolbox = new ToolboxBackend();
const hostile = new HostileBackends();
let gateway: InProcessGateway;
let edge: string;

beforeAll(async () => {
  await Promise.all([issuer.start(), toolbox.start(), hostile.start()]);
  gateway = await startInProcessGateway(`
server: { public_url: "${PUBLIC_URL}" }
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
  other: { upstream: { url: "${toolbox.url}" } }
  recorded: { upstream: { url: "${hostile.url}/json" } }
roles:
  analyst: { namespaces: ["tools"], tools: { deny: ["write_*", "delete_*"] } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
auth:
  max_failures: { count: 1000, per: 1m }
  oauth:
    issuers:
      - issuer: "${issuer.url}"
        required_scopes: ["mcp"]
        claims: { user: email, tenant: tenant_id, roles: groups }
        role_map: { "mcp-analysts": analyst }
`);
  edge = gateway.edges[0].url;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([issuer.stop(), toolbox.stop(), hostile.stop()]);
});

const analyst = { groups: ['mcp-analysts'] };

async function rpc(
  ns: string,
  credential: string | undefined,
  method = 'tools/list',
  params: Record<string, unknown> = {},
) {
  const res = await fetch(`${edge}/mcp/${ns}`, {
    method: 'POST',
    headers: {
      ...(credential && { authorization: `Bearer ${credential}` }),
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const text = await res.text();
  const json: unknown = JSON.parse(text.startsWith('{') ? text : /^data: (.*)$/m.exec(text)![1]);
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    json: json as {
      result?: { tools?: Array<{ name: string }> };
      error?: { message: string; data?: { code: string } };
    },
  };
}

describe('a good token', () => {
  it('is a principal like a key: served, recorded as oauth with its claims', async () => {
    const answer = await rpc('tools', await issuer.sign(analyst));
    expect(answer.status).toBe(200);
    await gateway.flush();
    const event = gateway.events.findLast((e) => e.key_id === `oauth:${issuer.url}#user-ada`);
    expect(event).toMatchObject({
      auth_method: 'oauth',
      user: 'ada@acme.example',
      tenant: 'acme',
      namespace: 'tools',
    });
  });

  it("is scoped by its roles: the role's hidden tools are neither listed nor run", async () => {
    const token = await issuer.sign(analyst);
    const list = await rpc('tools', token);
    expect(list.json.result?.tools?.map((tool) => tool.name).sort()).toEqual([
      'echo',
      'read_note',
      'search__query',
    ]);
    const call = await rpc('tools', token, 'tools/call', { name: 'write_note', arguments: {} });
    expect(call.json.error).toMatchObject({ code: -32602 });
    expect(toolbox.ran).not.toContain('write_note');
  });

  it("may use only its roles' namespaces: 403 elsewhere, even with the right audience", async () => {
    const answer = await rpc('other', await issuer.sign({ ...analyst, aud: resource('other') }));
    expect(answer.status).toBe(403);
    expect(answer.json.error?.data?.code).toBe('forbidden_namespace');
    const roleless = await rpc('tools', await issuer.sign({ groups: ['strangers'] }));
    expect(roleless.status).toBe(403);
  });

  it('never reaches a backend: neither the token nor any Authorization of the client', async () => {
    const token = await issuer.sign({ groups: [], aud: resource('recorded') });
    await rpc('recorded', token);
    const seen = JSON.stringify(hostile.headers);
    expect(seen).not.toContain(token);
    expect(seen).not.toContain(token.split('.')[2]);
  });

  it('costs no network round trip per request: the keys are fetched once', async () => {
    const before = issuer.jwksFetches;
    const tokens = await Promise.all(
      Array.from({ length: 10 }, (_, i) => issuer.sign({ ...analyst, sub: `user-${i}` })),
    );
    for (const token of tokens) expect((await rpc('tools', token)).status).toBe(200);
    expect(issuer.jwksFetches - before).toBe(0);
  });

  it('works beside API keys', async () => {
    expect((await rpc('tools', key)).status).toBe(200);
  });
});

describe('refused tokens', () => {
  const refusedWith = async (token: string | Promise<string>, pattern: RegExp) => {
    const answer = await rpc('tools', await token);
    expect(answer.status).toBe(401);
    expect(answer.json.error?.data?.code).toBe('unauthorized');
    expect(answer.challenge).toContain(
      `resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/tools"`,
    );
    expect(answer.challenge).toContain('error="invalid_token"');
    expect(answer.json.error?.message).toMatch(pattern);
  };

  it("for another namespace's audience", () =>
    refusedWith(issuer.sign({ ...analyst, aud: resource('other') }), /not for this resource/));

  it('expired (beyond the clock skew)', () =>
    refusedWith(issuer.sign({ ...analyst, exp: Math.floor(Date.now() / 1000) - 60 }), /expired/));

  it('not valid yet', () =>
    refusedWith(
      new SignJWT({ ...analyst, scope: 'mcp' })
        .setProtectedHeader({ alg: 'RS256', kid: issuer.current.kid })
        .setIssuer(issuer.url)
        .setSubject('u')
        .setAudience(resource('tools'))
        .setNotBefore(Math.floor(Date.now() / 1000) + 600)
        .setExpirationTime(Math.floor(Date.now() / 1000) + 900)
        .sign(issuer.current.privateKey),
      /not valid yet/,
    ));

  it.each([
    ['with a newline', 'alice\nev'],
    ['longer than 256 characters', 'a'.repeat(257)],
    ['an object', { id: 'bob' }],
    ['a number', 42],
    ['empty', ''],
  ])('whose subject is %s (one principal per subject, as written)', (_name, sub) =>
    refusedWith(
      new SignJWT({ ...analyst, scope: 'mcp', sub: sub as string })
        .setProtectedHeader({ alg: 'RS256', kid: issuer.current.kid })
        .setIssuer(issuer.url)
        .setAudience(resource('tools'))
        .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
        .sign(issuer.current.privateKey),
      /subject/,
    ),
  );

  it('from an issuer the gateway does not trust', () =>
    refusedWith(issuer.sign(analyst, { issuer: 'https://evil.example' }), /does not trust/));

  it('unsigned (alg: none)', () => {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({
      iss: issuer.url,
      sub: 'mallory',
      aud: resource('tools'),
      scope: 'mcp',
      exp: now + 300,
      ...analyst,
    })}.`;
    return refusedWith(token, /invalid|algorithm/);
  });

  it('HS256, signed with the public key as the secret', async () => {
    const token = await new SignJWT({ ...analyst, scope: 'mcp' })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.current.kid })
      .setIssuer(issuer.url)
      .setSubject('mallory')
      .setAudience(resource('tools'))
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(issuer.current.pem));
    await refusedWith(token, /algorithm/);
  });

  it('with a tampered payload', async () => {
    const [head, , signature] = (await issuer.sign(analyst)).split('.');
    const forged = Buffer.from(
      JSON.stringify({
        iss: issuer.url,
        sub: 'root',
        aud: resource('tools'),
        scope: 'mcp',
        exp: Math.floor(Date.now() / 1000) + 300,
        groups: ['mcp-analysts'],
      }),
    ).toString('base64url');
    await refusedWith(`${head}.${forged}.${signature}`, /invalid/);
  });

  it('without a required scope: 403 insufficient_scope with the scope to ask for', async () => {
    const answer = await rpc('tools', await issuer.sign({ ...analyst, scope: 'profile' }));
    expect(answer.status).toBe(403);
    expect(answer.json.error?.data?.code).toBe('insufficient_scope');
    expect(answer.challenge).toMatch(/^Bearer error="insufficient_scope", scope="mcp"/);
  });

  it('no credential at all: 401 pointing at the metadata, with the scope', async () => {
    const answer = await rpc('tools', undefined);
    expect(answer.status).toBe(401);
    expect(answer.challenge).toBe(
      `Bearer resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/tools", scope="mcp"`,
    );
  });
});

describe('two issuers', () => {
  it('are two principals for one subject: one issuer’s "alice" cannot use or end the other’s session', async () => {
    const second = await new FakeIssuer().start();
    const both = await startInProcessGateway(`
server: { public_url: "${PUBLIC_URL}" }
namespaces:
  tools: { upstream: { command: "${process.execPath}", args: ["${join(ROOT, 'test/support/toolbox-stdio.mjs')}"] } }
auth:
  oauth: { issuers: [{ issuer: "${issuer.url}" }, { issuer: "${second.url}" }] }
`);
    try {
      const edges = [both.edges[0].url];
      const mine = new StreamableRawClient(edges, 'tools', await issuer.sign({ sub: 'alice' }));
      const theirs = new StreamableRawClient(edges, 'tools', await second.sign({ sub: 'alice' }));
      expect((await mine.initialize('2025-06-18')).status).toBe(200);
      expect(typeof mine.sessionId).toBe('string');
      theirs.sessionId = mine.sessionId;
      const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
      expect((await theirs.post(list)).status).toBe(404);
      const ended = await fetch(`${edges[0]}/mcp/tools`, {
        method: 'DELETE',
        headers: theirs.headers(),
      });
      expect(ended.status).toBe(404);
      expect((await mine.post(list)).status).toBe(200);
    } finally {
      await both.stop();
      await second.stop();
    }
  });
});

describe('refused tokens and the failure limit', () => {
  it('are knocking, not guessing: an expired token sent again and again never locks out a key', async () => {
    const limited = await startInProcessGateway(`
server: { public_url: "${PUBLIC_URL}" }
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
auth:
  max_failures: { count: 3, per: 1m }
  oauth: { issuers: [{ issuer: "${issuer.url}" }] }
`);
    try {
      const expired = await issuer.sign({ exp: Math.floor(Date.now() / 1000) - 120 });
      const post = (credential: string) =>
        fetch(`${limited.edges[0].url}/mcp/tools`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${credential}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
        });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await post(expired)).status);
      // Limited as requests without a valid credential are...
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // ...while a key from the same address is still judged, and served.
      expect((await post(key)).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});

describe('keys of the issuer', () => {
  // The verifier itself, on a clock the test moves, against the same issuer over HTTP.
  let now = Date.now();
  /** Valid for an hour of the test's clock. */
  const lasting = (sub: string) => ({ sub, exp: Math.floor(now / 1000) + 3600 });
  const verifier = () =>
    new TokenVerifier(
      new ConfigStore(
        parseConfig(
          `
server: { public_url: "${PUBLIC_URL}" }
auth:
  oauth:
    issuers: [{ issuer: "${issuer.url}", jwks_cache: 10m }]
`.replace(', jwks_cache: 10m', ''),
          {},
        ),
      ),
      pino({ level: 'silent' }),
      () => now,
    );

  it('an unknown kid refetches the keys at most every 30 s', async () => {
    const tokens = verifier();
    await tokens.verify(await issuer.sign({}), 'tools');
    const fetched = issuer.jwksFetches;
    const kid = await issuer.addKey();
    const rotated = await issuer.sign({ sub: 'rotated' }, { kid });
    // Within 30 s of the last fetch: refused without asking the issuer again (a flood of
    // made-up kids cannot make the edge hammer the issuer).
    now += 10_000;
    await expect(tokens.verify(rotated, 'tools')).rejects.toThrow(/key this gateway does not know/);
    await expect(tokens.verify(rotated, 'tools')).rejects.toThrow();
    expect(issuer.jwksFetches).toBe(fetched);
    // Past the cool-down: one refetch, and the rotated key works.
    now += 25_000;
    await expect(tokens.verify(rotated, 'tools')).resolves.toMatchObject({
      keyId: `oauth:${issuer.url}#rotated`,
    });
    expect(issuer.jwksFetches).toBe(fetched + 1);
  });

  it('keys older than jwks_cache are refetched', async () => {
    const tokens = verifier();
    await tokens.verify(await issuer.sign(lasting('a')), 'tools');
    const fetched = issuer.jwksFetches;
    now += 11 * 60_000;
    // Served with the keys it has; the refetch runs beside it.
    await tokens.verify(await issuer.sign(lasting('b')), 'tools');
    await eventually(() => issuer.jwksFetches === fetched + 1, 5_000, 'the refetch');
    await tokens.verify(await issuer.sign(lasting('c')), 'tools');
    expect(issuer.jwksFetches).toBe(fetched + 1);
  });

  it('while the issuer is down, the keys fetched before keep working; an unknown kid is refused', async () => {
    const tokens = verifier();
    await tokens.verify(await issuer.sign(lasting('before')), 'tools');
    await issuer.stop();
    try {
      // Even past jwks_cache: the refetch fails, the known keys stay in use.
      now += 11 * 60_000;
      await expect(
        tokens.verify(await issuer.sign(lasting('during')), 'tools'),
      ).resolves.toMatchObject({
        keyId: `oauth:${issuer.url}#during`,
      });
      const stranger = await issuer.addKey();
      now += 31_000;
      await expect(
        tokens.verify(await issuer.sign(lasting('x'), { kid: stranger }), 'tools'),
      ).rejects.toThrow(/key this gateway does not know/);
    } finally {
      await issuer.start();
    }
  });
});

describe('protected-resource metadata (RFC 9728)', () => {
  it('names the resource URL, the issuer and the scopes of any route', async () => {
    const res = await fetch(`${edge}/.well-known/oauth-protected-resource/mcp/tools`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      resource: resource('tools'),
      authorization_servers: [issuer.url],
      scopes_supported: ['mcp'],
      bearer_methods_supported: ['header'],
      resource_name: 'MCP Gateway: tools',
    });
    // Names that are not configured are answered alike: the route tells nobody what exists.
    const unknown = await fetch(`${edge}/.well-known/oauth-protected-resource/mcp/nothing-here`);
    expect(unknown.status).toBe(200);
  });
});
