import { z } from 'zod';
import { NATS_PREFIX } from '../contracts/nats-names.js';
import { canonicalUrl } from './canonical-url.js';
import { parseDuration } from './duration.js';
import { ORIGIN_PATTERN_HELP, parseOriginPattern } from './origin-pattern.js';

export const NAMESPACE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A key id (config file and admin API alike): stable, shown in logs and analytics. */
export const KEY_ID = /^[A-Za-z0-9._@-]{1,128}$/;
export const KEY_ID_HELP = 'must be 1-128 characters of A-Z a-z 0-9 . _ @ -';

/**
 * Records looked up by a name the client chooses (`/mcp/{namespace}`) hold only their own
 * entries: on a plain object `namespaces['constructor']` would find Object's constructor.
 */
function withoutPrototype<T>(record: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, record);
}

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid duration "${text}" (use e.g. 500ms, 30s, 5m, 1h, 7d)`,
    });
    return z.NEVER;
  }
  return ms;
});

const rateLimit = z.strictObject({
  requests: z.number().int().positive(),
  per: duration,
});

const glob = z.string().min(1);

/** Allow/deny globs; deny wins over allow. */
const toolRules = z.strictObject({
  allow: z.array(glob).default(['*']),
  deny: z.array(glob).default([]),
});

const originPattern = z.string().refine((text) => parseOriginPattern(text) !== undefined, {
  error: (issue) =>
    `invalid origin pattern ${JSON.stringify(issue.input)} (${ORIGIN_PATTERN_HELP})`,
});

/** How clients reach the gateway (OAuth resource ids are built from it): kept canonical (canonicalUrl). */
const publicUrl = z
  .url({ protocol: /^https?$/, error: 'invalid URL (use e.g. https://mcp.example.com)' })
  .refine(
    (text) => {
      // Runs after a failed URL check too (zod lists every issue): that one has been reported.
      if (!URL.canParse(text)) return true;
      const url = new URL(text);
      return !url.search && !url.hash && !url.username && !url.password;
    },
    { error: 'must be an http(s) URL without query, fragment or credentials' },
  )
  .transform(canonicalUrl);

const httpUpstream = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'invalid URL' }),
  transport: z.enum(['streamable', 'sse']).default('streamable'),
  headers: z.record(z.string(), z.string()).default({}),
});

const stdioUpstream = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  idle_timeout: duration.default(600_000),
  max_children: z.number().int().positive().default(32),
  /** Children started ahead of sessions; unset: 1 once the namespace has been used, 0 before. */
  warm: z.number().int().min(0).optional(),
  /** One child serves many sessions (ids remapped; no isolation: only for stateless servers). */
  shared: z.boolean().default(false),
});

/** Keys of a stdio upstream only: on a url upstream they are named as such, not as typos. */
const STDIO_ONLY = ['warm', 'shared'] as const;

// The branch is chosen by the `command` field rather than by z.union, which reports only "no
// member matched" at `upstream` when both fail; an operator needs the field at fault
// (`namespaces.search.upstream.url: invalid URL`).
const upstream = z
  .unknown()
  .transform((value, ctx): z.output<typeof httpUpstream> | z.output<typeof stdioUpstream> => {
    if (!isRecord(value) || !('url' in value || 'command' in value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected { url, transport?, headers? } or { command, args?, env? }',
      });
      return z.NEVER;
    }
    const stdio = 'command' in value;
    const misplaced = stdio ? [] : STDIO_ONLY.filter((key) => key in value);
    for (const key of misplaced) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `only a stdio upstream (command) takes ${key}; this one has a url`,
      });
    }
    const fields = misplaced.length === 0 ? value : withoutKeys(value, misplaced);
    const result = (stdio ? stdioUpstream : httpUpstream).safeParse(fields);
    if (result.success) return misplaced.length === 0 ? result.data : z.NEVER;
    for (const issue of result.error.issues) ctx.addIssue({ ...issue, input: undefined });
    return z.NEVER;
  });

const namespace = z.strictObject({
  upstream,
  timeout_ms: z.number().int().positive().default(300_000),
  tools: toolRules.default({ allow: ['*'], deny: [] }),
  rate_limit: rateLimit.optional(),
});

/** What a virtual server's client sees of one tool instead of the backend's definition. */
const toolOverride = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'tool names are 1-128 characters of A-Z a-z 0-9 _ . -')
    .optional(),
  title: z.string().optional(),
  description: z.string().optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
});

/** `{ns}` stands for the member's name; the rest is what a tool name may hold. */
export const SERVER_PREFIX = /^(?:\{ns\}|[A-Za-z0-9_.-])*$/;

/** A virtual server (SPEC §3 v2): one MCP endpoint over several namespaces, curated. */
const virtualServer = z.strictObject({
  /** Member namespaces; "*": every namespace the caller may use. */
  namespaces: z.array(z.string()).min(1),
  /** Prefix of tool and prompt names (`{ns}`: the member's name); "" only when names never collide. */
  prefix: z
    .string()
    .max(64)
    .regex(
      SERVER_PREFIX,
      'a prefix holds {ns} and the characters of tool names (A-Z a-z 0-9 _ . -)',
    )
    .default('{ns}__'),
  /** On the prefixed names; intersected with each member's own filter and the caller's scope. */
  tools: toolRules.default({ allow: ['*'], deny: [] }),
  /** By prefixed name: what the client sees instead (name, title, description, annotations). */
  overrides: z.record(z.string(), toolOverride).default({}).transform(withoutPrototype),
});

/** A named permission set that keys (and OAuth principals) hold. */
const role = z.strictObject({
  /** Namespaces this role may use, added to the holder's own. */
  namespaces: z.array(z.string()).default([]),
  /** Applied on top of every namespace's own filter. */
  tools: toolRules.optional(),
  /** May read analytics and use the admin API. */
  admin: z.boolean().default(false),
});

const key = z
  .strictObject({
    id: z.string().regex(KEY_ID, KEY_ID_HELP),
    user: z.string().optional(),
    tenant: z.string().optional(),
    key: z.string().min(16, 'keys are at least 16 characters').optional(),
    key_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, 'must be 64 hex characters (SHA-256 of the key)')
      .optional(),
    role: z.enum(['admin', 'user']).default('user'),
    namespaces: z.array(z.string()).default([]),
    /** Names in `roles`: their namespaces are added, their tool rules applied. */
    roles: z.array(z.string()).default([]),
    /** The key's own tool scope, intersected with its roles' and each namespace's. */
    tools: toolRules.optional(),
    rate_limit: rateLimit.optional(),
    expires_at: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
  })
  .superRefine(
    (value, ctx) => {
      if (!isRecord(value)) return;
      if ((value.key === undefined) === (value.key_sha256 === undefined)) {
        ctx.addIssue({ code: 'custom', message: 'set exactly one of key or key_sha256' });
      }
    },
    // Also when other fields of the key failed: every error of the file is listed at once.
    { when: () => true },
  );

/** Signature algorithms an issuer's tokens may use: asymmetric only ("none" and HS* never). */
export const OAUTH_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const oauthIssuer = z.strictObject({
  /** The `iss` its tokens carry, exactly (no fragment, RFC 8414: principals are `oauth:{issuer}#{sub}`). */
  issuer: z
    .url({ protocol: /^https?$/, error: 'invalid URL' })
    .refine((url) => !url.includes('#'), 'an issuer has no fragment (#)'),
  /** Where its signing keys are; default: `jwks_uri` from its discovery document. */
  jwks_uri: z.url({ protocol: /^https?$/, error: 'invalid URL' }).optional(),
  /** Accepted `aud` values; default: the resource URL of the route (RFC 8707). */
  audiences: z.array(z.string().min(1)).min(1).optional(),
  algorithms: z
    .array(
      z.enum(OAUTH_ALGORITHMS, {
        error: `must be one of ${OAUTH_ALGORITHMS.join(', ')} ("none" and HS* are never accepted)`,
      }),
    )
    .min(1)
    .default(['RS256', 'ES256']),
  required_scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'invalid scope'))
    .default([]),
  /** Which claims fill the principal. */
  claims: z
    .strictObject({
      user: z.string().min(1).default('sub'),
      tenant: z.string().min(1).optional(),
      roles: z.string().min(1).optional(),
    })
    .default({ user: 'sub' }),
  /** Claim value -> role name; without it, claim values name roles directly. */
  role_map: z.record(z.string(), z.string()).optional(),
});

