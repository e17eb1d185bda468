import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ConfigStore,
  type KeyListing,
  type McpEvent,
  NatsBus,
  type NatsNames,
  natsNames,
  parseConfig,
  sha256Hex,
} from '#common';
import { pino } from 'pino';
import { type AnalyticsHandle, startAnalytics } from '../apps/analytics/src/bootstrap.js';
import { type AuthHandle, startAuth } from '../apps/auth/src/bootstrap.js';
import { type CliIo, runCli } from '../apps/cli/src/cli.js';
import { type EdgeHandle, startEdge } from '../apps/edge/src/bootstrap.js';
import { eventually } from './support/eventually.js';
import { freePort, ROOT } from './support/processes.js';
import { StreamableRawClient } from './support/raw-client.js';
import { type PrivateNatsServer, startPrivateNatsServer } from './support/private-nats-server.js';
import { ToolboxBackend } from './support/toolbox-backend.js';

// SPEC §5 (v2) keys at run time, distributed: a private nats-server with JetStream (the test
// kills and restarts it), two auth replicas sharing the key-value bucket, three edges and the
// analytics service with the admin API, each with its own connection as in production.

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const ADMIN_KEY = `ops-${randomUUID()}`;
const ACME_ADMIN_KEY = `acme-ops-${randomUUID()}`;
const GLOBEX_ADMIN_KEY = `globex-ops-${randomUUID()}`;
const FILE_USER_KEY = `file-user-${randomUUID()}`;

function configYaml(backendUrl: string, prefix: string): string {
  return `
namespaces:
  tools: { upstream: { url: "${backendUrl}" } }
  tools2: { upstream: { url: "${backendUrl}" } }
  rec: { upstream: { command: "${process.execPath}", args: ["${join(ROOT, 'test/support/toolbox-stdio.mjs')}"] } }
roles:
  analyst: { namespaces: ["tools"], tools: { deny: ["delete_*"] } }
  auditor: { admin: true }
  ops: { admin: true, namespaces: ["*"] }
keys:
  - { id: ops, key: "${ADMIN_KEY}", role: admin, namespaces: ["*"] }
  - { id: acme-ops, key: "${ACME_ADMIN_KEY}", tenant: acme, roles: ["auditor"], namespaces: ["tools", "rec"], tools: { deny: ["delete_*"] } }
  - { id: globex-ops, key: "${GLOBEX_ADMIN_KEY}", tenant: globex, role: admin }
  - { id: acme-file, user: file@acme.example, key: "${FILE_USER_KEY}", tenant: acme, namespaces: ["tools"], rate_limit: { requests: 100, per: 1m } }
# The test polls with revoked keys from one address: those refusals must not lock it out.
auth: { max_failures: { count: 100000, per: 1m } }
events: { nats_prefix: ${prefix} }
`;
}

interface Service<T> {
  handle: T;
  bus: NatsBus;
}

