import {
  AUTH_KEY_VERIFY,
  InProcessBus,
  InProcessEventChannel,
  type McpEvent,
  type Principal,
  sha256Hex,
} from '#common';
import { request as httpRequest } from 'node:http';
import type {
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  Summary,
  ToolStats,
} from '../src/api/answers.js';
import { LATENCY_BUCKET_BOUNDS } from '../src/api/latency-histogram.js';
import { type AnalyticsHandle, startAnalytics } from '../src/bootstrap.js';
import { makeEvent, memoryLogger, tempDir, testConfig, type TempDir } from './fixtures.js';

const T0 = Date.UTC(2025, 0, 1);
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

// A hand-computed event set (SPEC §7 semantics). Requests are #1-#7: client-to-server requests
// plus one rejected HTTP request (kind null, no key: rejected, not an error). Errors are #2 and
// #5. #8-#10 are recorded but are not requests. #1 and #4 came through the virtual server
// `assistant` (#4 called as `files_read`); the others by their namespace's route.
const EVENTS: McpEvent[] = [
  makeEvent({
    id: 'e01',
    ts: at(0),
    namespace: 'search',
    tenant: 'acme',
    key_id: 'alice',
    user: 'alice@acme',
    tool: 'web',
    outcome: 'ok',
    duration_ms: 10,
    server: 'assistant',
  }),
  makeEvent({
    id: 'e02',
    ts: at(1),
    namespace: 'search',
    tenant: 'acme',
    key_id: 'alice',
    user: 'alice@acme',
    tool: 'web',
    outcome: 'tool_error',
    duration_ms: 20,
  }),
  makeEvent({
    id: 'e03',
    ts: at(2),
    namespace: 'search',
    tenant: 'acme',
    key_id: 'bob',
    user: 'bob@acme',
    method: 'tools/list',
    tool: null,
    duration_ms: 30,
  }),
  makeEvent({
    id: 'e04',
    ts: at(3),
    namespace: 'files',
    tenant: 'acme',
    key_id: 'bob',
    user: 'bob@acme',
    tool: 'read',
    duration_ms: 40,
    server: 'assistant',
    client_tool: 'files_read',
  }),
  makeEvent({
    id: 'e05',
    ts: at(61),
    namespace: 'files',
    tenant: 'globex',
    key_id: 'carol',
    user: 'carol@globex',
    tool: 'read',
    outcome: 'upstream_error',
    duration_ms: 50,
  }),
  makeEvent({
    id: 'e06',
    ts: at(62),
    namespace: 'files',
    tenant: 'globex',
    key_id: 'carol',
    user: 'carol@globex',
    method: 'initialize',
    tool: null,
    duration_ms: 60,
  }),
  makeEvent({
    id: 'e07',
    ts: at(4),
    namespace: 'search',
    tenant: null,
    key_id: null,
    user: null,
    kind: null,
    method: null,
    tool: null,
    outcome: 'unauthorized',
    http_status: 401,
    duration_ms: 1,
  }),
  makeEvent({
    id: 'e08',
    ts: at(5),
    namespace: 'search',
    key_id: 'alice',
    kind: 'notification',
    method: 'notifications/initialized',
    tool: null,
    duration_ms: null,
  }),
  makeEvent({
    id: 'e09',
    ts: at(6),
    namespace: 'search',
    key_id: 'alice',
    direction: 'server_to_client',
    kind: 'response',
    tool: 'web',
    duration_ms: 999,
  }),
  makeEvent({
    id: 'e10',
    ts: at(7),
    namespace: 'search',
    key_id: 'alice',
    direction: 'server_to_client',
    kind: 'request',
    method: 'sampling/createMessage',
    tool: null,
    outcome: 'rpc_error',
    duration_ms: 500,
  }),
];

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  tenantAdmin: 'acme-admin-key-0123456789',
  user: 'plain-user-key-0123456789',
  expired: 'expired-admin-key-0123456',
};

function principal(keyId: string, overrides: Partial<Principal> = {}): Principal {
  return {
    keyId,
    user: null,
    tenant: null,
    role: 'admin',
    namespaces: ['*'],
    rateLimit: null,
    expiresAt: null,
    ...overrides,
  };
}

