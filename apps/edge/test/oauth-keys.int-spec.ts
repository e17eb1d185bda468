import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigStore } from '#common';
import pino from 'pino';
import { TokenVerifier } from '../src/auth/token-verifier.js';
import { eventually } from '../../../test/support/eventually.js';
import { FakeIssuer } from '../../../test/support/fake-issuer.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ToolboxBackend } from '../../../test/support/toolbox-backend.js';

// An issuer's signing keys while the issuer is unavailable: it takes the requests and never
// answers (the worst case: every fetch waits for its timeout). Tokens signed by keys the edge
// has fetched must keep working, at once, whatever else happens meanwhile: a config reload, the
// keys growing older than `jwks_cache`, tokens the edge has not seen. An unknown `kid` still
// costs at most one fetch per 30 s.

const PUBLIC_URL = 'https://gateway.test';
/** Far below the 5 s fetch timeout (and the 10 s of a discovery that times out twice). */
const AT_ONCE_MS = 1_000;

const issuer = new FakeIssuer(`${PUBLIC_URL}/mcp/tools`);
const toolbox = new ToolboxBackend();
const dir = mkdtempSync(join(tmpdir(), 'oauth-keys-'));

beforeAll(async () => {
  await Promise.all([issuer.start(), toolbox.start()]);
});

afterEach(() => issuer.release({ recover: true }));