describe('keys at run time over NATS: two auth replicas, three edges, the admin API', () => {
  const run = randomBytes(4).toString('hex');
  let nats: PrivateNatsServer;
  let dir: string;
  let backend: ToolboxBackend;
  let config: ConfigStore;
  let names: NatsNames;
  let auths: Array<Service<AuthHandle>> = [];
  const edges: Array<Service<EdgeHandle>> = [];
  let analytics: Service<AnalyticsHandle>;
  let admin: NatsConnection;

  const startAuthReplica = async (i: number): Promise<Service<AuthHandle>> => {
    const bus = await NatsBus.connect(nats.url, `auth-${i}`, names);
    const handle = await startAuth({
      config,
      logger,
      transport: { kind: 'nats', url: nats.url, bus },
    });
    return { handle, bus };
  };

  beforeAll(async () => {
    nats = await startPrivateNatsServer();
    dir = mkdtempSync(join(tmpdir(), 'gw-runtime-keys-'));
    backend = await new ToolboxBackend().start();
    config = new ConfigStore(parseConfig(configYaml(backend.url, `rk${run}`), {}, 'test'));
    names = natsNames(`rk${run}`);
    auths = [await startAuthReplica(0), await startAuthReplica(1)];
    for (let i = 0; i < 3; i++) {
      const bus = await NatsBus.connect(nats.url, `edge-${i}`, names);
      const handle = await startEdge({
        port: 0,
        host: '127.0.0.1',
        edgeId: `edge-${i}-${run}`,
        sessionSecret: 'runtime-keys-session-secret',
        config,
        logger,
        bus,
        events: { kind: 'jetstream', connection: bus.connection, names },
      });
      edges.push({ handle, bus });
    }
    const analyticsBus = await NatsBus.connect(nats.url, 'analytics', names);
    analytics = {
      bus: analyticsBus,
      handle: await startAnalytics({
        port: 0,
        host: '127.0.0.1',
        dbPath: join(dir, 'analytics.duckdb'),
        config,
        bus: analyticsBus,
        logger,
        events: { kind: 'jetstream', connection: analyticsBus.connection, names },
      }),
    };
    admin = await connect({ servers: nats.url, name: 'runtime-keys-test' });
    for (const edge of edges) {
      await eventually(
        async () => (await fetch(`${edge.handle.url}/readyz`)).status === 200,
        10_000,
        'the edges to be ready',
        20,
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const edge of edges) await edge.handle.close(1_000);
    await analytics?.handle.close();
    for (const auth of auths) await auth.handle.close();
    for (const service of [...edges, analytics, ...auths]) await service?.bus.close();
    await admin?.close();
    await backend?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // --- helpers -------------------------------------------------------------------------------

  const api = async (
    method: string,
    path: string,
    key: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> => {
    const response = await fetch(`${analytics.handle.url}/api/v1/admin/keys${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${key}`,
        ...(body !== undefined && { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };

  const create = async (body: Record<string, unknown>, key = ADMIN_KEY) => {
    const answer = await api('POST', '', key, body);
    if (answer.status !== 201)
      throw new Error(`create: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body as { id: string; key: string };
  };

  const list = async (key = ADMIN_KEY): Promise<KeyListing[]> => {
    const answer = await api('GET', '', key);
    expect(answer.status).toBe(200);
    return answer.body as KeyListing[];
  };

  /** The status of an MCP initialize with `key` on one edge: 200 when the key works there. */
  const initializeStatus = async (edge: EdgeHandle, key: string): Promise<number> => {
    const response = await fetch(`${edge.url}/mcp/tools`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${key}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'runtime-keys', version: '1.0.0' },
        },
      }),
    });
    await response.body?.cancel();
    return response.status;
  };

  const statuses = (key: string) =>
    Promise.all(edges.map((edge) => initializeStatus(edge.handle, key)));

  /** Waits until every edge answers `status` for `key`; resolves to how long that took. */
  const everyEdgeAnswers = async (key: string, status: number, timeoutMs: number) => {
    const started = performance.now();
    await eventually(
      async () => (await statuses(key)).every((s) => s === status),
      timeoutMs,
      `every edge to answer ${status}`,
      25,
    );
    return performance.now() - started;
  };

  const auditEvents = async (key = ADMIN_KEY): Promise<McpEvent[]> => {
    const response = await fetch(
      `${analytics.handle.url}/api/v1/events?namespace=_admin&limit=1000`,
      { headers: { Authorization: `Bearer ${key}` } },
    );
    expect(response.status).toBe(200);
    return ((await response.json()) as { events: McpEvent[] }).events;
  };

  const cli = async (argv: string[], adminKey = ADMIN_KEY) => {
    let out = '';
    let err = '';
    const io: CliIo = { out: (text) => (out += text), err: (text) => (err += text) };
    const code = await runCli(
      argv,
      { MCP_GATEWAY_URL: analytics.handle.url, MCP_GATEWAY_ADMIN_KEY: adminKey },
      io,
    );
    return { code, out, err };
  };

  // --- behaviour -----------------------------------------------------------------------------

  it('creates a key whose secret, shown once, works on every edge; only its digest is stored', async () => {
    const created = await create({
      id: 'alice-api',
      user: 'alice@acme.example',
      tenant: 'acme',
      roles: ['analyst'],
      rate_limit: { requests: 50, per: '1m' },
    });
    expect(created).toEqual({
      id: 'alice-api',
      key: expect.stringMatching(/^mcpgw_[\w-]{43}$/) as string,
    });
    await everyEdgeAnswers(created.key, 200, 2_000);

    // The bucket of the deployment's prefix holds the record with the SHA-256, not the secret.
    const kv = await new Kvm(admin).open(names.keysBucket);
    expect(names.keysBucket).toBe(`rk${run}_keys`);
    const entry = await kv.get('alice-api');
    expect(entry?.string()).not.toContain(created.key);
    expect(entry?.json()).toMatchObject({
      id: 'alice-api',
      key_sha256: sha256Hex(created.key),
      user: 'alice@acme.example',
      tenant: 'acme',
      roles: ['analyst'],
      rate_limit: { requests: 50, per: '1m' },
      created_by: 'ops',
    });
  });

  it('lists file keys (source file) and created keys (source api, who and when), never a secret', async () => {
    const created = await create({ user: 'bob@example.com', namespaces: ['tools'] });
    expect(created.id).toMatch(/^key-[0-9a-f]{12}$/);
    const keys = await list();
    const text = JSON.stringify(keys);
    expect(text).not.toContain(created.key);
    expect(text).not.toContain(sha256Hex(created.key));
    expect(text).not.toContain('key_sha256');
    expect(keys).toContainEqual({
      id: 'acme-file',
      source: 'file',
      user: 'file@acme.example',
      tenant: 'acme',
      roles: [],
      namespaces: ['tools'],
      tools: null,
      inherited_tools: [],
      rate_limit: { requests: 100, per: '1m' },
      expires_at: null,
      admin: false,
      created_at: null,
      created_by: null,
    });
    expect(keys.find((key) => key.id === 'acme-ops')).toMatchObject({
      source: 'file',
      admin: true,
    });
    const bob = keys.find((key) => key.id === created.id);
    expect(bob).toMatchObject({
      source: 'api',
      user: 'bob@example.com',
      tenant: null,
      namespaces: ['tools'],
      created_by: 'ops',
      expires_at: null,
    });
    expect(Date.now() - Date.parse(bob!.created_at!)).toBeLessThan(60_000);
  });

  it('refuses a revoked key on every edge within 2 s, caches warm', async () => {
    const { id, key } = await create({ user: 'carol@example.com', namespaces: ['*'] });
    await everyEdgeAnswers(key, 200, 2_000);
    // Every edge now answers from its cache; the revocation must reach each of them.
    expect(await statuses(key)).toEqual([200, 200, 200]);
    const started = performance.now();
    expect((await api('DELETE', `/${id}`, ADMIN_KEY)).status).toBe(204);
    await everyEdgeAnswers(key, 401, 2_000);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((await list()).map((listed) => listed.id)).not.toContain(id);
    expect((await api('DELETE', `/${id}`, ADMIN_KEY)).status).toBe(404);
  });

  it('keeps a tenant admin to its tenant: its keys only, 404 for others’, 403 to create elsewhere', async () => {
    const acmeKey = await create(
      { id: 'acme-bot', user: 'bot@acme.example', namespaces: ['tools'] },
      ACME_ADMIN_KEY,
    );
    const globalKey = await create({ id: 'global-bot', user: 'bot@example.com' });
    const acmeList = await list(ACME_ADMIN_KEY);
    expect(acmeList.find((key) => key.id === 'acme-bot')).toMatchObject({
      tenant: 'acme',
      created_by: 'acme-ops',
    });
    expect(new Set(acmeList.map((key) => key.tenant))).toEqual(new Set(['acme']));
    expect(acmeList.map((key) => key.id)).not.toContain('global-bot');

    const elsewhere = await api('POST', '', ACME_ADMIN_KEY, { user: 'x', tenant: 'globex' });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body).toMatchObject({ error: { code: 'forbidden' } });

    expect((await list(GLOBEX_ADMIN_KEY)).map((key) => key.id)).toEqual(['globex-ops']);
    for (const id of ['acme-bot', 'acme-file', 'global-bot']) {
      const answer = await api('DELETE', `/${id}`, GLOBEX_ADMIN_KEY);
      expect([id, answer.status, answer.body]).toEqual([
        id,
        404,
        { error: expect.objectContaining({ code: 'not_found' }) as unknown },
      ]);
    }
    await everyEdgeAnswers(acmeKey.key, 200, 2_000);
    expect((await api('DELETE', '/acme-bot', ACME_ADMIN_KEY)).status).toBe(204);
    await everyEdgeAnswers(acmeKey.key, 401, 2_000);
    expect((await api('DELETE', '/global-bot', ADMIN_KEY)).status).toBe(204);
    expect(globalKey.id).toBe('global-bot');
  });

  it('keeps a tenant admin’s new keys within its own access: 403 exceeds_grant naming the excess', async () => {
    const wider = await api('POST', '', ACME_ADMIN_KEY, {
      user: 'x',
      roles: ['ops'],
      namespaces: ['*'],
    });
    expect(wider.status).toBe(403);
    const { error } = wider.body as { error: { code: string; message: string } };
    expect(error.code).toBe('exceeds_grant');
    expect(error.message).toContain('roles.0: "ops" is not a role this admin holds');
    expect(error.message).toContain(
      'namespaces.0: "*" needs an admin that may use every namespace',
    );
    const elsewhere = await api('POST', '', ACME_ADMIN_KEY, { user: 'x', namespaces: ['tools2'] });
    expect(elsewhere).toMatchObject({
      status: 403,
      body: {
        error: { code: 'exceeds_grant', message: expect.stringContaining('"tools2"') as string },
      },
    });
    expect((await list()).map((key) => key.user)).not.toContain('x');

    // Within it, the key works, and never reaches a tool its creator may not call.
    const scoped = await create(
      { id: 'acme-scoped', user: 'y', namespaces: ['tools'] },
      ACME_ADMIN_KEY,
    );
    expect((await list(ACME_ADMIN_KEY)).find((key) => key.id === 'acme-scoped')).toMatchObject({
      tools: null,
      inherited_tools: [{ allow: ['*'], deny: ['delete_*'] }],
    });
    await everyEdgeAnswers(scoped.key, 200, 2_000);
    const client = new StreamableRawClient([edges[0].handle.url], 'tools', scoped.key);
    await client.initialize();
    const listed = await client.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const tools = (listed.messages[0].result as { tools: Array<{ name: string }> }).tools;
    expect(tools.map((tool) => tool.name)).toContain('read_note');
    expect(tools.map((tool) => tool.name)).not.toContain('delete_note');
    const call = await client.post({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'delete_note', arguments: {} },
    });
    expect(call.messages[0]).toMatchObject({ error: { message: 'Tool not found: delete_note' } });
    expect(backend.ran).not.toContain('delete_note');
  });

  it('binds a session to the key, not its id: a revoked id issued again takes over nothing', async () => {
    const first = await create({ id: 'reuse1', user: 'g', tenant: 'globex', namespaces: ['rec'] });
    const owner = new StreamableRawClient([edges[0].handle.url], 'rec', first.key);
    expect((await owner.initialize()).status).toBe(200);
    expect(owner.sessionId).toBeDefined();
    expect((await api('DELETE', '/reuse1', ADMIN_KEY)).status).toBe(204);

    // Another tenant's admin gets the id again; the new key presents the old key's session.
    const second = await create({ id: 'reuse1', user: 'a', namespaces: ['rec'] }, ACME_ADMIN_KEY);
    const thief = new StreamableRawClient([edges[0].handle.url], 'rec', second.key);
    thief.sessionId = owner.sessionId;
    const stolen = await thief.post({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'echo', arguments: {} },
    });
    expect(stolen.status).toBe(404);
    expect(stolen.text).toContain('unknown_session');

    // Its own session works.
    const own = new StreamableRawClient([edges[0].handle.url], 'rec', second.key);
    await own.initialize();
    const answer = await own.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(answer.status).toBe(200);
  });

  it('refuses a secret where a key id belongs with 400, never echoing or recording it', async () => {
    const { key } = await create({ user: 'pasted@example.com', namespaces: ['tools'] });
    for (const path of [`/${key}`, `/${encodeURIComponent(key.toUpperCase())}`]) {
      const answer = await api('DELETE', path, ADMIN_KEY);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: { code: 'bad_request' } });
      expect(JSON.stringify(answer.body)).not.toContain(key);
    }
    // Not revoked (nothing was sent on), and no audit event holds it.
    await everyEdgeAnswers(key, 200, 2_000);
    const refused = (event: McpEvent) =>
      event.method === 'admin/keys/revoke' && event.http_status === 400;
    const events = await eventually(
      async () => {
        const all = await auditEvents();
        return all.filter(refused).length >= 2 ? all : undefined;
      },
      10_000,
      'the refusals in the audit events',
      100,
    );
    expect(JSON.stringify(events)).not.toContain(key.slice(6));
    expect(events.filter(refused).map((event) => event.tool)).toEqual([null, null]);
    // An id may not take the shape of a secret either.
    const shaped = await api('POST', '', ADMIN_KEY, { id: 'mcpgw_x', user: 'x' });
    expect(shaped).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
  });

  it.each([
    ['a file key', 'DELETE', '/acme-file', undefined, 409, 'conflict', 'edit the file'],
    ['an unknown key', 'DELETE', '/nobody', undefined, 404, 'not_found', 'no key "nobody"'],
    ['a file key’s id', 'POST', '', { id: 'ops', user: 'x' }, 409, 'conflict', 'config file'],
    ['a created key’s id', 'POST', '', { id: 'alice-api', user: 'x' }, 409, 'conflict', 'exists'],
    [
      'an unknown role',
      'POST',
      '',
      { user: 'x', roles: ['nope'] },
      400,
      'bad_request',
      'roles.0: unknown role "nope"',
    ],
    [
      'an unknown namespace',
      'POST',
      '',
      { user: 'x', namespaces: ['nope'] },
      400,
      'bad_request',
      'namespaces.0',
    ],
    ['no user', 'POST', '', { namespaces: ['tools'] }, 400, 'bad_request', 'user: required'],
    [
      'a secret of its own',
      'POST',
      '',
      { user: 'x', key: 'my-own-secret-0123456789' },
      400,
      'bad_request',
      'key: unknown field',
    ],
    [
      'a bad duration',
      'POST',
      '',
      { user: 'x', rate_limit: { requests: 1, per: 'soon' } },
      400,
      'bad_request',
      'rate_limit.per',
    ],
    [
      'a past expiry',
      'POST',
      '',
      { user: 'x', expires_at: '2020-01-01T00:00:00Z' },
      400,
      'bad_request',
      'expires_at: must be in the future',
    ],
  ])('refuses %s', async (_name, method, path, body, status, code, message) => {
    const answer = await api(method, path, ADMIN_KEY, body);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({
      error: {
        code,
        message: expect.stringContaining(message) as string,
        requestId: expect.any(String) as string,
      },
    });
  });

  it('refuses a non-admin key, a created one included', async () => {
    const user = await create({ user: 'dave@example.com', namespaces: ['tools'] });
    expect((await api('GET', '', user.key)).status).toBe(401);
    expect((await api('POST', '', FILE_USER_KEY, { user: 'x' })).status).toBe(401);
  });

  it('makes a created key with an admin role an admin of the API', async () => {
    const auditor = await create({ user: 'erin@example.com', roles: ['auditor'] });
    await eventually(
      async () => (await api('GET', '', auditor.key)).status === 200,
      2_000,
      'the API to take the key',
      25,
    );
  });

  it('expires a created key on every edge at its expires_at', async () => {
    const expiresAt = new Date(Date.now() + 2_500).toISOString();
    const { key } = await create({
      user: 'frank@example.com',
      namespaces: ['tools'],
      expires_at: expiresAt,
    });
    await everyEdgeAnswers(key, 200, 2_000);
    await eventually(() => Date.now() > Date.parse(expiresAt), 3_000, 'the expiry', 25);
    expect(await statuses(key)).toEqual([401, 401, 401]);
  });

  it('keeps created keys across a restart of both auth replicas (durable in the bucket)', async () => {
    // Never used before the restart: no edge has it cached.
    const { key } = await create({ user: 'grace@example.com', namespaces: ['tools'] });
    for (const auth of auths) {
      await auth.handle.close();
      await auth.bus.close();
    }
    auths = [await startAuthReplica(2), await startAuthReplica(3)];
    expect(await statuses(key)).toEqual([200, 200, 200]);
  });

  it('keeps created keys across a restart of NATS, and revokes them after it within 2 s', async () => {
    const { id, key } = await create({ user: 'heidi@example.com', namespaces: ['tools'] });
    await nats.kill();
    await nats.restart();
    // The bucket is on the server's disk: the key is there after the restart...
    const kv = await new Kvm(admin).open(names.keysBucket);
    const entry = await eventually(
      async () => (await kv.get(id)) ?? undefined,
      10_000,
      'the bucket after the restart',
      50,
    );
    expect(entry.json()).toMatchObject({ id, key_sha256: sha256Hex(key) });
    // ...and every service reconnects by itself: the key, never used before, works everywhere.
    await everyEdgeAnswers(key, 200, 15_000);
    // The auth replicas watch the bucket again: a revocation still reaches every edge in 2 s.
    await eventually(
      async () => (await api('DELETE', `/${id}`, ADMIN_KEY)).status === 204,
      10_000,
      'the revocation',
      50,
    );
    const revokedAt = performance.now();
    await everyEdgeAnswers(key, 401, 2_000);
    expect(performance.now() - revokedAt).toBeLessThan(2_000);
    const after = await create({ user: 'ivan@example.com', namespaces: ['tools'] });
    await everyEdgeAnswers(after.key, 200, 2_000);
  }, 60_000);

  it('records every admin action, done or refused, as an audit event in analytics', async () => {
    const expected: Array<[Partial<McpEvent>, Partial<McpEvent>]> = [
      [
        { method: 'admin/keys/create', tool: 'alice-api', outcome: 'ok' },
        {
          namespace: '_admin',
          key_id: 'ops',
          tenant: null,
          http_status: 201,
          error_code: null,
          auth_method: 'key',
        },
      ],
      [
        { method: 'admin/keys/revoke', tool: 'acme-bot', key_id: 'acme-ops' },
        { tenant: 'acme', outcome: 'ok', http_status: 204 },
      ],
      [
        { method: 'admin/keys/revoke', tool: 'acme-file', key_id: 'ops' },
        { outcome: 'bad_request', http_status: 409, error_code: 'conflict' },
      ],
      [
        { method: 'admin/keys/create', key_id: 'acme-ops', error_code: 'forbidden' },
        { http_status: 403, tenant: 'acme', outcome: 'forbidden' },
      ],
      [
        { method: 'admin/keys/create', key_id: 'acme-ops', error_code: 'exceeds_grant' },
        { http_status: 403, tenant: 'acme', outcome: 'forbidden' },
      ],
      [
        { method: 'admin/keys/revoke', key_id: 'globex-ops', tool: 'acme-bot' },
        { outcome: 'bad_request', http_status: 404, tenant: 'globex', error_code: 'not_found' },
      ],
    ];
    const matches = (event: McpEvent, match: Partial<McpEvent>) =>
      Object.entries(match).every(([field, value]) => event[field as keyof McpEvent] === value);
    let events: McpEvent[] = [];
    await eventually(
      async () => {
        events = await auditEvents();
        return expected.every(([match]) => events.some((event) => matches(event, match)));
      },
      10_000,
      () =>
        `the audit events (have ${JSON.stringify(events.map((e) => [e.method, e.tool, e.key_id, e.outcome]))})`,
      100,
    );
    for (const [match, rest] of expected) {
      expect(events.find((event) => matches(event, match))).toMatchObject(rest);
    }
    // A tenant admin sees its own tenant's audit only.
    const acme = await auditEvents(ACME_ADMIN_KEY);
    expect(acme.length).toBeGreaterThan(0);
    expect(new Set(acme.map((event) => event.tenant))).toEqual(new Set(['acme']));
  });

  describe('the CLI (npx mcp-gateway keys …)', () => {
    it('creates (--json), lists and revokes keys', async () => {
      const created = await cli([
        'keys',
        'create',
        '--user',
        'judy@example.com',
        '--id',
        'judy',
        '--namespace',
        'tools',
        '--deny',
        'delete_*',
        '--rate',
        '10/1m',
        '--json',
      ]);
      expect([created.code, created.err]).toEqual([0, '']);
      const { id, key } = JSON.parse(created.out) as { id: string; key: string };
      expect(id).toBe('judy');
      await everyEdgeAnswers(key, 200, 2_000);
      expect((await list()).find((listed) => listed.id === 'judy')).toMatchObject({
        tools: { allow: ['*'], deny: ['delete_*'] },
        rate_limit: { requests: 10, per: '1m' },
      });

      const human = await cli([
        'keys',
        'create',
        '--user',
        'kim@example.com',
        '--namespace',
        'tools',
      ]);
      expect(human.code).toBe(0);
      expect(human.out).toMatch(/Created key key-[0-9a-f]{12}\.\n\n {2}mcpgw_\S+\n/);
      expect(human.out).toContain('only time the secret is shown');

      const table = await cli(['keys', 'list']);
      expect(table.code).toBe(0);
      const lines = table.out.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^ID\s+SOURCE\s+USER\s+TENANT/);
      expect(lines.find((line) => line.startsWith('judy '))).toMatch(
        /judy\s+api\s+judy@example\.com\s+-\s+no/,
      );
      expect(lines.find((line) => line.startsWith('acme-file '))).toMatch(/\bfile\b/);
      expect(table.out).not.toContain(key);

      const json = await cli(['keys', 'list', '--json']);
      expect((JSON.parse(json.out) as KeyListing[]).map((listed) => listed.id)).toContain('judy');

      expect(await cli(['keys', 'revoke', 'judy'])).toEqual({
        code: 0,
        out: 'Revoked key judy.\n',
        err: '',
      });
      await everyEdgeAnswers(key, 401, 2_000);
    });

    it('exits 1 with the gateway’s message when it refuses, or when it is unreachable', async () => {
      const wrongKey = await cli(['keys', 'list'], 'not-an-admin-key-0123456789');
      expect(wrongKey).toEqual({
        code: 1,
        out: '',
        err: 'error: a valid admin API key is required (unauthorized, HTTP 401)\n',
      });
      const closed = await freePort();
      const unreachable = await cli(['keys', 'list', '--url', `http://127.0.0.1:${closed}`]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.err).toMatch(
        new RegExp(`^error: cannot reach the gateway at http://127\\.0\\.0\\.1:${closed}: \\S`),
      );
      const fileKey = await cli(['keys', 'revoke', 'acme-file']);
      expect(fileKey.code).toBe(1);
      expect(fileKey.err).toContain('edit the file to revoke it (conflict, HTTP 409)');
    });
  });
});
