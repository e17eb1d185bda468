import {
  canonicalUrl,
  type ConfigStore,
  ErrorCode,
  GatewayError,
  type OAuthConfig,
  type OAuthIssuerConfig,
  type Principal,
  resolvePermissions,
} from '#common';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import type { Logger } from 'pino';

/** An unknown `kid` refetches an issuer's keys at most this often (SPEC §3 `jwks_cache`). */
const REFETCH_COOLDOWN_MS = 30_000;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_CACHED_TOKENS = 10_000;
const MAX_SUBJECT = 256;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const JWT_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/;

/** A bearer value that is a JWT (three base64url parts whose first is a JOSE header), not a key. */
export function looksLikeJwt(value: string): boolean {
  if (!JWT_SHAPE.test(value)) return false;
  try {
    return typeof decodeProtectedHeader(value).alg === 'string';
  } catch {
    return false;
  }
}

/** The resource URL of a route (RFC 8707): what its tokens' `aud` must name. */
export function resourceUrl(publicUrl: string, name: string): string {
  return `${publicUrl}/mcp/${name}`;
}

/** A refused token: 401 (invalid) or 403 (valid, without a required scope). */
export class TokenRefused extends GatewayError {}

interface IssuerKeys {
  /** The keys last fetched, kept when a refetch fails (the provider down: known keys still verify). */
  set?: ReturnType<typeof createLocalJWKSet>;
  kids: Set<string>;
  fetchedAt: number;
  /** When the last fetch started, whatever its outcome. */
  lastAttempt: number;
  /** The last fetch failed: stale keys are then refreshed again only after the cool-down. */
  failed: boolean;
  /** The one fetch in flight. */
  loading?: Promise<void>;
  /** The `jwks_uri` of the config the keys were fetched under (undefined: discovered). */
  configured: string | undefined;
  /** Where the keys are fetched from (configured, or found by discovery once). */
  jwksUri?: string;
}

interface CachedToken {
  principal: Principal;
  until: number;
  /** The route it was verified for (its audience). */
  name: string;
}

/**
 * The OAuth 2.1 resource server of the edge (SPEC §3 `auth.oauth`, §4): verifies JWT access
 * tokens of the configured issuers locally, with `jose`, never a network round trip per request.
 *
 * - Keys: each issuer's JWKS (its `jwks_uri`, or the one its discovery document names) is fetched
 *   once and kept for `jwks_cache`; a token whose `kid` is not among them refetches it, at most
 *   every 30 s. Known keys never wait on the issuer: once older than `jwks_cache` they keep
 *   verifying while one refetch runs in the background (after a failed one, the next waits 30 s).
 *   When a refetch fails, the keys fetched before keep verifying (a provider that is down does not
 *   stop its users) and an unknown `kid` is refused. A config reload keeps an issuer's keys unless
 *   the issuer or its `jwks_uri` changed (a reload during an outage must not lose them).
 * - Checks: signature under an allowed algorithm (never `none` or HS*: jose refuses a symmetric
 *   algorithm for a public key, and the allow-list never contains one), `iss` exactly, `aud` (the
 *   route's resource URL per RFC 8707 unless `audiences` is set), `exp`/`nbf` with `clock_skew`,
 *   `sub`, then `required_scopes` (403 `insufficient_scope` when one is missing).
 * - Principal: `oauth:{issuer}#{sub}` as its key id, user and tenant from the configured claims, roles from
 *   the roles claim through `role_map`, resolved against `roles` like a key's. Without a roles
 *   claim configured, a token may use any namespace: its audience names the route it is for.
 * - A verified token is remembered (per resource) until it expires or the config changes: a reload
 *   may change its audience, scopes, claims or roles, so it is judged again (locally: the keys
 *   stay).
 */
export class TokenVerifier {
  private readonly keys = new Map<string, IssuerKeys>();
  private readonly cache = new Map<string, CachedToken>();
  /** Counts reloads: a verification that began under an older config is not remembered. */
  private generation = 0;

  constructor(
    private readonly config: ConfigStore,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    private readonly fetcher: typeof fetch = fetch,
  ) {
    config.onChange((next) => {
      this.generation++;
      this.cache.clear();
      // Keys depend only on where they come from: the issuer (its discovery documents) and its
      // `jwks_uri`. Algorithms, audiences, scopes and claims are applied per token from the config
      // in force, so any other edit keeps the keys, and an issuer that is down keeps working.
      const issuers = new Map(next.auth.oauth?.issuers.map((issuer) => [issuer.issuer, issuer]));
      for (const [name, entry] of this.keys) {
        const issuer = issuers.get(name);
        if (!issuer || issuer.jwks_uri !== entry.configured) this.keys.delete(name);
      }
    });
  }