afterAll(async () => {
  await Promise.all([issuer.stop(), toolbox.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Its status, and how long the edge took to answer it. */
async function timedCall(edge: string, token: string) {
  const started = Date.now();
  const res = await fetch(`${edge}/mcp/tools`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  await res.text();
  return { status: res.status, ms: Date.now() - started };
}

describe('a config reload while the issuer hangs', () => {
  let gateway: InProcessGateway | undefined;
  const configFile = join(dir, 'gateway.yaml');
  // The issuer's keys found by discovery, as in the reported outage (two 5 s timeouts per fetch).
  const yaml = (scopes: string, extra = '') => `
server: { public_url: "${PUBLIC_URL}" }
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
auth:
  oauth:
    issuers: [{ issuer: "${issuer.url}", required_scopes: ${scopes} }]
    jwks_cache: 3s
${extra}`;

  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });

  it('keeps the issuer’s keys: a token served before and a new one are served at once', async () => {
    gateway = await startInProcessGateway(yaml('["mcp"]'), { configFile });
    const edge = gateway.edges[0].url;
    const before = await issuer.sign({ sub: 'before' });
    expect((await timedCall(edge, before)).status).toBe(200);
    issuer.hang();
    // An edit that has nothing to do with OAuth.
    writeFileSync(configFile, yaml('["mcp"]', 'tenants: { acme: {} }'));
    expect(gateway.config.reload()).toBe(true);
    for (const token of [before, await issuer.sign({ sub: 'after' }), before]) {
      const answer = await timedCall(edge, token);
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(AT_ONCE_MS);
    }
  }, 30_000);

  it('judges a token served before again under the new config: a scope it lacks is 403, at once', async () => {
    gateway = await startInProcessGateway(yaml('["mcp"]'), { configFile });
    const edge = gateway.edges[0].url;
    const token = await issuer.sign({ sub: 'judged' });
    expect((await timedCall(edge, token)).status).toBe(200);
    issuer.hang();
    writeFileSync(configFile, yaml('["mcp", "admin"]'));
    expect(gateway.config.reload()).toBe(true);
    const answer = await timedCall(edge, token);
    expect(answer.status).toBe(403);
    expect(answer.ms).toBeLessThan(AT_ONCE_MS);
  }, 30_000);
});

describe('keys of a hanging issuer (the verifier, on a clock the test moves)', () => {
  let now = Date.now();
  /** Valid for an hour of the test's clock. */
  const lasting = (sub: string) => ({ sub, exp: Math.floor(now / 1000) + 3600 });

  /** A verifier of `yaml` read from a file (so it can be reloaded), counting its fetches. */
  function verifierOf(yaml: string) {
    const file = join(dir, `${randomUUID()}.yaml`);
    writeFileSync(file, yaml);
    const config = ConfigStore.fromFile(file, {});
    const fetches: string[] = [];
    const warnings: string[] = [];
    const verifier = new TokenVerifier(
      config,
      pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) }),
      () => now,
      (input, init) => {
        fetches.push(typeof input === 'string' ? input : 'another input');
        return fetch(input, init);
      },
    );
    return { verifier, config, file, fetches, warnings };
  }

  const oauthConfig = (issuerFields = '') => `
server: { public_url: "${PUBLIC_URL}" }
auth:
  oauth:
    issuers: [{ issuer: "${issuer.url}"${issuerFields} }]
    jwks_cache: 10m
`;

  /** Resolves with what `verify` resolved to, and how long it took. */
  async function timed<T>(promise: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = Date.now();
    const value = await promise();
    return { value, ms: Date.now() - started };
  }

  it('serves stale keys at once while one refetch runs in the background; after it fails, the next waits 30 s', async () => {
    const { verifier, fetches, warnings } = verifierOf(
      oauthConfig(`, jwks_uri: "${issuer.url}/jwks"`),
    );
    await verifier.verify(await issuer.sign(lasting('first')), 'tools');
    expect(fetches).toHaveLength(1);
    issuer.hang();
    now += 11 * 60_000; // past jwks_cache: the keys are stale, and so is every remembered token
    const tokens = await Promise.all(
      ['first', 'second', 'third'].map((sub) => issuer.sign(lasting(sub))),
    );
    for (const token of tokens) {
      const { value, ms } = await timed(() => verifier.verify(token, 'tools'));
      expect(value.keyId).toMatch(/#(first|second|third)$/);
      expect(ms).toBeLessThan(AT_ONCE_MS);
    }
    // One refetch, started by the first of them and still held by the issuer.
    expect(fetches).toHaveLength(2);
    await eventually(() => issuer.held.length === 1, 5_000, 'the refetch to reach the issuer');
    issuer.release();
    await eventually(
      () => warnings.some((line) => line.includes('could not refetch the issuer keys')),
      5_000,
      'the failed refetch',
    );

    // Within 30 s of the failure: known keys verify, nothing is fetched; an unknown kid is refused
    // without a fetch.
    now += 20_000;
    const known = issuer.current;
    await verifier.verify(await issuer.sign(lasting('fourth')), 'tools');
    const stranger = await issuer.addKey();
    await expect(
      verifier.verify(await issuer.sign(lasting('x'), { kid: stranger }), 'tools'),
    ).rejects.toThrow(/key this gateway does not know/);
    expect(fetches).toHaveLength(2);

    // Past it: the next token starts one more refetch, and is not kept waiting by it.
    now += 11_000;
    const fifth = await issuer.sign(lasting('fifth'), { kid: known.kid, key: known.privateKey });
    const { ms } = await timed(() => verifier.verify(fifth, 'tools'));
    expect(ms).toBeLessThan(AT_ONCE_MS);
    expect(fetches).toHaveLength(3);
  }, 30_000);

  it('makes the requests with an unknown kid share one fetch, at most one per 30 s', async () => {
    const { verifier, fetches } = verifierOf(oauthConfig(`, jwks_uri: "${issuer.url}/jwks"`));
    const known = issuer.current;
    await verifier.verify(await issuer.sign(lasting('first')), 'tools');
    issuer.hang();
    const rotated = await issuer.addKey();
    now += 31_000;
    const tokens = await Promise.all(
      ['a', 'b', 'c'].map((sub) => issuer.sign(lasting(sub), { kid: rotated })),
    );
    // They wait for the one fetch (there is no key to verify them with) ...
    const refused = tokens.map((token) =>
      expect(verifier.verify(token, 'tools')).rejects.toThrow(/key this gateway does not know/),
    );
    await eventually(() => issuer.held.length === 1, 5_000, 'the fetch to reach the issuer');
    // ... while a known key does not.
    const { ms } = await timed(async () =>
      verifier.verify(
        await issuer.sign(lasting('known'), { kid: known.kid, key: known.privateKey }),
        'tools',
      ),
    );
    expect(ms).toBeLessThan(AT_ONCE_MS);
    issuer.release();
    await Promise.all(refused);
    expect(fetches).toHaveLength(2);
    // The next within 30 s is refused at once, without a fetch.
    now += 10_000;
    await expect(verifier.verify(tokens[0], 'tools')).rejects.toThrow(/does not know/);
    expect(fetches).toHaveLength(2);
    issuer.release({ recover: true });
    now += 21_000;
    await expect(verifier.verify(tokens[0], 'tools')).resolves.toMatchObject({
      keyId: `oauth:${issuer.url}#a`,
    });
    expect(fetches).toHaveLength(3);
  }, 30_000);

  it('keeps the keys across a reload unless the issuer’s jwks_uri changed', async () => {
    const { verifier, config, file, fetches } = verifierOf(
      oauthConfig(`, jwks_uri: "${issuer.url}/jwks"`),
    );
    const token = await issuer.sign(lasting('reloaded'));
    await verifier.verify(token, 'tools');
    expect(fetches).toEqual([`${issuer.url}/jwks`]);
    // Another algorithm list and audience: judged again, with the keys it has.
    writeFileSync(
      file,
      oauthConfig(
        `, jwks_uri: "${issuer.url}/jwks", algorithms: ["RS256"], audiences: ["${PUBLIC_URL}/mcp"]`,
      ),
    );
    expect(config.reload()).toBe(true);
    await expect(verifier.verify(token, 'tools')).rejects.toThrow(/not for this resource/);
    expect(fetches).toHaveLength(1);
    // The keys discovered instead: fetched again, from where discovery says.
    writeFileSync(file, oauthConfig());
    expect(config.reload()).toBe(true);
    await verifier.verify(token, 'tools');
    expect(fetches).toEqual([
      `${issuer.url}/jwks`,
      `${issuer.url}/.well-known/openid-configuration`,
      `${issuer.url}/jwks`,
    ]);
  });
});