const oauth = z.strictObject({
  issuers: z.array(oauthIssuer).min(1),
  clock_skew: duration.default(30_000),
  jwks_cache: duration.default(600_000),
});

export const gatewayConfigSchema = z
  .strictObject({
    server: z
      .strictObject({
        /** How clients reach the gateway; required once OAuth is configured. */
        public_url: publicUrl.optional(),
        allowed_origins: z.array(originPattern).optional(),
        /** Answer CORS preflights and add CORS headers for allowed origins. */
        cors: z.boolean().default(false),
        max_body_bytes: z.number().int().positive().default(1_048_576),
        trust_proxy: z.boolean().default(false),
        /** The whole request (headers and body) must arrive within this; else 408 and close. */
        request_timeout: duration.default(30_000),
        /** Bridged sessions one key may hold per namespace on one edge. */
        max_sessions_per_key: z.number().int().positive().default(16),
      })
      .default({
        cors: false,
        max_body_bytes: 1_048_576,
        trust_proxy: false,
        request_timeout: 30_000,
        max_sessions_per_key: 16,
      }),
    namespaces: z
      .record(z.string().regex(NAMESPACE_NAME, 'invalid namespace name'), namespace)
      .default({})
      .transform(withoutPrototype),
    servers: z
      .record(z.string().regex(NAMESPACE_NAME, 'invalid server name'), virtualServer)
      .default({})
      .transform(withoutPrototype),
    tenants: z
      .record(z.string(), z.strictObject({ rate_limit: rateLimit.optional() }))
      .default({})
      .transform(withoutPrototype),
    roles: z
      .record(z.string().regex(ROLE_NAME, 'invalid role name'), role)
      .default({})
      .transform(withoutPrototype),
    keys: z.array(key).default([]),
    auth: z
      .strictObject({
        cache_ttl: duration.default(30_000),
        negative_ttl: duration.default(10_000),
        stale_max: duration.default(300_000),
        max_failures: z
          .strictObject({ count: z.number().int().positive(), per: duration })
          .default({ count: 10, per: 60_000 }),
        /** OAuth 2.1 resource server: JWT access tokens from these issuers work beside keys. */
        oauth: oauth.optional(),
      })
      .default({
        cache_ttl: 30_000,
        negative_ttl: 10_000,
        stale_max: 300_000,
        max_failures: { count: 10, per: 60_000 },
      }),
    rate_limits: z
      .strictObject({
        default: rateLimit.default({ requests: 600, per: 60_000 }),
        on_store_error: z.enum(['allow', 'deny']).default('allow'),
      })
      .default({ default: { requests: 600, per: 60_000 }, on_store_error: 'allow' }),
    analytics: z
      .strictObject({ retention_days: z.number().int().positive().default(30) })
      .default({ retention_days: 30 }),
    /**
     * Rug-pull defence (SPEC §3 v2): each tool definition is pinned per namespace the first time
     * any edge relays it; a later different definition is a drift. `alert`: a `tool_drift` event,
     * a metric and a dashboard alarm; `block`: the same, and the tool is hidden (never listed,
     * calls refused) on every edge until an admin approves it; `off`: nothing is pinned.
     */
    tool_pinning: z
      .strictObject({ mode: z.enum(['off', 'alert', 'block']).default('alert') })
      .default({ mode: 'alert' }),
    events: z
      .strictObject({
        /**
         * Prefix of every NATS name (subjects, events stream and consumer, key bucket), so that
         * several deployments can share one NATS; unset: the v1 names. Read at start only.
         */
        nats_prefix: z
          .string()
          .regex(
            NATS_PREFIX,
            'invalid NATS prefix (1-32 letters, digits, _ or -, starting with a letter or digit)',
          )
          .optional(),
      })
      .default({}),
  })
  .superRefine(
    (config, ctx) => {
      // Runs even when other parts of the file failed (see `when`), so every error is listed at
      // once; the value may then be partly unvalidated, hence the shape guards.
      if (!isRecord(config)) return;
      const namespaces: object = isRecord(config.namespaces) ? config.namespaces : {};
      const roles: object = isRecord(config.roles) ? config.roles : {};
      const servers: object = isRecord(config.servers) ? config.servers : {};
      // Keys and roles name namespaces and virtual servers alike.
      const knownNamespaces = (list: unknown, path: Array<string | number>) => {
        if (!Array.isArray(list)) return;
        list.forEach((ns: unknown, j) => {
          if (
            typeof ns === 'string' &&
            ns !== '*' &&
            !Object.hasOwn(namespaces, ns) &&
            !Object.hasOwn(servers, ns)
          ) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, j],
              message: `unknown namespace or server "${ns}"`,
            });
          }
        });
      };
      for (const [name, server] of Object.entries(servers)) {
        for (const issue of serverIssues(name, server, namespaces)) ctx.addIssue(issue);
      }
      for (const [name, value] of Object.entries(roles)) {
        if (isRecord(value)) knownNamespaces(value.namespaces, ['roles', name, 'namespaces']);
      }
      const auth: Record<string, unknown> = isRecord(config.auth) ? config.auth : {};
      if (isRecord(auth.oauth)) {
        const server: Record<string, unknown> = isRecord(config.server) ? config.server : {};
        if (server.public_url === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['server', 'public_url'],
            message:
              'required when auth.oauth is set (resource URLs and metadata are built from it)',
          });
        }
        const issuers: unknown[] = Array.isArray(auth.oauth.issuers) ? auth.oauth.issuers : [];
        issuers.forEach((issuer, i) => {
          if (!isRecord(issuer) || !isRecord(issuer.role_map)) return;
          for (const [value, role] of Object.entries(issuer.role_map)) {
            if (typeof role === 'string' && !Object.hasOwn(roles, role)) {
              ctx.addIssue({
                code: 'custom',
                path: ['auth', 'oauth', 'issuers', i, 'role_map', value],
                message: `unknown role "${role}"`,
              });
            }
          }
        });
      }
      if (!Array.isArray(config.keys)) return;
      const ids = new Set<string>();
      config.keys.forEach((k: unknown, i) => {
        if (!isRecord(k)) return;
        if (typeof k.id === 'string') {
          if (ids.has(k.id)) {
            ctx.addIssue({
              code: 'custom',
              path: ['keys', i, 'id'],
              message: `duplicate key id "${k.id}"`,
            });
          }
          ids.add(k.id);
        }
        knownNamespaces(k.namespaces, ['keys', i, 'namespaces']);
        if (!Array.isArray(k.roles)) return;
        k.roles.forEach((name: unknown, j) => {
          if (typeof name === 'string' && !Object.hasOwn(roles, name)) {
            ctx.addIssue({
              code: 'custom',
              path: ['keys', i, 'roles', j],
              message: `unknown role "${name}"`,
            });
          }
        });
      });
    },
    { when: () => true },
  );