  get enabled(): boolean {
    return this.config.current.auth.oauth !== undefined;
  }

  /**
   * The hot path: the principal of a token verified before for the route `name` and not expired
   * since, without parsing it again (one map lookup); undefined otherwise.
   */
  cached(token: string, name: string, now = this.clock()): Principal | undefined {
    const cached = this.cache.get(token);
    return cached && cached.name === name && cached.until > now ? cached.principal : undefined;
  }

  /** The principal of a JWT presented for the route `name`; throws TokenRefused. */
  async verify(token: string, name: string, now = this.clock()): Promise<Principal> {
    const { auth, server } = this.config.current;
    const oauth = auth.oauth;
    if (!oauth || !server.public_url) throw invalidToken('OAuth is not configured');
    const hit = this.cached(token, name, now);
    if (hit) return hit;
    const generation = this.generation;
    const resource = resourceUrl(server.public_url, name);

    let claimed: JWTPayload;
    try {
      claimed = decodeJwt(token);
    } catch {
      throw invalidToken('The access token is not a valid JWT');
    }
    const issuer = oauth.issuers.find((candidate) => candidate.issuer === claimed.iss);
    if (!issuer)
      throw invalidToken('The access token is from an issuer this gateway does not trust');
    const header = decodeProtectedHeader(token);
    const set = await this.keySet(issuer, typeof header.kid === 'string' ? header.kid : undefined);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, set, {
        issuer: issuer.issuer,
        algorithms: issuer.algorithms,
        clockTolerance: Math.round(oauth.clock_skew / 1000),
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(now),
      }));
    } catch (error) {
      throw invalidToken(describe(error));
    }
    if (!forAudience(payload.aud, issuer.audiences ?? [resource])) {
      throw invalidToken('The access token is not for this resource (aud)');
    }
    const granted = scopesOf(payload);
    const missing = issuer.required_scopes.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      throw new TokenRefused(
        ErrorCode.InsufficientScope,
        `The access token lacks the scope ${missing.join(' ')}`,
      );
    }
    const principal = this.principalOf(payload, issuer);
    if (generation !== this.generation) return principal;
    this.remember(
      token,
      name,
      principal,
      Math.min((payload.exp ?? 0) * 1000, now + oauth.jwks_cache),
    );
    return principal;
  }

  private principalOf(payload: JWTPayload, issuer: OAuthIssuerConfig): Principal {
    const config = this.config.current;
    const sub = payload.sub;
    // A subject names one principal: a string (RFC 7519), never cut (two long ones would be one)
    // and without control characters (which no identifier needs, and a log line or a key of the
    // gateway's could be split on).
    if (
      typeof sub !== 'string' ||
      sub.length === 0 ||
      sub.length > MAX_SUBJECT ||
      CONTROL.test(sub)
    )
      throw invalidToken(
        `The access token's subject must be a string of 1 to ${MAX_SUBJECT} characters without control characters`,
      );
    const claims = issuer.claims;
    const rolesClaim = claims.roles === undefined ? undefined : payload[claims.roles];
    const granted =
      claims.roles === undefined
        ? resolvePermissions(config, { namespaces: ['*'] })
        : resolvePermissions(config, { roles: roleNames(rolesClaim, issuer.role_map) });
    return {
      // A subject is unique within its issuer only: two issuers' "alice" are two principals
      // (their sessions, request states, limits and backend sessions apart). An issuer has no
      // fragment (RFC 8414), so the first `#` ends it.
      keyId: `oauth:${issuer.issuer}#${sub}`,
      user: stringClaim(payload[claims.user]) ?? sub,
      tenant: claims.tenant === undefined ? null : stringClaim(payload[claims.tenant]),
      role: granted.role,
      authMethod: 'oauth',
      namespaces: granted.namespaces,
      roles: granted.roles,
      tools: granted.tools,
      rateLimit: null,
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }

  /** One entry per token (a token is for one audience: a second route replaces the first). */
  private remember(key: string, name: string, principal: Principal, until: number): void {
    if (this.cache.size >= MAX_CACHED_TOKENS) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.delete(key);
    this.cache.set(key, { principal, until, name });
  }

  /**
   * The issuer's keys. Known keys are answered at once, refreshed in the background once stale; a
   * request waits only for keys it cannot be answered without (none yet, or an unknown `kid`,
   * which fetches at most every 30 s unless the keys are due for a refetch anyway) and then joins
   * the one fetch in flight.
   */
  private async keySet(
    issuer: OAuthIssuerConfig,
    kid: string | undefined,
  ): Promise<ReturnType<typeof createLocalJWKSet>> {
    const oauth = this.config.current.auth.oauth as OAuthConfig;
    let entry = this.keys.get(issuer.issuer);
    if (!entry) {
      entry = {
        kids: new Set(),
        fetchedAt: 0,
        lastAttempt: 0,
        failed: false,
        configured: issuer.jwks_uri,
      };
      this.keys.set(issuer.issuer, entry);
    }
    const now = this.clock();
    const cooled = now - entry.lastAttempt >= REFETCH_COOLDOWN_MS;
    // Stale keys are refetched as often as `jwks_cache` says, failed fetches every 30 s.
    const due = now - entry.fetchedAt > oauth.jwks_cache && (!entry.failed || cooled);
    if (entry.set && (kid === undefined || entry.kids.has(kid))) {
      if (due) void this.refetch(issuer, entry);
      return entry.set;
    }
    if (entry.loading || !entry.set || cooled || due) await this.refetch(issuer, entry);
    if (!entry.set) throw invalidToken("The issuer's signing keys are unavailable");
    return entry.set;
  }

  /** The fetch in flight, or a new one: never two at once per issuer. Never rejects. */
  private refetch(issuer: OAuthIssuerConfig, entry: IssuerKeys): Promise<void> {
    entry.loading ??= this.load(issuer, entry).finally(() => (entry.loading = undefined));
    return entry.loading;
  }

  private async load(issuer: OAuthIssuerConfig, entry: IssuerKeys): Promise<void> {
    entry.lastAttempt = this.clock();
    try {
      entry.jwksUri ??= issuer.jwks_uri ?? (await this.discover(issuer.issuer));
      const jwks = (await this.getJson(entry.jwksUri)) as JSONWebKeySet;
      if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array');
      entry.set = createLocalJWKSet(jwks);
      entry.kids = new Set(jwks.keys.map((key) => key.kid).filter((kid) => kid !== undefined));
      entry.fetchedAt = this.clock();
      entry.failed = false;
    } catch (error) {
      entry.failed = true;
      this.logger.warn(
        { err: String(error), issuer: issuer.issuer, jwks_uri: entry.jwksUri },
        entry.set
          ? 'could not refetch the issuer keys; the keys fetched before stay in use'
          : 'could not fetch the issuer keys',
      );
    }
  }

  /** jwks_uri from the issuer's OpenID discovery document, else its RFC 8414 metadata. */
  private async discover(issuer: string): Promise<string> {
    const url = new URL(issuer);
    const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    const candidates = [
      `${url.origin}${path}/.well-known/openid-configuration`,
      `${url.origin}/.well-known/oauth-authorization-server${path}`,
    ];
    for (const candidate of candidates) {
      try {
        const document = (await this.getJson(candidate)) as { jwks_uri?: unknown };
        if (typeof document.jwks_uri === 'string') return document.jwks_uri;
      } catch {
        // try the next
      }
    }
    throw new Error(`no jwks_uri in the discovery documents of ${issuer}`);
  }

  private async getJson(url: string): Promise<unknown> {
    const response = await this.fetcher(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }
}

function invalidToken(message: string): TokenRefused {
  return new TokenRefused(ErrorCode.Unauthorized, message);
}

/** What failed, in words a client can act on (never key material or addresses). */
function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The access token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The access token is not valid yet (nbf)';
    return `The access token's ${error.claim} claim is invalid`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return 'The access token is signed with an algorithm this gateway does not accept';
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return 'The access token is signed with a key this gateway does not know';
  }
  return 'The access token is invalid';
}

