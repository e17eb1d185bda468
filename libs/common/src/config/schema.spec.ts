import { type ConfigIssue } from './expand.js';
import { ConfigError, parseConfig } from './load.js';
import { isStdioUpstream } from './schema.js';

const SHA = 'a'.repeat(64);
const NS = 'namespaces:\n  search:\n    upstream: { url: "http://127.0.0.1:3001/mcp" }\n';

function issuesOf(text: string, env: Record<string, string | undefined> = {}): ConfigIssue[] {
  try {
    parseConfig(text, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

/** The SPEC §3 example, verbatim. */
const SPEC_EXAMPLE = `
server:
  allowed_origins: ["https://app.example"]  # Origin check (DNS-rebinding defence). A request without
                                            # Origin passes; default: localhost, 127.0.0.1, [::1], any port
  max_body_bytes: 1048576
  trust_proxy: false                        # use X-Forwarded-For for client IP only when true

namespaces:
  search:                                   # name: [a-z0-9][a-z0-9_-]{0,62}
    upstream:
      url: http://127.0.0.1:3001/mcp         # Streamable HTTP backend
      headers: { Authorization: "Bearer \${SEARCH_TOKEN}" }   # sent to the backend, never the client's
    timeout_ms: 300000                      # per request; reset by progress notifications
    tools:
      allow: ["*"]                          # glob patterns; default ["*"]
      deny: ["delete_*"]                    # deny wins over allow
    rate_limit: { requests: 100, per: 1m }  # per key in this namespace (optional)
  legacy:
    upstream: { url: http://127.0.0.1:3002/sse, transport: sse }    # legacy HTTP+SSE backend
  filesystem:
    upstream:
      command: npx                          # stdio backend: one child process per client session
      args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"]
      env: { NODE_ENV: production }
    tools: { allow: ["read_*", "list_*", "search_files"] }

tenants:
  acme: { rate_limit: { requests: 10000, per: 1h } }

keys:
  - id: alice                               # stable id used in logs and analytics; never the secret
    user: alice@acme.example
    tenant: acme
    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   # or: key: \${ALICE_KEY}
    namespaces: ["search", "filesystem"]    # or ["*"]
    rate_limit: { requests: 600, per: 1m }
    expires_at: 2027-01-01T00:00:00Z        # optional
  - id: ops
    key: \${OPS_KEY}
    role: admin                             # may read analytics; tenant admins see only their tenant
    namespaces: ["*"]

auth:
  cache_ttl: 30s                            # edge cache of verify answers (negative answers: 10s)
  stale_max: 5m                             # serve cached keys this long while auth is unreachable
  max_failures: { count: 10, per: 1m }      # failed keys per client IP before 429

rate_limits:
  default: { requests: 600, per: 1m }       # per key when the key sets none
  on_store_error: allow                     # allow (fail open to a local limiter) | deny

analytics:
  retention_days: 30
`;

describe('the SPEC §3 example', () => {
  const env = { SEARCH_TOKEN: 'search-token', OPS_KEY: 'ops-key-0123456789abcdef' };

  it('validates, with durations in milliseconds and variables expanded', () => {
    const config = parseConfig(SPEC_EXAMPLE, env);
    expect(config.server).toEqual({
      allowed_origins: ['https://app.example'],
      cors: false,
      max_body_bytes: 1_048_576,
      trust_proxy: false,
      request_timeout: 30_000,
      max_sessions_per_key: 16,
    });
    expect(config.namespaces.search).toEqual({
      upstream: {
        url: 'http://127.0.0.1:3001/mcp',
        transport: 'streamable',
        headers: { Authorization: 'Bearer search-token' },
      },
      timeout_ms: 300_000,
      tools: { allow: ['*'], deny: ['delete_*'] },
      rate_limit: { requests: 100, per: 60_000 },
    });
    expect(config.namespaces.legacy?.upstream).toEqual({
      url: 'http://127.0.0.1:3002/sse',
      transport: 'sse',
      headers: {},
    });
    const filesystem = config.namespaces.filesystem;
    expect(isStdioUpstream(filesystem.upstream)).toBe(true);
    expect(filesystem.upstream).toMatchObject({
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/data'],
      env: { NODE_ENV: 'production' },
    });
    expect(filesystem.tools).toEqual({ allow: ['read_*', 'list_*', 'search_files'], deny: [] });
    expect(config.tenants).toEqual({ acme: { rate_limit: { requests: 10_000, per: 3_600_000 } } });
    expect(config.keys).toEqual([
      {
        id: 'alice',
        user: 'alice@acme.example',
        tenant: 'acme',
        key_sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
        role: 'user',
        namespaces: ['search', 'filesystem'],
        roles: [],
        rate_limit: { requests: 600, per: 60_000 },
        expires_at: '2027-01-01T00:00:00Z',
      },
      { id: 'ops', key: 'ops-key-0123456789abcdef', role: 'admin', namespaces: ['*'], roles: [] },
    ]);
    expect(config.roles).toEqual({});
    expect(config.auth).toEqual({
      cache_ttl: 30_000,
      negative_ttl: 10_000,
      stale_max: 300_000,
      max_failures: { count: 10, per: 60_000 },
    });
    expect(config.rate_limits).toEqual({
      default: { requests: 600, per: 60_000 },
      on_store_error: 'allow',
    });
    expect(config.analytics).toEqual({ retention_days: 30 });
  });

  it('is refused when OPS_KEY is not set, naming the variable and its line', () => {
    const line = SPEC_EXAMPLE.split('\n').findIndex((text) => text.includes('key: ${OPS_KEY}')) + 1;
    expect(issuesOf(SPEC_EXAMPLE, { SEARCH_TOKEN: 'x' })).toEqual([
      { path: 'keys.1.key', message: `environment variable OPS_KEY is not set (line ${line})` },
    ]);
  });
});

describe('records looked up by client-chosen names', () => {
  it.each(['constructor', 'tostring', '__proto__', 'hasownproperty'])(
    'finds no namespace or tenant named %s that the file does not name',
    (name) => {
      const config = parseConfig(
        'namespaces:\n  search:\n    upstream: { url: "http://127.0.0.1:9/mcp" }\n',
        {},
      );
      expect(config.namespaces[name]).toBeUndefined();
      expect(config.tenants[name]).toBeUndefined();
      expect(config.namespaces['search'].upstream).toBeDefined();
      expect(Object.keys(config.namespaces)).toEqual(['search']);
    },
  );
});

describe('defaults', () => {
  it('fills every section of an empty file', () => {
    expect(parseConfig('', {})).toEqual({
      server: {
        cors: false,
        max_body_bytes: 1_048_576,
        trust_proxy: false,
        request_timeout: 30_000,
        max_sessions_per_key: 16,
      },
      namespaces: {},
      servers: {},
      tenants: {},
      tool_pinning: { mode: 'alert' },
      roles: {},
      keys: [],
      auth: {
        cache_ttl: 30_000,
        negative_ttl: 10_000,
        stale_max: 300_000,
        max_failures: { count: 10, per: 60_000 },
      },
      rate_limits: { default: { requests: 600, per: 60_000 }, on_store_error: 'allow' },
      analytics: { retention_days: 30 },
      events: {},
    });
  });

  it('fills the fields of partly written sections', () => {
    const config = parseConfig(
      'auth: { cache_ttl: 1m }\nrate_limits: { on_store_error: deny }\nanalytics: {}\n',
      {},
    );
    expect(config.auth).toEqual({
      cache_ttl: 60_000,
      negative_ttl: 10_000,
      stale_max: 300_000,
      max_failures: { count: 10, per: 60_000 },
    });
    expect(config.rate_limits).toEqual({
      default: { requests: 600, per: 60_000 },
      on_store_error: 'deny',
    });
    expect(config.analytics).toEqual({ retention_days: 30 });
  });

  it('gives an HTTP namespace timeout_ms 300000, tools.allow ["*"], no deny and the streamable transport', () => {
    expect(parseConfig(NS, {}).namespaces.search).toEqual({
      upstream: { url: 'http://127.0.0.1:3001/mcp', transport: 'streamable', headers: {} },
      timeout_ms: 300_000,
      tools: { allow: ['*'], deny: [] },
    });
  });

  it('gives tools.allow ["*"] when only deny is written', () => {
    const config = parseConfig(NS + '    tools: { deny: ["rm"] }\n', {});
    expect(config.namespaces.search?.tools).toEqual({ allow: ['*'], deny: ['rm'] });
  });

  it('gives a stdio upstream no args, no env, a 10 minute idle timeout, 32 children, no warm count and no sharing', () => {
    const config = parseConfig('namespaces:\n  fs:\n    upstream: { command: npx }\n', {});
    expect(config.namespaces.fs?.upstream).toEqual({
      command: 'npx',
      args: [],
      env: {},
      idle_timeout: 600_000,
      max_children: 32,
      shared: false,
    });
  });

  it('reads warm and shared on a stdio upstream', () => {
    const config = parseConfig(
      'namespaces:\n  fs:\n    upstream: { command: npx, warm: 0, shared: true }\n',
      {},
    );
    expect(config.namespaces.fs?.upstream).toMatchObject({ warm: 0, shared: true });
  });

  it('gives a key the user role, no namespaces, no roles and no tool scope', () => {
    const config = parseConfig(`keys:\n  - { id: a, key_sha256: ${SHA} }\n`, {});
    expect(config.keys).toEqual([
      { id: 'a', key_sha256: SHA, role: 'user', namespaces: [], roles: [] },
    ]);
  });

  it('gives a role no namespaces, no tool rules and no admin; its tools allow ["*"] unless written', () => {
    const config = parseConfig('roles:\n  reader: {}\n  narrow: { tools: { deny: [rm] } }\n', {});
    expect(config.roles.reader).toEqual({ namespaces: [], admin: false });
    expect(config.roles.narrow).toEqual({
      namespaces: [],
      admin: false,
      tools: { allow: ['*'], deny: ['rm'] },
    });
  });
});

describe('validation rules', () => {
  it.each<[string, string, ConfigIssue]>([
    [
      'an upstream URL that is not a URL',
      'namespaces:\n  search:\n    upstream: { url: "not a url" }\n',
      { path: 'namespaces.search.upstream.url', message: 'invalid URL' },
    ],
    [
      'an upstream URL that is not http(s)',
      'namespaces:\n  search:\n    upstream: { url: "ftp://127.0.0.1/mcp" }\n',
      { path: 'namespaces.search.upstream.url', message: 'invalid URL' },
    ],
    [
      'a namespace name with upper case',
      'namespaces:\n  Search:\n    upstream: { url: "http://127.0.0.1:3001/mcp" }\n',
      { path: 'namespaces.Search', message: 'invalid namespace name' },
    ],
    [
      'a namespace name starting with a dash',
      'namespaces:\n  -search:\n    upstream: { url: "http://127.0.0.1:3001/mcp" }\n',
      { path: 'namespaces.-search', message: 'invalid namespace name' },
    ],
    [
      'a namespace name of 64 characters',
      `namespaces:\n  ${'n'.repeat(64)}:\n    upstream: { url: "http://127.0.0.1:3001/mcp" }\n`,
      { path: `namespaces.${'n'.repeat(64)}`, message: 'invalid namespace name' },
    ],
    [
      'a namespace name with a slash',
      'namespaces:\n  "a/b":\n    upstream: { url: "http://127.0.0.1:3001/mcp" }\n',
      { path: 'namespaces.a/b', message: 'invalid namespace name' },
    ],
    [
      'an upstream with neither url nor command',
      'namespaces:\n  search:\n    upstream: { headers: {} }\n',
      {
        path: 'namespaces.search.upstream',
        message: 'expected { url, transport?, headers? } or { command, args?, env? }',
      },
    ],
    [
      'a namespace without upstream',
      'namespaces:\n  search:\n    timeout_ms: 5\n',
      {
        path: 'namespaces.search.upstream',
        message: 'expected { url, transport?, headers? } or { command, args?, env? }',
      },
    ],
    [
      'an upstream with both url and command, as a stdio upstream with an unknown url field',
      'namespaces:\n  search:\n    upstream: { command: npx, url: "http://127.0.0.1/mcp" }\n',
      { path: 'namespaces.search.upstream', message: 'unknown field(s): url' },
    ],
    [
      'an unknown upstream transport',
      'namespaces:\n  search:\n    upstream: { url: "http://127.0.0.1/mcp", transport: websocket }\n',
      {
        path: 'namespaces.search.upstream.transport',
        message: 'Invalid option: expected one of "streamable"|"sse"',
      },
    ],
    [
      'a zero timeout_ms',
      NS + '    timeout_ms: 0\n',
      { path: 'namespaces.search.timeout_ms', message: 'Too small: expected number to be >0' },
    ],
    [
      'a bad duration in a namespace rate limit',
      NS + '    rate_limit: { requests: 100, per: 1 minute }\n',
      {
        path: 'namespaces.search.rate_limit.per',
        message: 'invalid duration "1 minute" (use e.g. 500ms, 30s, 5m, 1h, 7d)',
      },
    ],
    [
      'a bad duration in auth',
      'auth: { stale_max: 5x }\n',
      {
        path: 'auth.stale_max',
        message: 'invalid duration "5x" (use e.g. 500ms, 30s, 5m, 1h, 7d)',
      },
    ],
    [
      'a duration written as a bare number',
      'auth: { cache_ttl: 30 }\n',
      { path: 'auth.cache_ttl', message: 'Invalid input: expected string, received number' },
    ],
    [
      'a bad duration in a stdio idle timeout',
      'namespaces:\n  fs:\n    upstream: { command: npx, idle_timeout: 0s }\n',
      {
        path: 'namespaces.fs.upstream.idle_timeout',
        message: 'invalid duration "0s" (use e.g. 500ms, 30s, 5m, 1h, 7d)',
      },
    ],
    [
      'a zero rate limit',
      'tenants:\n  acme: { rate_limit: { requests: 0, per: 1m } }\n',
      { path: 'tenants.acme.rate_limit.requests', message: 'Too small: expected number to be >0' },
    ],
    [
      'a typo in a top-level section name',
      NS + 'rate_limit: { default: { requests: 1, per: 1s } }\n',
      { path: '(root)', message: 'unknown field(s): rate_limit' },
    ],
    [
      'a typo in a namespace field',
      NS + '    timout_ms: 5\n',
      { path: 'namespaces.search', message: 'unknown field(s): timout_ms' },
    ],
    [
      'a typo in a stdio upstream field',
      'namespaces:\n  fs:\n    upstream: { command: npx, argz: ["x"] }\n',
      { path: 'namespaces.fs.upstream', message: 'unknown field(s): argz' },
    ],
    [
      'a negative warm count',
      'namespaces:\n  fs:\n    upstream: { command: npx, warm: -1 }\n',
      { path: 'namespaces.fs.upstream.warm', message: 'Too small: expected number to be >=0' },
    ],
    [
      'a fractional warm count',
      'namespaces:\n  fs:\n    upstream: { command: npx, warm: 1.5 }\n',
      {
        path: 'namespaces.fs.upstream.warm',
        message: 'Invalid input: expected int, received number',
      },
    ],
    [
      'a shared that is a string',
      'namespaces:\n  fs:\n    upstream: { command: npx, shared: "yes" }\n',
      {
        path: 'namespaces.fs.upstream.shared',
        message: 'Invalid input: expected boolean, received string',
      },
    ],
    [
      'warm on a url upstream',
      'namespaces:\n  search:\n    upstream: { url: "http://127.0.0.1/mcp", warm: 1 }\n',
      {
        path: 'namespaces.search.upstream.warm',
        message: 'only a stdio upstream (command) takes warm; this one has a url',
      },
    ],
    [
      'shared on a url upstream',
      'namespaces:\n  search:\n    upstream: { url: "http://127.0.0.1/mcp", transport: sse, shared: true }\n',
      {
        path: 'namespaces.search.upstream.shared',
        message: 'only a stdio upstream (command) takes shared; this one has a url',
      },
    ],
    [
      'a typo in a tools field',
      NS + '    tools: { alow: ["x"] }\n',
      { path: 'namespaces.search.tools', message: 'unknown field(s): alow' },
    ],
    [
      'a typo in a key field',
      `keys:\n  - { id: a, key_sha256: ${SHA}, namespace: ["*"] }\n`,
      { path: 'keys.0', message: 'unknown field(s): namespace' },
    ],
    [
      'a typo in the server section',
      'server: { trustproxy: true }\n',
      { path: 'server', message: 'unknown field(s): trustproxy' },
    ],
    [
      'an empty tool glob',
      NS + '    tools: { deny: [""] }\n',
      {
        path: 'namespaces.search.tools.deny.0',
        message: 'Too small: expected string to have >=1 characters',
      },
    ],
    [
      'a key shorter than 16 characters',
      'keys:\n  - { id: a, key: "0123456789abcde" }\n',
      { path: 'keys.0.key', message: 'keys are at least 16 characters' },
    ],
    [
      'a key with both key and key_sha256',
      `keys:\n  - { id: a, key: "0123456789abcdef", key_sha256: ${SHA} }\n`,
      { path: 'keys.0', message: 'set exactly one of key or key_sha256' },
    ],
    [
      'a key with neither key nor key_sha256',
      'keys:\n  - { id: a, namespaces: ["*"] }\n',
      { path: 'keys.0', message: 'set exactly one of key or key_sha256' },
    ],
    [
      'a key_sha256 of 63 hex characters',
      `keys:\n  - { id: a, key_sha256: ${'a'.repeat(63)} }\n`,
      { path: 'keys.0.key_sha256', message: 'must be 64 hex characters (SHA-256 of the key)' },
    ],
    [
      'a key_sha256 that is not hex',
      `keys:\n  - { id: a, key_sha256: ${'g'.repeat(64)} }\n`,
      { path: 'keys.0.key_sha256', message: 'must be 64 hex characters (SHA-256 of the key)' },
    ],
    [
      'a key id with a space',
      `keys:\n  - { id: "al ice", key_sha256: ${SHA} }\n`,
      { path: 'keys.0.id', message: 'must be 1-128 characters of A-Z a-z 0-9 . _ @ -' },
    ],
    [
      'a duplicate key id',
      `keys:\n  - { id: alice, key_sha256: ${SHA} }\n  - { id: alice, key: "0123456789abcdef" }\n`,
      { path: 'keys.1.id', message: 'duplicate key id "alice"' },
    ],
    [
      'a key naming an unknown namespace',
      NS + `keys:\n  - { id: a, key_sha256: ${SHA}, namespaces: ["search", "serch"] }\n`,
      { path: 'keys.0.namespaces.1', message: 'unknown namespace or server "serch"' },
    ],
    [
      'an unknown role',
      `keys:\n  - { id: a, key_sha256: ${SHA}, role: root }\n`,
      { path: 'keys.0.role', message: 'Invalid option: expected one of "admin"|"user"' },
    ],
    [
      'an expires_at that is only a date',
      `keys:\n  - { id: a, key_sha256: ${SHA}, expires_at: "2027-01-01" }\n`,
      { path: 'keys.0.expires_at', message: 'must be an ISO 8601 date-time' },
    ],
    [
      'an expires_at that is not a date',
      `keys:\n  - { id: a, key_sha256: ${SHA}, expires_at: "next year" }\n`,
      { path: 'keys.0.expires_at', message: 'must be an ISO 8601 date-time' },
    ],
    [
      'an on_store_error other than allow or deny',
      'rate_limits: { on_store_error: ignore }\n',
      {
        path: 'rate_limits.on_store_error',
        message: 'Invalid option: expected one of "allow"|"deny"',
      },
    ],
    [
      'a negative max_body_bytes',
      'server: { max_body_bytes: -1 }\n',
      { path: 'server.max_body_bytes', message: 'Too small: expected number to be >0' },
    ],
    [
      'a trust_proxy that is a string',
      'server: { trust_proxy: "yes" }\n',
      { path: 'server.trust_proxy', message: 'Invalid input: expected boolean, received string' },
    ],
    ...[
      ['a NATS prefix with a dot (a subject separator)', 'a.b'],
      ['a NATS prefix with a wildcard', 'a*'],
      ['a NATS prefix starting with _ (NATS keeps those names)', '_INBOX'],
      ['a NATS prefix of 33 characters', 'p'.repeat(33)],
      ['an empty NATS prefix', ''],
    ].map(([name, prefix]): [string, string, ConfigIssue] => [
      name,
      `events: { nats_prefix: "${prefix}" }\n`,
      {
        path: 'events.nats_prefix',
        message:
          'invalid NATS prefix (1-32 letters, digits, _ or -, starting with a letter or digit)',
      },
    ]),
    [
      'an unknown field under events',
      'events: { nats_prefx: mcpgw }\n',
      { path: 'events', message: 'unknown field(s): nats_prefx' },
    ],
    [
      'a file that is a list',
      '- a\n- b\n',
      { path: '(root)', message: 'Invalid input: expected object, received array' },
    ],
  ])('reports %s', (_name, text, issue) => {
    expect(issuesOf(text)).toEqual([issue]);
  });

  it.each([
    [
      'a namespace name of 63 characters',
      `namespaces:\n  ${'n'.repeat(63)}:\n    upstream: { command: x }\n`,
    ],
    [
      'a namespace name with digits, _ and -',
      'namespaces:\n  0a_b-c:\n    upstream: { command: x }\n',
    ],
    ['a key of exactly 16 characters', 'keys:\n  - { id: a, key: "0123456789abcdef" }\n'],
    ['an upper-case key_sha256', `keys:\n  - { id: a, key_sha256: ${'A'.repeat(64)} }\n`],
    [
      'an expires_at in UTC',
      `keys:\n  - { id: a, key_sha256: ${SHA}, expires_at: 2027-01-01T00:00:00Z }\n`,
    ],
    [
      'an expires_at with an offset',
      `keys:\n  - { id: a, key_sha256: ${SHA}, expires_at: "2027-01-01T02:00:00+02:00" }\n`,
    ],
    ['a key on every namespace', `keys:\n  - { id: a, key_sha256: ${SHA}, namespaces: ["*"] }\n`],
    ['an https upstream', 'namespaces:\n  s:\n    upstream: { url: "https://mcp.example/mcp" }\n'],
    ['on_store_error deny', 'rate_limits: { on_store_error: deny }\n'],
    ['a NATS prefix', 'events: { nats_prefix: mcpgw }\n'],
    [
      'a NATS prefix of 32 characters with _ and -',
      `events: { nats_prefix: a_${'b'.repeat(28)}-c }\n`,
    ],
  ])('accepts %s', (_name, text) => {
    expect(() => parseConfig(text, {})).not.toThrow();
  });

  it('reports every error of a file at once, each with its path', () => {
    const text = [
      'server: { max_body_bytes: 0 }',
      'namespaces:',
      '  Search:',
      '    upstream: { url: "http://127.0.0.1:3001/mcp" }',
      '  docs:',
      '    upstream: { url: "nope" }',
      '    timout_ms: 5',
      'keys:',
      '  - { id: a, key: short }',
      `  - { id: a, key_sha256: ${SHA}, namespaces: ["nowhere"] }`,
      '  - { id: b }',
      'auth: { cache_ttl: soon }',
      'rate_limits: { on_store_error: maybe }',
    ].join('\n');
    const issues = issuesOf(text);
    expect(issues.map((issue) => issue.path).sort()).toEqual(
      [
        'server.max_body_bytes',
        'namespaces.Search',
        'namespaces.docs',
        'namespaces.docs.upstream.url',
        'keys.0.key',
        'keys.1.id',
        'keys.1.namespaces.0',
        'keys.2',
        'auth.cache_ttl',
        'rate_limits.on_store_error',
      ].sort(),
    );
  });

  it('reports both a bad key field and a missing secret on the same key', () => {
    expect(issuesOf('keys:\n  - { id: "bad id" }\n')).toEqual([
      { path: 'keys.0.id', message: 'must be 1-128 characters of A-Z a-z 0-9 . _ @ -' },
      { path: 'keys.0', message: 'set exactly one of key or key_sha256' },
    ]);
  });

  it('lists every issue in the ConfigError message, one per line, under the source name', () => {
    let message = '';
    try {
      parseConfig(
        'auth: { cache_ttl: soon }\nrate_limits: { on_store_error: maybe }\n',
        {},
        '/etc/gateway.yaml',
      );
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'invalid configuration in /etc/gateway.yaml:',
      '  auth.cache_ttl: invalid duration "soon" (use e.g. 500ms, 30s, 5m, 1h, 7d)',
      '  rate_limits.on_store_error: Invalid option: expected one of "allow"|"deny"',
    ]);
  });
});

describe('(v2) roles, key scopes, origins, CORS and public_url', () => {
  const V2 = `
server:
  public_url: https://mcp.example.com/
  allowed_origins: ["https://app.example", "http://localhost:*", "https://*.example.com"]
  cors: true
namespaces:
  search: { upstream: { url: "http://127.0.0.1:3001/mcp" } }
  files: { upstream: { command: npx } }
roles:
  analyst:
    namespaces: ["search"]
    tools: { deny: ["write_*", "delete_*"] }
    admin: false
  ops: { namespaces: ["*"], admin: true }
keys:
  - { id: bob, key_sha256: ${SHA}, roles: ["analyst"], tools: { deny: ["search__*"] } }
  - { id: carol, key_sha256: ${'b'.repeat(64)}, roles: ["analyst", "ops"], namespaces: ["files"] }
`;

  it('validates the SPEC §3 additions: roles, key roles and tools, cors, patterns, public_url', () => {
    const config = parseConfig(V2, {});
    expect(config.server).toMatchObject({
      public_url: 'https://mcp.example.com',
      allowed_origins: ['https://app.example', 'http://localhost:*', 'https://*.example.com'],
      cors: true,
    });
    expect(config.roles).toEqual({
      analyst: {
        namespaces: ['search'],
        tools: { allow: ['*'], deny: ['write_*', 'delete_*'] },
        admin: false,
      },
      ops: { namespaces: ['*'], admin: true },
    });
    expect(config.keys[0]).toMatchObject({
      roles: ['analyst'],
      tools: { allow: ['*'], deny: ['search__*'] },
      role: 'user',
    });
    expect(config.keys[1]).toMatchObject({ roles: ['analyst', 'ops'], namespaces: ['files'] });
  });

  it.each([
    ['an https URL', 'https://mcp.example.com', 'https://mcp.example.com'],
    ['one with a trailing slash', 'https://mcp.example.com/', 'https://mcp.example.com'],
    ['one with a path', 'https://example.com/gateway/', 'https://example.com/gateway'],
    ['an http URL with a port', 'http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['one in upper case with its default port', 'https://GW.Example:443', 'https://gw.example'],
    ['an http URL with port 80', 'HTTP://gw.example:80/', 'http://gw.example'],
    ['one whose path keeps its case', 'https://GW.example/Base/', 'https://gw.example/Base'],
    ['one with dot segments', 'https://gw.example/a/../b', 'https://gw.example/b'],
  ])('keeps public_url as %s, canonical (as clients normalise it)', (_name, written, kept) => {
    expect(parseConfig(`server: { public_url: "${written}" }\n`, {}).server.public_url).toBe(kept);
  });

  it.each([
    ['"*" alone', '*'],
    ['an exact origin', 'https://app.example'],
    ['an exact origin with a port', 'http://localhost:5173'],
    ['an origin in upper case', 'HTTPS://App.Example'],
    ['a "*" port', 'http://localhost:*'],
    ['a "*" port on an IPv6 address', 'http://[::1]:*'],
    ['a "*" first label', 'https://*.example.com'],
    ['a "*" first label and a port', 'https://*.example.com:8443'],
    ['a "*" first label and a "*" port', 'http://*.localhost:*'],
    ['a trailing slash', 'https://app.example/'],
  ])('accepts the origin pattern %s', (_name, pattern) => {
    expect(() => parseConfig(`server: { allowed_origins: ["${pattern}"] }\n`, {})).not.toThrow();
  });

  it.each([
    ['a "*" inside a label', 'https://*example.com'],
    ['a "*" label that is not the first', 'https://app.*.example.com'],
    ['a "*" in front of an address', 'https://*.127.0.0.1'],
    ['a host without scheme', '*.example.com'],
    ['a scheme other than http(s)', 'ftp://files.example'],
    ['a path', 'https://app.example/app'],
    ['credentials', 'https://user@app.example'],
    ['a query', 'https://app.example?x=1'],
    ['"null"', 'null'],
    ['an empty string', ''],
    ['a port that is no number', 'http://localhost:http'],
    ['a partial "*" port', 'http://localhost:80*'],
    ['a "*" scheme', '*://app.example'],
  ])('refuses the origin pattern %s', (_name, pattern) => {
    expect(issuesOf(`server: { allowed_origins: ["${pattern}"] }\n`)).toEqual([
      {
        path: 'server.allowed_origins.0',
        message: `invalid origin pattern ${JSON.stringify(pattern)} (use an origin like https://app.example, "*", a "*" port (http://localhost:*) or a "*" first host label (https://*.example.com))`,
      },
    ]);
  });

  it.each<[string, string, ConfigIssue]>([
    [
      'a key naming an unknown role',
      NS +
        `roles: { analyst: {} }\nkeys:\n  - { id: a, key_sha256: ${SHA}, roles: [analyst, anlyst] }\n`,
      { path: 'keys.0.roles.1', message: 'unknown role "anlyst"' },
    ],
    [
      'a key naming a role no file defines, by an Object.prototype name',
      `keys:\n  - { id: a, key_sha256: ${SHA}, roles: [constructor] }\n`,
      { path: 'keys.0.roles.0', message: 'unknown role "constructor"' },
    ],
    [
      'a role naming an unknown namespace',
      NS + 'roles:\n  analyst: { namespaces: [search, serch] }\n',
      { path: 'roles.analyst.namespaces.1', message: 'unknown namespace or server "serch"' },
    ],
    [
      'a typo in a role field',
      'roles:\n  analyst: { namespace: [search] }\n',
      { path: 'roles.analyst', message: 'unknown field(s): namespace' },
    ],
    [
      'a role name with a space',
      'roles:\n  "data analyst": {}\n',
      { path: 'roles.data analyst', message: 'invalid role name' },
    ],
    [
      'an admin flag that is a string',
      'roles:\n  ops: { admin: "yes" }\n',
      { path: 'roles.ops.admin', message: 'Invalid input: expected boolean, received string' },
    ],
    [
      'a typo in a key tools field',
      `keys:\n  - { id: a, key_sha256: ${SHA}, tools: { denied: [rm] } }\n`,
      { path: 'keys.0.tools', message: 'unknown field(s): denied' },
    ],
    [
      'an empty glob in a role',
      'roles:\n  analyst: { tools: { deny: [""] } }\n',
      {
        path: 'roles.analyst.tools.deny.0',
        message: 'Too small: expected string to have >=1 characters',
      },
    ],
    [
      'a cors that is a string',
      'server: { cors: "yes" }\n',
      { path: 'server.cors', message: 'Invalid input: expected boolean, received string' },
    ],
    [
      'a public_url that is not a URL',
      'server: { public_url: "mcp.example.com" }\n',
      { path: 'server.public_url', message: 'invalid URL (use e.g. https://mcp.example.com)' },
    ],
    [
      'a public_url that is not http(s)',
      'server: { public_url: "ftp://mcp.example.com" }\n',
      { path: 'server.public_url', message: 'invalid URL (use e.g. https://mcp.example.com)' },
    ],
    [
      'a public_url with a query',
      'server: { public_url: "https://mcp.example.com/?a=1" }\n',
      {
        path: 'server.public_url',
        message: 'must be an http(s) URL without query, fragment or credentials',
      },
    ],
  ])('reports %s', (_name, text, issue) => {
    expect(issuesOf(text)).toEqual([issue]);
  });

  it('finds no role named after Object.prototype members', () => {
    const config = parseConfig('roles:\n  analyst: {}\n', {});
    expect(config.roles['constructor']).toBeUndefined();
    expect(config.roles['__proto__']).toBeUndefined();
  });

  it('reports every roles, keys and origins error at once', () => {
    const text = [
      'server: { allowed_origins: ["https://*evil.example"] }',
      NS.trimEnd(),
      'roles:',
      '  analyst: { namespaces: [nowhere] }',
      'keys:',
      `  - { id: a, key_sha256: ${SHA}, roles: [analyst, ghost], namespaces: [elsewhere] }`,
    ].join('\n');
    expect(
      issuesOf(text)
        .map((issue) => issue.path)
        .sort(),
    ).toEqual(
      [
        'server.allowed_origins.0',
        'roles.analyst.namespaces.0',
        'keys.0.namespaces.0',
        'keys.0.roles.1',
      ].sort(),
    );
  });
});

describe('(v2) virtual servers', () => {
  const MEMBERS =
    'namespaces:\n' +
    ['search', 'files', 'a', 'a_b']
      .map((ns) => `  ${ns}: { upstream: { url: "http://127.0.0.1:3001/mcp" } }\n`)
      .join('');

  it('fills a server with its defaults, and lets keys and roles name it', () => {
    const config = parseConfig(
      MEMBERS +
        'servers:\n  workbench: { namespaces: [search, files] }\n' +
        'roles:\n  analyst: { namespaces: [workbench] }\n' +
        `keys:\n  - { id: a, key_sha256: ${SHA}, namespaces: [workbench] }\n`,
      {},
    );
    expect(config.servers.workbench).toEqual({
      namespaces: ['search', 'files'],
      prefix: '{ns}__',
      tools: { allow: ['*'], deny: [] },
      overrides: {},
    });
  });

  it.each<[string, string, ConfigIssue]>([
    [
      'a server named as a namespace',
      'servers:\n  search: { namespaces: [files] }\n',
      {
        path: 'servers.search',
        message: '"search" is the name of a namespace too; a server needs a name of its own',
      },
    ],
    [
      'an unknown member',
      'servers:\n  wb: { namespaces: [search, serch] }\n',
      { path: 'servers.wb.namespaces.1', message: 'unknown namespace "serch"' },
    ],
    [
      'a prefix that makes one member’s names start another’s',
      'servers:\n  wb: { namespaces: [a, a_b], prefix: "{ns}_" }\n',
      {
        path: 'servers.wb.prefix',
        message: '"{ns}_" makes the names of members a and a_b collide',
      },
    ],
    [
      'a prefix with characters no tool name holds',
      'servers:\n  wb: { namespaces: [a], prefix: "{ns}/" }\n',
      {
        path: 'servers.wb.prefix',
        message: 'a prefix holds {ns} and the characters of tool names (A-Z a-z 0-9 _ . -)',
      },
    ],
    [
      'an override of a tool no member has',
      'servers:\n  wb: { namespaces: [search], overrides: { files__read: { description: x } } }\n',
      {
        path: 'servers.wb.overrides.files__read',
        message: 'no member\'s tool is named "files__read" (names are prefixed: "{ns}__")',
      },
    ],
    [
      'two overrides to one name',
      'servers:\n  wb: { namespaces: [search, files], overrides: { search__a: { name: go }, files__b: { name: go } } }\n',
      { path: 'servers.wb.overrides.files__b', message: '"go" is already the name of search__a' },
    ],
    [
      'a typo in a server field',
      'servers:\n  wb: { namespace: [search] }\n',
      { path: 'servers.wb', message: 'unknown field(s): namespace' },
    ],
  ])('refuses %s, naming its path', (_name, yaml, issue) => {
    expect(issuesOf(MEMBERS + yaml)).toContainEqual(issue);
  });

  it('allows a shared prefix ("" or one without {ns}): collisions are found in the lists', () => {
    const yaml = MEMBERS + 'servers:\n  wb: { namespaces: [search, files], prefix: "" }\n';
    expect(parseConfig(yaml, {}).servers.wb.prefix).toBe('');
  });
});
