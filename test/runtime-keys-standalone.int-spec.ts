import 'reflect-metadata';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigStore,
  InProcessBus,
  InProcessEventChannel,
  type McpEvent,
  parseConfig,
  sha256Hex,
} from '#common';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { type AnalyticsHandle, startAnalytics } from '../apps/analytics/src/bootstrap.js';
import { type AuthHandle, startAuth } from '../apps/auth/src/bootstrap.js';
import { type EdgeHandle, startEdge } from '../apps/edge/src/bootstrap.js';
import { eventually } from './support/eventually.js';
import { ToolboxBackend } from './support/toolbox-backend.js';

// SPEC §5 (v2) keys at run time in standalone mode: the three services in one process over the
// in-process bus and event channel, wired as apps/standalone/src/main.ts wires them, the created
// keys in a file beside the DuckDB file.

/** Every line the three services log, at debug level: no secret may be among them. */
const logLines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  }),
);
const secrets: string[] = [];
const ADMIN_KEY = 'standalone-admin-key-0123456789';

describe('keys at run time in standalone mode', () => {
  let dir: string;
  let keysFile: string;
  let backend: ToolboxBackend;
  let config: ConfigStore;
  let bus: InProcessBus;
  let channel: InProcessEventChannel;
  let auth: AuthHandle;
  let analytics: AnalyticsHandle;
  let edge: EdgeHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-standalone-keys-'));
    keysFile = join(dir, 'keys.json');
    backend = await new ToolboxBackend().start();
    config = new ConfigStore(
      parseConfig(
        `namespaces:\n  tools: { upstream: { url: "${backend.url}" } }\n` +
          `keys:\n  - { id: ops, key: "${ADMIN_KEY}", role: admin, namespaces: ["*"] }\n`,
        {},
        'test',
      ),
    );
    bus = new InProcessBus();
    channel = new InProcessEventChannel();
    auth = await startAuth({ config, logger, transport: { kind: 'in-process', bus }, keysFile });
    analytics = await startAnalytics({
      port: 0,
      host: '127.0.0.1',
      dbPath: join(dir, 'analytics.duckdb'),
      config,
      bus,
      logger,
      events: { kind: 'in-process', channel },
    });
    edge = await startEdge({
      port: 0,
      host: '127.0.0.1',
      edgeId: 'standalone-edge',
      sessionSecret: 'standalone-session-secret',
      config,
      logger,
      bus,
      events: { kind: 'in-process', channel },
    });
  });

  afterAll(async () => {
    await edge?.close(1_000);
    await analytics?.close();
    await auth?.close();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (method: string, path = '', body?: unknown) =>
    fetch(`${analytics.url}/api/v1/admin/keys${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${ADMIN_KEY}`,
        ...(body !== undefined && { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  const initializeStatus = async (key: string): Promise<number> => {
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
          clientInfo: { name: 'standalone-keys', version: '1.0.0' },
        },
      }),
    });
    await response.body?.cancel();
    return response.status;
  };

  it('creates a key in the file beside the DuckDB file; it works at once, across an auth restart, until revoked', async () => {
    const response = await admin('POST', '', {
      id: 'laptop',
      user: 'me@example.com',
      namespaces: ['tools'],
    });
    expect(response.status).toBe(201);
    const { key } = (await response.json()) as { id: string; key: string };
    secrets.push(key);
    expect(await initializeStatus(key)).toBe(200);

    expect(existsSync(keysFile)).toBe(true);
    expect(statSync(keysFile).mode & 0o777).toBe(0o600);
    const text = readFileSync(keysFile, 'utf8');
    expect(text).toContain(sha256Hex(key));
    expect(text).not.toContain(key);

    await auth.close();
    auth = await startAuth({ config, logger, transport: { kind: 'in-process', bus }, keysFile });
    const listed = (await (await admin('GET')).json()) as Array<{ id: string; source: string }>;
    expect(listed).toEqual([
      expect.objectContaining({ id: 'ops', source: 'file' }),
      expect.objectContaining({ id: 'laptop', source: 'api', created_by: 'ops' }),
    ]);

    expect((await admin('DELETE', '/laptop')).status).toBe(204);
    expect(await initializeStatus(key)).toBe(401);
    expect(readFileSync(keysFile, 'utf8')).not.toContain(sha256Hex(key));
    expect((await admin('DELETE', '/ops')).status).toBe(409);
  });

  it.each([
    ['a body that is not JSON', 'application/json', '{ nope', 400, 'bad_request'],
    ['a body that is not a JSON object', 'text/plain', 'user=me', 400, 'bad_request'],
    ['a form body', 'application/x-www-form-urlencoded', 'id=x', 415, 'unsupported_media_type'],
  ])('answers %s in the API’s error format', async (_name, type, body, status, code) => {
    const response = await fetch(`${analytics.url}/api/v1/admin/keys`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': type },
      body,
    });
    expect(response.status).toBe(status);
    expect(await response.json()).toEqual({
      error: {
        code,
        message: expect.any(String) as string,
        requestId: expect.any(String) as string,
      },
    });
  });

  it('judges the caller before the body: without an admin key, a malformed body gets 401', async () => {
    for (const authorization of [undefined, 'Bearer not-a-key']) {
      const response = await fetch(`${analytics.url}/api/v1/admin/keys`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(authorization && { authorization }) },
        body: '{ nope',
      });
      expect(response.status).toBe(401);
    }
  });

  it('documents the admin routes in the API reference', async () => {
    const page = await (await fetch(`${analytics.url}/api/docs`)).text();
    expect(page).toContain('<span class="verb">DELETE</span> <code>/api/v1/admin/keys/{id}</code>');
    expect(page).toContain('<span class="verb">POST</span> <code>/api/v1/admin/keys</code>');
  });

  it('never logs a created key’s secret, nor its digest', () => {
    const log = logLines.join('');
    expect(log).toContain('key created');
    expect(secrets).toHaveLength(1);
    for (const secret of secrets) {
      expect(log).not.toContain(secret);
      expect(log).not.toContain(sha256Hex(secret));
    }
  });

  it('records the admin actions as audit events', async () => {
    let events: McpEvent[] = [];
    await eventually(
      async () => {
        const response = await fetch(`${analytics.url}/api/v1/events?namespace=_admin`, {
          headers: { Authorization: `Bearer ${ADMIN_KEY}` },
        });
        events = ((await response.json()) as { events: McpEvent[] }).events;
        return events.length >= 5;
      },
      5_000,
      'the audit events',
      50,
    );
    expect(
      events.map((event) => [event.method, event.tool, event.outcome, event.http_status]).reverse(),
    ).toEqual([
      ['admin/keys/create', 'laptop', 'ok', 201],
      ['admin/keys/revoke', 'laptop', 'ok', 204],
      ['admin/keys/revoke', 'ops', 'bad_request', 409],
      // The body that was not JSON, and the one that was not an object.
      ['admin/keys/create', null, 'bad_request', 400],
      ['admin/keys/create', null, 'bad_request', 400],
    ]);
    // Audit events are not traffic: the admin (who only used the admin API) has no row, no
    // `_admin` namespace shows up, and the summary counts only the MCP requests of the keys.
    const read = async <T>(path: string) =>
      (await (
        await fetch(`${analytics.url}/api/v1/${path}`, {
          headers: { Authorization: `Bearer ${ADMIN_KEY}` },
        })
      ).json()) as T;
    const keys = await read<Array<{ key_id: string | null; requests: number }>>('keys');
    const namespaces = await read<Array<{ namespace: string }>>('namespaces');
    const summary = await read<{ requests: number; rejected: number }>('summary');
    expect(keys.map((row) => row.key_id)).not.toContain('ops');
    expect(namespaces.map((row) => row.namespace)).not.toContain('_admin');
    expect(summary.requests).toBe(keys.reduce((sum, row) => sum + row.requests, 0));
    expect(await read('summary?namespace=_admin')).toMatchObject({ requests: 0, rejected: 0 });
  });
});