/** Whether `aud` names one of `accepted`, both compared canonical (canonicalUrl). */
function forAudience(aud: unknown, accepted: readonly string[]): boolean {
  const values = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  const wanted = new Set(accepted.map(canonicalUrl));
  return values.some((value) => typeof value === 'string' && wanted.has(canonicalUrl(value)));
}

function scopesOf(payload: JWTPayload): Set<string> {
  const scopes = new Set<string>();
  if (typeof payload.scope === 'string')
    for (const s of payload.scope.split(' ')) if (s) scopes.add(s);
  const scp = payload.scp;
  if (Array.isArray(scp)) {
    for (const s of scp) if (typeof s === 'string') scopes.add(s);
  } else if (typeof scp === 'string') {
    for (const s of scp.split(' ')) if (s) scopes.add(s);
  }
  return scopes;
}

function roleNames(claim: unknown, roleMap: Record<string, string> | undefined): string[] {
  const values = Array.isArray(claim)
    ? claim.filter((value): value is string => typeof value === 'string')
    : typeof claim === 'string'
      ? claim.split(/[\s,]+/).filter(Boolean)
      : [];
  if (!roleMap) return values;
  return values.filter((value) => Object.hasOwn(roleMap, value)).map((value) => roleMap[value]);
}

function stringClaim(value: unknown): string | null {
  return typeof value === 'string' && value ? value.slice(0, MAX_SUBJECT) : null;
}