const PRINCIPALS: Record<string, Principal> = {
  [sha256Hex(KEYS.admin)]: principal('ops'),
  [sha256Hex(KEYS.tenantAdmin)]: principal('acme-ops', { tenant: 'acme' }),
  [sha256Hex(KEYS.user)]: principal('alice', { role: 'user', tenant: 'acme' }),
  [sha256Hex(KEYS.expired)]: principal('old-ops', { expiresAt: Date.now() - 1_000 }),
};

describe('analytics REST API', () => {
  let dir: TempDir;
  let bus: InProcessBus;
  let channel: InProcessEventChannel;
  let analytics: AnalyticsHandle;
  let verifyCalls: string[];
  const { logger, lines } = memoryLogger();

  const get = (
    path: string,
    key: string | null = KEYS.admin,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${analytics.url}${path}`, {
      headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers },
    });
  const json = async <T = Record<string, unknown>>(
    path: string,
    key: string | null = KEYS.admin,
  ): Promise<T> => {
    const response = await get(path, key);
    const body = (await response.json()) as T;
    if (response.status !== 200)
      throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
    return body;
  };
  const registerVerify = () =>
    bus.registerRequestHandler(AUTH_KEY_VERIFY, (data) => {
      const { keySha256 } = data as { keySha256: string };
      verifyCalls.push(keySha256);
      const found = PRINCIPALS[keySha256];
      return found ? { ok: true, principal: found } : { ok: false };
    });

  beforeAll(async () => {
    dir = tempDir();
    bus = new InProcessBus();
    channel = new InProcessEventChannel();
    verifyCalls = [];
    registerVerify();
    analytics = await startAnalytics({
      port: 0,
      host: '127.0.0.1',
      dbPath: dir.file('analytics.duckdb'),
      config: testConfig(100_000),
      bus,
      logger,
      events: { kind: 'in-process', channel },
    });
    for (const event of EVENTS) channel.publish(event);
    // An invalid event never reaches the table and never stops ingest.
    channel.publish({ id: 'broken' } as unknown as McpEvent);
    await channel.flush();
  });

  afterAll(async () => {
    await analytics?.close();
    dir?.remove();
  });

  describe('GET /api/v1/summary', () => {
    it.each([
      [
        'no filter',
        '',
        {
          requests: 7,
          rejected: 1,
          errors: 2,
          error_rate: 2 / 6,
          tool_calls: 4,
          unique_keys: 3,
          p50_ms: 30,
          p95_ms: 57,
          p99_ms: 59.4,
        },
      ],
      [
        'namespace',
        '?namespace=search',
        {
          requests: 4,
          rejected: 1,
          errors: 1,
          error_rate: 1 / 3,
          tool_calls: 2,
          unique_keys: 2,
          p50_ms: 15,
          p95_ms: 28.5,
          p99_ms: 29.7,
        },
      ],
      [
        'tenant',
        '?tenant=acme',
        {
          requests: 4,
          rejected: 0,
          errors: 1,
          error_rate: 0.25,
          tool_calls: 3,
          unique_keys: 2,
          p50_ms: 25,
          p95_ms: 38.5,
          p99_ms: 39.7,
        },
      ],
      [
        'key_id',
        '?key_id=carol',
        {
          requests: 2,
          rejected: 0,
          errors: 1,
          error_rate: 0.5,
          tool_calls: 1,
          unique_keys: 1,
          p50_ms: 55,
          p95_ms: 59.5,
          p99_ms: 59.9,
        },
      ],
      [
        'tool',
        '?tool=read',
        {
          requests: 2,
          rejected: 0,
          errors: 1,
          error_rate: 0.5,
          tool_calls: 2,
          unique_keys: 2,
          p50_ms: 45,
          p95_ms: 49.5,
          p99_ms: 49.9,
        },
      ],
      // from is inclusive (e03 at 00:02 counts), to exclusive (e05 at 01:01 does not). The
      // rejected e07 is no error: nothing that was let through failed.
      [
        'from/to',
        `?from=${at(2)}&to=${at(61)}`,
        {
          requests: 3,
          rejected: 1,
          errors: 0,
          error_rate: 0,
          tool_calls: 1,
          unique_keys: 1,
          p50_ms: 30,
          p95_ms: 39,
          p99_ms: 39.8,
        },
      ],
      [
        'namespace and tenant',
        '?namespace=files&tenant=globex',
        {
          requests: 2,
          rejected: 0,
          errors: 1,
          error_rate: 0.5,
          tool_calls: 1,
          unique_keys: 1,
          p50_ms: 55,
          p95_ms: 59.5,
          p99_ms: 59.9,
        },
      ],
      [
        'a range without events',
        '?from=2030-01-01',
        {
          requests: 0,
          rejected: 0,
          errors: 0,
          error_rate: 0,
          tool_calls: 0,
          unique_keys: 0,
          p50_ms: 0,
          p95_ms: 0,
          p99_ms: 0,
        },
      ],
    ])('answers the hand-computed figures with %s', async (_name, query, expected) => {
      const body = await json(`/api/v1/summary${query}`);
      expect(Object.keys(body).sort()).toEqual(Object.keys(expected).sort());
      for (const [field, value] of Object.entries(expected))
        expect(body[field]).toBeCloseTo(value, 6);
    });
  });

  it('GET /api/v1/tools answers per tool, most called first, limited', async () => {
    expect(await json('/api/v1/tools')).toEqual([
      {
        namespace: 'files',
        tool: 'read',
        calls: 2,
        rejected: 0,
        errors: 1,
        error_rate: 0.5,
        p50_ms: 45,
        p95_ms: 49.5,
      },
      {
        namespace: 'search',
        tool: 'web',
        calls: 2,
        rejected: 0,
        errors: 1,
        error_rate: 0.5,
        p50_ms: 15,
        p95_ms: 19.5,
      },
    ]);
    expect(await json('/api/v1/tools?limit=1&tenant=acme')).toEqual([
      {
        namespace: 'search',
        tool: 'web',
        calls: 2,
        rejected: 0,
        errors: 1,
        error_rate: 0.5,
        p50_ms: 15,
        p95_ms: 19.5,
      },
    ]);
  });

  it('GET /api/v1/timeseries gives every bucket of the range, empty ones as zeros', async () => {
    expect(await json(`/api/v1/timeseries?bucket=1h&from=${at(0)}&to=${at(180)}`)).toEqual([
      { ts: at(0), requests: 5, rejected: 1, errors: 1, p95_ms: 38 },
      { ts: at(60), requests: 2, rejected: 0, errors: 1, p95_ms: 59.5 },
      { ts: at(120), requests: 0, rejected: 0, errors: 0, p95_ms: 0 },
    ]);
    const minutes = await json<Array<{ ts: string; requests: number }>>(
      `/api/v1/timeseries?bucket=1m&from=${at(0)}&to=${at(5)}&namespace=search`,
    );
    expect(minutes.map((point) => point.requests)).toEqual([1, 1, 1, 0, 1]);
  });

  it('GET /api/v1/keys answers per key with its last activity, then the requests without a key', async () => {
    const keys = await json<KeyStats[]>('/api/v1/keys');
    expect(keys).toEqual([
      {
        key_id: 'alice',
        user: 'alice@acme.example',
        tenant: 'acme',
        requests: 2,
        rejected: 0,
        errors: 1,
        error_rate: 0.5,
        last_seen: at(7),
      },
      {
        key_id: 'bob',
        user: 'bob@acme',
        tenant: 'acme',
        requests: 2,
        rejected: 0,
        errors: 0,
        error_rate: 0,
        last_seen: at(3),
      },
      {
        key_id: 'carol',
        user: 'carol@globex',
        tenant: 'globex',
        requests: 2,
        rejected: 0,
        errors: 1,
        error_rate: 0.5,
        last_seen: at(62),
      },
      // e07: refused before any key was known.
      {
        key_id: null,
        user: null,
        tenant: null,
        requests: 1,
        rejected: 1,
        errors: 0,
        error_rate: 0,
        last_seen: at(4),
      },
    ]);
    // The rows add up to the summary under the same filters.
    for (const query of ['', '?namespace=search', `?from=${at(2)}&to=${at(61)}`]) {
      const rows = await json<KeyStats[]>(`/api/v1/keys${query}`);
      const summary = await json<Summary>(`/api/v1/summary${query}`);
      expect(rows.reduce((sum, k) => sum + k.requests, 0)).toBe(summary.requests);
      expect(rows.reduce((sum, k) => sum + k.rejected, 0)).toBe(summary.rejected);
      expect(rows.reduce((sum, k) => sum + k.errors, 0)).toBe(summary.errors);
    }
    // A key filter leaves the keyless row out.
    expect((await json<KeyStats[]>('/api/v1/keys?key_id=bob')).map((k) => k.key_id)).toEqual([
      'bob',
    ]);
  });

  it('GET /api/v1/namespaces answers per namespace', async () => {
    expect(await json('/api/v1/namespaces')).toEqual([
      {
        namespace: 'search',
        requests: 4,
        rejected: 1,
        errors: 1,
        error_rate: 1 / 3,
        p95_ms: 28.5,
      },
      { namespace: 'files', requests: 3, rejected: 0, errors: 1, error_rate: 1 / 3, p95_ms: 59 },
    ]);
  });

  it('server keeps the traffic of that virtual server in every answer', async () => {
    const query = '?server=assistant';
    expect(await json<Summary>(`/api/v1/summary${query}`)).toMatchObject({
      requests: 2,
      rejected: 0,
      errors: 0,
      tool_calls: 2,
      unique_keys: 2,
      p50_ms: 25,
    });
    // Its calls under the member namespace and the backend's tool name.
    expect(
      (await json<ToolStats[]>(`/api/v1/tools${query}`)).map((t) => [t.namespace, t.tool]),
    ).toEqual([
      ['files', 'read'],
      ['search', 'web'],
    ]);
    expect(
      (await json<NamespaceStats[]>(`/api/v1/namespaces${query}`)).map((n) => n.namespace),
    ).toEqual(['files', 'search']);
    const events = await json<{ events: McpEvent[] }>(`/api/v1/events${query}`);
    expect(events.events.map((event) => event.id)).toEqual(['e04', 'e01']);
    const keys = await json<KeyStats[]>(`/api/v1/keys${query}`);
    expect(keys.map((k) => [k.key_id, k.requests])).toEqual([
      ['alice', 1],
      ['bob', 1],
    ]);
    expect((await json<Summary>('/api/v1/summary?server=nowhere')).requests).toBe(0);
  });

  it('GET /api/v1/servers answers per virtual server, namespace routes in no row', async () => {
    expect(await json('/api/v1/servers')).toEqual([
      { server: 'assistant', requests: 2, rejected: 0, errors: 0, error_rate: 0, p95_ms: 38.5 },
    ]);
    expect(await json('/api/v1/servers?tenant=globex')).toEqual([]);
  });

  it('GET /api/v1/histogram counts the durations of the filtered requests in fixed log-scale buckets', async () => {
    const nonEmpty = (histogram: LatencyHistogram) =>
      histogram.buckets.filter((b) => b.requests > 0);
    const all = await json<LatencyHistogram>('/api/v1/histogram');
    expect(all.buckets.map((b) => [b.lower_ms, b.upper_ms])).toEqual(
      [0, ...LATENCY_BUCKET_BOUNDS].map((lower, i) => [lower, LATENCY_BUCKET_BOUNDS[i] ?? null]),
    );
    // Durations 1 (e07, rejected), 10, 20 (error), 30, 40, 50 (error), 60.
    expect(nonEmpty(all)).toEqual([
      { lower_ms: 1, upper_ms: 2, requests: 1, rejected: 1, errors: 0 },
      { lower_ms: 10, upper_ms: 20, requests: 1, rejected: 0, errors: 0 },
      { lower_ms: 20, upper_ms: 50, requests: 3, rejected: 0, errors: 1 },
      { lower_ms: 50, upper_ms: 100, requests: 2, rejected: 0, errors: 1 },
    ]);
    // One tool, as the dashboard asks when a tool is selected.
    expect(nonEmpty(await json('/api/v1/histogram?namespace=files&tool=read'))).toEqual([
      { lower_ms: 20, upper_ms: 50, requests: 1, rejected: 0, errors: 0 },
      { lower_ms: 50, upper_ms: 100, requests: 1, rejected: 0, errors: 1 },
    ]);
    expect(nonEmpty(await json('/api/v1/histogram?from=2030-01-01'))).toEqual([]);
  });

  it('GET /api/v1/events pages through raw events, newest first, without gaps or repeats', async () => {
    const seen: string[] = [];
    let before: string | null = null;
    let pages = 0;
    do {
      const query: string = `/api/v1/events?limit=4${before ? `&before=${encodeURIComponent(before)}` : ''}`;
      const page = await json<{ events: McpEvent[]; next_before: string | null }>(query);
      seen.push(...page.events.map((event) => event.id));
      before = page.next_before;
      pages++;
    } while (before && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['e06', 'e05', 'e10', 'e09', 'e08', 'e07', 'e04', 'e03', 'e02', 'e01']);
    const [first] = (await json<{ events: McpEvent[] }>('/api/v1/events?limit=1&key_id=carol'))
      .events;
    expect(first).toEqual(EVENTS[5]);
    const older = await json<{ events: McpEvent[] }>(`/api/v1/events?before=${at(2)}`);
    expect(older.events.map((event) => event.id)).toEqual(['e02', 'e01']);
  });

  describe('bad parameters', () => {
    it.each([
      ['/api/v1/summary?from=yesterday', 'from'],
      ['/api/v1/summary?to=2025-13-01', 'to'],
      [`/api/v1/summary?from=${at(10)}&to=${at(5)}`, 'from'],
      ['/api/v1/summary?tenat=acme', 'tenat'],
      ['/api/v1/summary?namespace=a&namespace=b', 'namespace'],
      ['/api/v1/tools?server=', 'server'],
      [`/api/v1/servers?server=${'x'.repeat(257)}`, 'server'],
      ['/api/v1/events?server=a&server=b', 'server'],
      ['/api/v1/tools?limit=0', 'limit'],
      ['/api/v1/timeseries?bucket=5m', 'bucket'],
      ['/api/v1/timeseries?bucket=1m&from=2020-01-01&to=2025-01-01', 'bucket'],
      ['/api/v1/events?before=soon', 'before'],
      ['/api/v1/keys?limit=5', 'limit'],
      ['/api/v1/histogram?bucket=1m', 'bucket'],
    ])('%s is a 400 naming "%s"', async (path, parameter) => {
      const response = await get(path);
      expect(response.status).toBe(400);
      const body = (await response.json()) as {
        error: { code: string; message: string; requestId: string };
      };
      expect(body.error.code).toBe('bad_request');
      expect(body.error.message).toContain(`"${parameter}"`);
      expect(body.error.requestId).toBe(response.headers.get('x-request-id'));
    });
  });

  describe('authentication', () => {
    it.each([
      ['no key', null],
      ['an unknown key', 'unknown-key-0123456789abcdef'],
      ['an expired key', KEYS.expired],
    ])('answers %s with 401 and WWW-Authenticate', async (_name, key) => {
      const response = await get('/api/v1/summary', key);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.json()).toEqual({
        error: {
          code: 'unauthorized',
          message: expect.any(String) as string,
          requestId: response.headers.get('x-request-id'),
        },
      });
    });

    it('accepts the key in X-API-Key', async () => {
      const response = await get('/api/v1/summary', null, { 'X-API-Key': KEYS.admin });
      expect(response.status).toBe(200);
    });

    it('answers a valid key without the admin role exactly as an unknown key: no oracle', async () => {
      const answers = await Promise.all(
        [KEYS.user, 'unknown-key-0123456789abcdef'].map(async (key) => {
          const response = await get('/api/v1/summary', key);
          const body = (await response.json()) as { error: Record<string, unknown> };
          return {
            status: response.status,
            authenticate: response.headers.get('www-authenticate'),
            error: { ...body.error, requestId: undefined },
          };
        }),
      );
      expect(answers[0].status).toBe(401);
      expect(answers[0]).toEqual(answers[1]);
    });

    it('limits refused keys per client address (429, then even an admin key waits), and key-less requests and repeats on their own', async () => {
      // From addresses of their own (the whole 127/8 is local), so no other test is blocked.
      const from = (address: string, key: string | null) =>
        new Promise<{ status: number; retryAfter?: string; code?: string }>((resolve, reject) => {
          const url = new URL('/api/v1/summary', analytics.url);
          const req = httpRequest(
            url,
            {
              localAddress: address,
              agent: false,
              headers: key ? { authorization: `Bearer ${key}` } : {},
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  retryAfter: res.headers['retry-after'],
                  code: (JSON.parse(text) as { error?: { code?: string } }).error?.code,
                }),
              );
            },
          );
          req.on('error', reject);
          req.end();
        });
      // Ten different refused keys: the eleventh attempt waits, and so does every request of
      // that address, an admin key's too.
      for (let i = 0; i < 10; i++) {
        expect((await from('127.0.0.31', `guess-${i}-0123456789abcdef`)).status).toBe(401);
      }
      const blocked = await from('127.0.0.31', 'guess-10-0123456789abcdef');
      expect(blocked).toMatchObject({ status: 429, code: 'too_many_auth_failures' });
      expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
      expect((await from('127.0.0.31', KEYS.admin)).status).toBe(429);
      // Key-less requests, and repeats of a key refused moments ago (a dashboard retrying),
      // have an allowance of their own, which never blocks a new key.
      for (let i = 0; i < 10; i++) expect((await from('127.0.0.32', null)).status).toBe(401);
      expect((await from('127.0.0.32', null)).status).toBe(429);
      expect((await from('127.0.0.32', KEYS.admin)).status).toBe(200);
      const viewer = 'viewer-key-0123456789abcdef';
      PRINCIPALS[sha256Hex(viewer)] = principal('viewer', { role: 'user' });
      // Judged once (a failed attempt), then ten repeats (knocking), then 429 for repeats.
      for (let i = 0; i < 11; i++) expect((await from('127.0.0.34', viewer)).status).toBe(401);
      expect((await from('127.0.0.34', viewer)).status).toBe(429);
      expect((await from('127.0.0.34', KEYS.admin)).status).toBe(200);
      // Other addresses are not affected.
      expect((await from('127.0.0.33', KEYS.admin)).status).toBe(200);
    });

    it('asks the auth service once per key while its answer is cached', async () => {
      const key = 'cache-probe-key-0123456789';
      PRINCIPALS[sha256Hex(key)] = principal('probe');
      const before = verifyCalls.length;
      for (let i = 0; i < 3; i++) expect((await get('/api/v1/summary', key)).status).toBe(200);
      expect(verifyCalls.length - before).toBe(1);
      expect(verifyCalls.at(-1)).toBe(sha256Hex(key));
    });

    it('answers 503 auth_unavailable with Retry-After when auth is down and the key is not cached', async () => {
      bus.unregisterRequestHandler(AUTH_KEY_VERIFY);
      try {
        const response = await get('/api/v1/summary', 'never-seen-key-0123456789');
        expect(response.status).toBe(503);
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
          'auth_unavailable',
        );
        // A key verified before the outage keeps working from the cache.
        expect((await get('/api/v1/summary', KEYS.admin)).status).toBe(200);
      } finally {
        registerVerify();
      }
    });
  });

  describe('tenant admins', () => {
    it('see only their tenant', async () => {
      const scoped = await json('/api/v1/summary', KEYS.tenantAdmin);
      expect(scoped).toMatchObject({ requests: 4, errors: 1, tool_calls: 3, unique_keys: 2 });
      expect(await json('/api/v1/summary?tenant=acme', KEYS.tenantAdmin)).toEqual(scoped);
      const keys = await json<Array<{ key_id: string }>>('/api/v1/keys', KEYS.tenantAdmin);
      expect(keys.map((k) => k.key_id)).toEqual(['alice', 'bob']);
      const events = await json<{ events: McpEvent[] }>('/api/v1/events', KEYS.tenantAdmin);
      expect(new Set(events.events.map((e) => e.tenant))).toEqual(new Set(['acme']));
    });

    it('get 403 asking for another tenant', async () => {
      const response = await get('/api/v1/summary?tenant=globex', KEYS.tenantAdmin);
      expect(response.status).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    });
  });

  describe('every response', () => {
    it('carries X-Request-Id: the client’s when sane, else a fresh one', async () => {
      expect(
        (await get('/api/v1/summary', KEYS.admin, { 'X-Request-Id': 'trace-42' })).headers.get(
          'x-request-id',
        ),
      ).toBe('trace-42');
      const generated = (
        await get('/healthz', null, { 'X-Request-Id': 'bad id with spaces' })
      ).headers.get('x-request-id');
      expect(generated).toMatch(/^[0-9a-f-]{36}$/);
      const notFound = await get('/api/v1/nothing-here');
      expect(notFound.status).toBe(404);
      expect(await notFound.json()).toEqual({
        error: {
          code: 'not_found',
          message: expect.stringContaining('/api/v1/nothing-here') as string,
          requestId: notFound.headers.get('x-request-id'),
        },
      });
    });
  });

  it('serves /healthz and /readyz without a key', async () => {
    expect(await json('/healthz', null)).toEqual({ status: 'ok' });
    const ready = await json<{
      status: string;
      checks: Record<string, string>;
      ingest: { inserted: number; invalid: number };
    }>('/readyz', null);
    expect(ready.status).toBe('ok');
    expect(ready.checks).toEqual({ duckdb: 'ok', events: 'ok' });
    expect(ready.ingest).toMatchObject({ inserted: EVENTS.length, invalid: 1 });
  });

  describe('documentation and dashboard', () => {
    it('serves an OpenAPI document, without a key, whose every path answers', async () => {
      const document = await json<{ openapi: string; paths: Record<string, unknown> }>(
        '/api/v1/openapi.json',
        null,
      );
      expect(document.openapi).toBe('3.1.0');
      const paths = Object.keys(document.paths);
      expect(paths.sort()).toEqual(
        [
          'admin/keys',
          'admin/keys/{id}',
          'context',
          'events',
          'histogram',
          'keys',
          'namespaces',
          'pins',
          'pins/{namespace}/{tool}/approve',
          'servers',
          'summary',
          'timeseries',
          'tools',
        ].map((name) => `/api/v1/${name}`),
      );
      // The admin routes ask the auth service, which this test does not run: they are tested
      // with it (test/runtime-keys*.int-spec.ts). The pins need a pin store, which this service
      // was started without (test/pins-api.int-spec.ts gives it one).
      const data = paths.filter((path) => !/^\/api\/v1\/(admin|pins)(\/|$)/.test(path));
      for (const path of data) expect([path, (await get(path)).status]).toEqual([path, 200]);
      const pins = await get('/api/v1/pins');
      expect(pins.status).toBe(503);
      expect(await pins.json()).toMatchObject({
        error: {
          code: 'unavailable',
          message: expect.stringContaining('without a pin store') as string,
        },
      });
    });

    it('serves the API reference page', async () => {
      const response = await get('/api/docs', null);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/html');
      expect(await response.text()).toContain('/api/v1/timeseries');
    });

    it('serves the dashboard page and its browser module under a same-origin CSP', async () => {
      const page = await get('/', null);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('<script type="module" src="/dashboard/main.js">');
      const script = await get('/dashboard/main.js', null);
      expect(script.headers.get('content-type')).toContain('javascript');
      // Values from the API (tool names, users) are client-controlled: only textContent, never markup.
      expect(await script.text()).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write/,
      );
    });
  });

  it('never writes a key to the log', () => {
    const log = lines.join('');
    expect(log).toContain('"path":"/api/v1/summary"');
    for (const key of Object.values(KEYS)) expect(log).not.toContain(key);
  });
});
