import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  calculateJwkThumbprint,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import type {
  AccessTokenModel,
  Client,
  Interaction,
  KoaContextWithOIDC,
  Provider,
} from 'oidc-provider';
import { freePort } from './processes.js';

/**
 * A real OpenID provider for the gateway's tests: panva's certified `oidc-provider` on
 * 127.0.0.1, issuing JWT access tokens (RFC 9068) for any RFC 8707 resource indicator, with
 * login and consent automated so the authorization code + PKCE flow runs without a browser.
 *
 * Everything runs in-process; stopping, restarting and key rotation keep the port, the issuer,
 * the clients (static and dynamically registered) and the grants.
 */
export interface TestIdp {
  /** `http://127.0.0.1:PORT`, no trailing slash; discovery at `/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The JWKS URL advertised in discovery (`${issuer}/jwks`). */
  readonly jwksUri: string;
  /** `kid` of the key that signs new tokens. */
  readonly currentKid: string;
  /** The built-in clients. Dynamic registration is open too (`registration_endpoint`). */
  readonly clients: {
    /** `client_secret_basic`, `client_credentials` only. */
    confidential: { id: string; secret: string };
    /**
     * `token_endpoint_auth_method: none`, authorization code + PKCE (+ refresh token); its
     * redirect URI (`${issuer}/callback`) is never fetched: the flow stops at the redirect.
     */
    public: { id: string; redirectUri: string };
  };
  /**
   * A client_credentials token for `resource` (RFC 8707): a JWT whose `aud` is `resource` and
   * `sub` the client id. `clientId` defaults to the built-in confidential client; another id is
   * registered on first use with the same secret, so tests can mint tokens for several subjects.
   */
  clientCredentialsToken(options: {
    resource: string;
    scope?: string;
    clientId?: string;
  }): Promise<string>;
  /**
   * The whole authorization code + PKCE flow for the built-in public client, over HTTP, with
   * login (as `user`, default {@link TEST_IDP_DEFAULT_USER}) and consent automated; returns the
   * JWT access token for `resource` (`sub` = `user`).
   */
  authorizationCodeToken(options: {
    resource: string;
    scope?: string;
    user?: string;
  }): Promise<string>;
  /**
   * Signs arbitrary claims with the current key (header `typ: at+jwt`): for negative tests
   * (expired, wrong issuer, audience or scope) that the real flows would never produce.
   * `iss` defaults to the issuer, `iat` to now and `exp` to now + the token TTL.
   */
  signToken(claims: JWTPayload): Promise<string>;
  /**
   * Rotates the signing key: new tokens carry a new `kid`. The old keys stay published (so
   * tokens they signed still verify) until {@link TestIdp.dropOldKeys}, or are dropped at once
   * with `dropOld: true`.
   */
  rotateKeys(options?: { dropOld?: boolean }): Promise<void>;
  /** Unpublishes every key but the current one: tokens signed by them stop verifying. */
  dropOldKeys(): Promise<void>;
  /** Stops listening (tokens already issued stay valid JWTs; the port is kept). Idempotent. */
  stop(): Promise<void>;
  /** Listens again on the same port (after {@link TestIdp.stop}). Idempotent. */
  start(): Promise<void>;
  /** Errors oidc-provider answered 500 with (it logs nothing): for failure messages. */
  readonly serverErrors: readonly Error[];
}

/** Claims every access token carries beyond the standard ones; a function to vary by subject. */
export type TestIdpClaims =
  | Record<string, unknown>
  | ((token: { sub: string; clientId: string; scope: string }) => Record<string, unknown>);

export interface TestIdpOptions {
  /** Scopes offered besides `mcp` (always offered). */
  scopes?: string[];
  /** Extra claims in every access token (`email`, `tenant_id`, `groups`, ...). */
  claims?: TestIdpClaims;
  /** Access token lifetime, both grants (default 3600). */
  accessTokenTtlSeconds?: number;
  signingAlg?: 'RS256' | 'ES256';
  /**
   * The resource a request without `resource` gets (default: none, so such a token is opaque
   * and useless to the gateway, as it would be with a real IdP that has no default audience).
   */
  defaultResource?: string;
}

/** Who logs in when the flow is not told: `authorizationCodeToken` and `completeAuthorization`. */
export const TEST_IDP_DEFAULT_USER = 'alice';

