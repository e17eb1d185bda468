import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import {
  completeAuthorization,
  pkcePair,
  startTestIdp,
  TEST_IDP_DEFAULT_USER,
  type TestIdp,
} from '../../../test/support/oidc-provider.js';

// The test IdP (test/support/oidc-provider.ts) is what the edge's OAuth tests trust, so this
// proves it first: real JWT access tokens for any resource, the code + PKCE flow without a
// browser (including for a dynamically registered client, as the MCP SDK's OAuth client does
// it), key rotation seen through the JWKS, and tokens outliving the IdP.

const RESOURCE = 'http://127.0.0.1:1234/mcp/demo';
const CLAIMS = { email: 'alice@example.test', tenant_id: 'acme', groups: ['dev', 'ops'] };

let idp: TestIdp;

beforeAll(async () => {
  idp = await startTestIdp({ scopes: ['tools:read'], claims: CLAIMS, accessTokenTtlSeconds: 600 });
});

afterAll(async () => {
  await idp?.stop();
});

afterEach(() => {
  expect(idp.serverErrors).toEqual([]);
});

const verify = (token: string, jwks = createRemoteJWKSet(new URL(idp.jwksUri))) =>
  jwtVerify(token, jwks, { issuer: idp.issuer, audience: RESOURCE, typ: 'at+jwt' });

interface Discovery {
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  authorization_endpoint: string;
  registration_endpoint: string;
  code_challenge_methods_supported: string[];
  scopes_supported: string[];
}

async function discovery(path = '/.well-known/openid-configuration'): Promise<Discovery> {
  const res = await fetch(`${idp.issuer}${path}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Discovery;
}

it('advertises its issuer, JWKS, registration and S256 PKCE in discovery (both well-known paths)', async () => {
  const oidc = await discovery();
  expect(oidc).toMatchObject({
    issuer: idp.issuer,
    jwks_uri: idp.jwksUri,
    code_challenge_methods_supported: ['S256'],
  });
  expect(oidc.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(oidc.registration_endpoint).toBe(`${idp.issuer}/reg`);
  expect(oidc.scopes_supported).toEqual(expect.arrayContaining(['mcp', 'tools:read']));
  expect(await discovery('/.well-known/oauth-authorization-server')).toEqual(oidc);
});

it('issues a client_credentials JWT for the requested resource, with the extra claims', async () => {
  const token = await idp.clientCredentialsToken({ resource: RESOURCE, scope: 'mcp' });
  const before = Math.floor(Date.now() / 1000);
  const { payload, protectedHeader } = await verify(token);
  expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: idp.currentKid, typ: 'at+jwt' });
  expect(payload).toMatchObject({
    iss: idp.issuer,
    aud: RESOURCE,
    sub: idp.clients.confidential.id,
    client_id: idp.clients.confidential.id,
    scope: 'mcp',
    ...CLAIMS,
  });
  expect(payload.exp).toBeGreaterThanOrEqual(before + 590);
  expect(payload.exp).toBeLessThanOrEqual(before + 610);
});

it('grants only the offered scopes, and mints tokens for other client ids', async () => {
  const token = await idp.clientCredentialsToken({
    resource: RESOURCE,
    scope: 'mcp tools:read admin',
    clientId: 'billing-bot',
  });
  const { payload } = await verify(token);
  expect(payload).toMatchObject({ sub: 'billing-bot', scope: 'mcp tools:read' });
});

it('runs the authorization code + PKCE flow for the built-in public client as the given user', async () => {
  const token = await idp.authorizationCodeToken({ resource: RESOURCE, user: 'bob' });
  const { payload } = await verify(token);
  expect(payload).toMatchObject({
    sub: 'bob',
    client_id: idp.clients.public.id,
    aud: RESOURCE,
    scope: 'mcp',
    ...CLAIMS,
  });
  const alice = await verify(await idp.authorizationCodeToken({ resource: RESOURCE }));
  expect(alice.payload.sub).toBe(TEST_IDP_DEFAULT_USER);
});

it('completes an authorization for a dynamically registered client, as the MCP SDK drives it', async () => {
  const { registration_endpoint, authorization_endpoint, token_endpoint } = await discovery();
  const redirectUri = 'http://localhost:8090/callback';
  const registered = await fetch(registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'sdk-like client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  expect(registered.status).toBe(201);
  const { client_id } = (await registered.json()) as { client_id: string };

  const { verifier, challenge } = pkcePair();
  const state = randomUUID();
  const url = new URL(authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    scope: 'mcp',
    resource: RESOURCE,
  }).toString();
  const {
    code,
    state: returned,
    callbackUrl,
  } = await completeAuthorization(url, { user: 'carol' });
  expect(returned).toBe(state);
  expect(callbackUrl.href.startsWith(`${redirectUri}?`)).toBe(true);

  const exchanged = await fetch(token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id,
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      resource: RESOURCE,
    }),
  });
  const answer = (await exchanged.json()) as Record<string, unknown>;
  expect(exchanged.status).toBe(200);
  expect(answer).toMatchObject({ token_type: 'Bearer', scope: 'mcp' });
  expect(typeof answer.refresh_token).toBe('string');
  const { payload } = await verify(answer.access_token as string);
  expect(payload).toMatchObject({ sub: 'carol', client_id, aud: RESOURCE });
});

it('refuses a code flow without PKCE, at the redirect', async () => {
  const url = new URL(`${idp.issuer}/auth`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: idp.clients.public.id,
    redirect_uri: idp.clients.public.redirectUri,
    scope: 'mcp',
    resource: RESOURCE,
  }).toString();
  await expect(completeAuthorization(url)).rejects.toThrow(/invalid_request.*PKCE/);
});

it('rotates keys: a new kid, both verify while the old key is published, the old fails once dropped', async () => {
  const before = await idp.clientCredentialsToken({ resource: RESOURCE });
  const oldKid = idp.currentKid;

  await idp.rotateKeys();
  const after = await idp.clientCredentialsToken({ resource: RESOURCE });
  expect(decodeProtectedHeader(after).kid).toBe(idp.currentKid);
  expect(idp.currentKid).not.toBe(oldKid);
  expect(decodeProtectedHeader(before).kid).toBe(oldKid);
  const published = createRemoteJWKSet(new URL(idp.jwksUri));
  await verify(before, published);
  await verify(after, published);

  await idp.dropOldKeys();
  const fresh = createRemoteJWKSet(new URL(idp.jwksUri));
  await expect(verify(before, fresh)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
  await verify(after, fresh);
});

it('keeps issued tokens verifiable with an already-fetched JWKS after it stops, and restarts', async () => {
  const token = await idp.clientCredentialsToken({ resource: RESOURCE });
  const cached = createRemoteJWKSet(new URL(idp.jwksUri));
  await verify(token, cached);

  await idp.stop();
  await expect(fetch(idp.jwksUri)).rejects.toThrow();
  await verify(token, cached);
  await expect(verify(token)).rejects.toThrow();

  await idp.start();
  await verify(await idp.clientCredentialsToken({ resource: RESOURCE }));
});

it('signs ES256 when asked', async () => {
  const es = await startTestIdp({ signingAlg: 'ES256' });
  try {
    const token = await es.authorizationCodeToken({ resource: RESOURCE });
    const jwks = createRemoteJWKSet(new URL(es.jwksUri));
    const { protectedHeader } = await jwtVerify(token, jwks, {
      issuer: es.issuer,
      audience: RESOURCE,
    });
    expect(protectedHeader.alg).toBe('ES256');
  } finally {
    await es.stop();
  }
});