/** The prefix of `server`'s tool and prompt names for member `namespace`. */
export function memberPrefix(prefix: string, namespace: string): string {
  return prefix.replaceAll('{ns}', namespace);
}

/**
 * What the file can tell about a virtual server: its name is not a namespace's, its members
 * exist, no member's prefix starts another's (their names would collide: `{ns}_` over `a` and
 * `a_b` gives `a_b_x` to both), and each override names a member's prefixed tool and a name no
 * other override takes. Collisions the file cannot show (a prefix shared by several members, as
 * `""` is) are found when the members list their tools.
 */
function serverIssues(name: string, server: unknown, namespaces: object): z.core.$ZodRawIssue[] {
  const issues: z.core.$ZodRawIssue[] = [];
  const at = (path: Array<string | number>, message: string) =>
    issues.push({ code: 'custom', path: ['servers', name, ...path], message, input: undefined });
  if (Object.hasOwn(namespaces, name))
    at([], `"${name}" is the name of a namespace too; a server needs a name of its own`);
  if (!isRecord(server)) return issues;
  const listed: unknown[] = Array.isArray(server.namespaces) ? server.namespaces : [];
  listed.forEach((ns, j) => {
    if (typeof ns === 'string' && ns !== '*' && !Object.hasOwn(namespaces, ns))
      at(['namespaces', j], `unknown namespace "${ns}"`);
  });
  const prefix = typeof server.prefix === 'string' ? server.prefix : '{ns}__';
  const members = listed.includes('*')
    ? Object.keys(namespaces)
    : listed.filter((ns): ns is string => typeof ns === 'string' && Object.hasOwn(namespaces, ns));
  const prefixes = members.map((ns) => [ns, memberPrefix(prefix, ns)] as const);
  for (const [a, pa] of prefixes) {
    for (const [b, pb] of prefixes) {
      if (a < b && pa !== pb && (pa.startsWith(pb) || pb.startsWith(pa)))
        at(['prefix'], `"${prefix}" makes the names of members ${a} and ${b} collide`);
    }
  }
  const overrides = isRecord(server.overrides) ? server.overrides : {};
  const taken = new Map<string, string>();
  for (const [tool, override] of Object.entries(overrides)) {
    const owner = prefixes.find(([, p]) => tool.length > p.length && tool.startsWith(p));
    if (!owner)
      at(
        ['overrides', tool],
        `no member's tool is named "${tool}" (names are prefixed: "${prefix}")`,
      );
    const shown = isRecord(override) && typeof override.name === 'string' ? override.name : tool;
    const other = taken.get(shown);
    if (other !== undefined) at(['overrides', tool], `"${shown}" is already the name of ${other}`);
    taken.set(shown, tool);
  }
  return issues;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutKeys(
  value: Record<string, unknown>,
  keys: readonly string[],
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !keys.includes(key)));
}

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type NamespaceConfig = GatewayConfig['namespaces'][string];
export type ServerConfig = GatewayConfig['servers'][string];
export type KeyConfig = GatewayConfig['keys'][number];
export type RoleConfig = GatewayConfig['roles'][string];
export type OAuthConfig = NonNullable<GatewayConfig['auth']['oauth']>;
export type OAuthIssuerConfig = OAuthConfig['issuers'][number];
export type RateLimitConfig = z.output<typeof rateLimit>;
export type HttpUpstreamConfig = z.output<typeof httpUpstream>;
export type StdioUpstreamConfig = z.output<typeof stdioUpstream>;

export function isStdioUpstream(
  upstream: NamespaceConfig['upstream'],
): upstream is StdioUpstreamConfig {
  return 'command' in upstream;
}