// The automated interaction logs in whoever this header names; completeAuthorization sends it,
// so the authorization request itself stays exactly what the client built.
const USER_HEADER = 'x-test-idp-user';
const INTERACTION_PATH = '/interaction/';
const BASE_SCOPE = 'mcp';

interface SigningKey {
  kid: string;
  /** Private JWK, as oidc-provider's `jwks` wants it. */
  jwk: JWK;
  privateKey: CryptoKey;
}

async function newSigningKey(alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, jwk: { ...jwk, kid, alg, use: 'sig' }, privateKey };
}

// oidc-provider prints notices with console.info/warn: at import (Node 20 is below its
// supported LTS) and at construction. Tests want no console noise, and the notices say nothing
// a test can act on; anything else logged meanwhile passes through.
async function quietly<T>(fn: () => T | Promise<T>): Promise<T> {
  const { info, warn } = console;
  const filter =
    (original: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) return;
      original.apply(console, args);
    };
  console.info = filter(info);
  console.warn = filter(warn);
  try {
    return await fn();
  } finally {
    console.info = info;
    console.warn = warn;
  }
}

/** Starts a test IdP on a free 127.0.0.1 port. Stop it with `stop()` in `afterAll`. */
export async function startTestIdp(options: TestIdpOptions = {}): Promise<TestIdp> {
  const [{ Provider: ProviderClass }, { createMemoryAdapter }] = await quietly(() =>
    Promise.all([import('oidc-provider'), import('oidc-provider/lib/adapters/memory_adapter.js')]),
  );

  const alg = options.signingAlg ?? 'RS256';
  const ttl = options.accessTokenTtlSeconds ?? 3600;
  const scopes = [...new Set([BASE_SCOPE, ...(options.scopes ?? [])])];
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  // One store for every Provider this IdP builds: a key rotation (a new Provider) keeps the
  // registered clients, sessions and grants.
  const adapter = createMemoryAdapter();
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const secret = randomBytes(24).toString('base64url');
  const clients = {
    confidential: { id: `confidential-${randomUUID()}`, secret },
    public: { id: `public-${randomUUID()}`, redirectUri: `${issuer}/callback` },
  };
  const confidentialMetadata = (clientId: string) => ({
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const knownClients = new Set([clients.confidential.id, clients.public.id]);
  const serverErrors: Error[] = [];

  let keys = [await newSigningKey(alg)];

  const claimsFor = (token: AccessTokenModel): Record<string, unknown> | undefined => {
    if (!options.claims) return undefined;
    if (typeof options.claims !== 'function') return options.claims;
    return options.claims({
      sub: token.accountId ?? token.clientId,
      clientId: token.clientId,
      scope: token.scope ?? '',
    });
  };

  const buildProvider = (): Provider => {
    const provider = new ProviderClass(issuer, {
      adapter,
      jwks: { keys: keys.map((key) => key.jwk) },
      clients: [
        confidentialMetadata(clients.confidential.id),
        {
          client_id: clients.public.id,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [clients.public.redirectUri],
          token_endpoint_auth_method: 'none',
        },
      ],
      // OIDC scopes as far as oidc-provider is concerned; listing the resource scopes here too
      // puts them in discovery's scopes_supported, which the MCP SDK may read.
      scopes: ['openid', 'offline_access', ...scopes],
      clientDefaults: {
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        // RS256 by default: with an ES256-only key set nothing could sign ID tokens.
        id_token_signed_response_alg: alg,
      },
      cookies: { keys: cookieKeys },
      features: {
        // Replaced by the automated interaction below (its HTML forms are for humans).
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        // Open dynamic client registration, as MCP clients expect (RFC 7591).
        registration: { enabled: true },
        rpInitiatedLogout: { enabled: false },
        resourceIndicators: {
          enabled: true,
          // Without a resource indicator a token would be opaque; see TestIdpOptions.
          defaultResource: (_ctx: KoaContextWithOIDC, _client: Client, oneOf?: string[]) =>
            oneOf ?? options.defaultResource,
          // The code flow's token request may omit `resource`: it gets the authorized one.
          useGrantedResource: () => true,
          // Every resource is a JWT audience: the gateway's URLs carry its test-chosen port.
          getResourceServerInfo: (_ctx: KoaContextWithOIDC, resource: string) => ({
            audience: resource,
            scope: scopes.join(' '),
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg, kid: keys[0].kid } },
          }),
        },
      },
      interactions: {
        url: (_ctx: KoaContextWithOIDC, interaction: { uid: string }) =>
          `${INTERACTION_PATH}${interaction.uid}`,
      },
      // OAuth 2.1: PKCE for every client using the code flow, not only public ones.
      pkce: { required: () => true },
      // MCP clients register for refresh_token and expect one, without asking offline_access.
      issueRefreshToken: (_ctx: KoaContextWithOIDC, client: Client) =>
        client.grantTypeAllowed('refresh_token'),
      extraTokenClaims: (_ctx: KoaContextWithOIDC, token: AccessTokenModel) => claimsFor(token),
      findAccount: (_ctx: KoaContextWithOIDC, sub: string) => ({
        accountId: sub,
        claims: () => ({ sub }),
      }),
      // The defaults below work but print a "you SHOULD change" notice when first used.
      clientBasedCORS: () => true,
      renderError: (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
        ctx.type = 'json';
        ctx.body = out;
      },
      ttl: {
        AccessToken: ttl,
        ClientCredentials: ttl,
        AuthorizationCode: 60,
        IdToken: 3600,
        RefreshToken: 24 * 3600,
        Interaction: 600,
        Session: 24 * 3600,
        Grant: 24 * 3600,
      },
    });
    provider.on('server_error', (_ctx: unknown, error: Error) => serverErrors.push(error));
    return provider;
  };

  let provider = await quietly(buildProvider);
  let handle = provider.callback();

  // Login as the user the request names, then consent to everything asked: the two prompts
  // oidc-provider's default policy has, each resumed by a redirect back to /auth.
  const interact = async (req: IncomingMessage, res: ServerResponse) => {
    const current = provider;
    const interaction: Interaction = await current.interactionDetails(req, res);
    const header = req.headers[USER_HEADER];
    const user = typeof header === 'string' && header ? header : TEST_IDP_DEFAULT_USER;
    switch (interaction.prompt.name) {
      case 'login':
        await current.interactionFinished(
          req,
          res,
          { login: { accountId: user } },
          { mergeWithLastSubmission: false },
        );
        return;
      case 'consent': {
        const { details } = interaction.prompt;
        const accountId = interaction.session?.accountId ?? user;
        const grant =
          (interaction.grantId ? await current.Grant.find(interaction.grantId) : undefined) ??
          new current.Grant({ accountId, clientId: String(interaction.params.client_id) });
        const oidcScopes = details.missingOIDCScope as string[] | undefined;
        if (oidcScopes) grant.addOIDCScope(oidcScopes.join(' '));
        const oidcClaims = details.missingOIDCClaims as string[] | undefined;
        if (oidcClaims) grant.addOIDCClaims(oidcClaims);
        const resourceScopes = details.missingResourceScopes as
          Record<string, string[]> | undefined;
        for (const [resource, granted] of Object.entries(resourceScopes ?? {})) {
          grant.addResourceScope(resource, granted.join(' '));
        }
        await current.interactionFinished(
          req,
          res,
          { consent: { grantId: await grant.save() } },
          { mergeWithLastSubmission: true },
        );
        return;
      }
      default:
        throw new Error(`unexpected prompt ${interaction.prompt.name}`);
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // RFC 8414's well-known path, which MCP clients try first; the OIDC document is a superset.
    if (req.url === '/.well-known/oauth-authorization-server') {
      req.url = '/.well-known/openid-configuration';
    }
    if (req.url?.startsWith(INTERACTION_PATH)) {
      interact(req, res).catch((error: Error) => {
        serverErrors.push(error);
        res.statusCode = 500;
        res.end(`test IdP interaction failed: ${error.message}`);
      });
      return;
    }
    void handle(req, res);
  };

  let server: Server | undefined;

  const start = async () => {
    if (server) return;
    const listening = createServer(onRequest);
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(port, '127.0.0.1', () => resolve());
    });
    server = listening;
  };

  const stop = async () => {
    const closing = server;
    if (!closing) return;
    server = undefined;
    await new Promise<void>((resolve) => {
      closing.close(() => resolve());
      closing.closeAllConnections();
    });
  };

  // oidc-provider reads its key set once, at construction: a rotation is a new Provider over
  // the same store, swapped in under the running server.
  const publish = async (next: SigningKey[]) => {
    keys = next;
    provider = await quietly(buildProvider);
    handle = provider.callback();
  };

  const tokenRequest = async (body: Record<string, string>, auth?: string): Promise<string> => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(auth ? { authorization: auth } : {}),
      },
      body: new URLSearchParams(body),
    });
    const answer = (await res.json()) as TokenResponse;
    if (!res.ok || !answer.access_token) {
      throw new Error(
        `test IdP token request failed: ${res.status} ${answer.error} ${answer.error_description ?? ''}`,
      );
    }
    return answer.access_token;
  };

  await start();

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    get currentKid() {
      return keys[0].kid;
    },
    clients,
    serverErrors,

    async clientCredentialsToken({ resource, scope = BASE_SCOPE, clientId }) {
      const id = clientId ?? clients.confidential.id;
      if (!knownClients.has(id)) {
        await adapter('Client').upsert(id, confidentialMetadata(id));
        knownClients.add(id);
      }
      const basic = `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`;
      return tokenRequest(
        { grant_type: 'client_credentials', resource, scope },
        `Basic ${Buffer.from(basic).toString('base64')}`,
      );
    },

    async authorizationCodeToken({ resource, scope = BASE_SCOPE, user }) {
      const { verifier, challenge } = pkcePair();
      const url = new URL(`${issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: clients.public.id,
        response_type: 'code',
        redirect_uri: clients.public.redirectUri,
        scope,
        resource,
        state: randomUUID(),
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }).toString();
      const { code } = await completeAuthorization(url, { user });
      return tokenRequest({
        grant_type: 'authorization_code',
        client_id: clients.public.id,
        code,
        redirect_uri: clients.public.redirectUri,
        code_verifier: verifier,
        resource,
      });
    },

    async signToken(claims) {
      const now = Math.floor(Date.now() / 1000);
      const [{ kid, privateKey }] = keys;
      return new SignJWT({ iss: issuer, iat: now, exp: now + ttl, ...claims })
        .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
        .sign(privateKey);
    },

    async rotateKeys({ dropOld = false } = {}) {
      const fresh = await newSigningKey(alg);
      await publish(dropOld ? [fresh] : [fresh, ...keys]);
    },

    async dropOldKeys() {
      await publish(keys.slice(0, 1));
    },

    stop,
    start,
  };
}

interface TokenResponse {
  access_token?: string;
  error?: string;
  error_description?: string;
}

/** A PKCE verifier and its S256 challenge (RFC 7636). */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * Drives an authorization request of the test IdP to its end without a browser: follows the
 * redirects by hand carrying the IdP's cookies, through the automated login (as `user`) and
 * consent, until the redirect to the client's `redirect_uri`, and returns what that carries.
 * For an `OAuthClientProvider.redirectToAuthorization(url)` of the MCP SDK: the URL is used as
 * the client built it (dynamically registered client, PKCE, state, resource).
 * Throws with the IdP's error when the redirect carries one (`error`, `error_description`).
 */
export async function completeAuthorization(
  authorizationUrl: URL,
  { user = TEST_IDP_DEFAULT_USER }: { user?: string } = {},
): Promise<{ code: string; state?: string; callbackUrl: URL }> {
  const redirectUri = authorizationUrl.searchParams.get('redirect_uri');
  const isCallback = (url: URL) =>
    redirectUri
      ? `${url.origin}${url.pathname}` === new URL(redirectUri).href.split(/[?#]/)[0]
      : url.origin !== authorizationUrl.origin;
  const cookies = new Map<string, string>();
  let url = authorizationUrl;
  // /auth → login → /auth/:uid → consent → /auth/:uid → redirect_uri, with a margin.
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(url, {
      redirect: 'manual',
      headers: {
        [USER_HEADER]: user,
        cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; '),
      },
    });
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0];
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      if (value) cookies.set(name, value);
      else cookies.delete(name);
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(
        `authorization stopped at ${url.href}: ${res.status} ${(await res.text()).slice(0, 500)}`,
      );
    }
    await res.body?.cancel();
    const next = new URL(location, url);
    if (isCallback(next)) {
      const error = next.searchParams.get('error');
      if (error) {
        throw new Error(
          `authorization refused: ${error} ${next.searchParams.get('error_description') ?? ''}`,
        );
      }
      const code = next.searchParams.get('code');
      if (!code) throw new Error(`no code in the redirect: ${next.href}`);
      return { code, state: next.searchParams.get('state') ?? undefined, callbackUrl: next };
    }
    url = next;
  }
  throw new Error(`authorization did not reach the redirect_uri within 10 redirects`);
}
