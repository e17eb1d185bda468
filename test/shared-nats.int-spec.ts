import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ConfigStore,
  InProcessEventChannel,
  type McpEvent,
  NatsBus,
  type NatsNames,
  natsNamesAtStart,
  parseConfig,
} from '#common';
import { pino } from 'pino';
import { type AnalyticsHandle, startAnalytics } from '../apps/analytics/src/bootstrap.js';
import { type AuthHandle, startAuth } from '../apps/auth/src/bootstrap.js';
import { type EdgeHandle, startEdge } from '../apps/edge/src/bootstrap.js';
import { eventually } from './support/eventually.js';
import { connectClient } from './support/mcp.js';
import { ToolboxBackend } from './support/toolbox-backend.js';

// SPEC §3 `events.nats_prefix`: two deployments on one NATS (the shared nats-server of the
// tests), each an edge, an auth service and an analytics service with their own prefix, wired
// as the services' main.ts wire them (a bus per service, the names read from the config file).
// No event and no key crosses: with the v1 names, B's analytics would consume A's events from
// the one MCP_EVENTS stream, and B's auth, in the same queue group, would answer A's edge.

const NATS_URL = 'nats://127.0.0.1:4222';
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
/** Keys only stack B knows (non-admin). Each has a 1 in 2 chance to reach B's auth on v1 names. */
const B_ONLY_KEYS = Array.from({ length: 8 }, (_, i) => `b-only-${i}-${randomUUID()}`);

interface Stack {
  name: string;
  names: NatsNames;
  adminKey: string;
  edge: EdgeHandle;
  edgeId: string;
  analytics: AnalyticsHandle;
  close(): Promise<void>;
}

async function startStack(
  name: string,
  prefix: string,
  backendUrl: string,
  dir: string,
): Promise<Stack> {
  const adminKey = `admin-${name}-${randomUUID()}`;
  const keys = [`  - { id: admin-${name}, key: "${adminKey}", role: admin, namespaces: ["*"] }`];
  if (name === 'b') {
    keys.push(
      ...B_ONLY_KEYS.map((key, i) => `  - { id: b-only-${i}, key: "${key}", namespaces: ["*"] }`),
    );
  }
  const config = new ConfigStore(
    parseConfig(
      [
        `namespaces:\n  tools: { upstream: { url: "${backendUrl}" } }`,
        `keys:\n${keys.join('\n')}`,
        // Eight refused keys from one client IP must stay under the failed-key limit.
        'auth: { max_failures: { count: 100, per: 1m } }',
        `events: { nats_prefix: ${prefix} }`,
      ].join('\n'),
      {},
      `stack ${name}`,
    ),
  );
  const names = natsNamesAtStart(config, logger);
  const buses = await Promise.all(
    ['auth', 'analytics', 'edge'].map((service) =>
      NatsBus.connect(NATS_URL, `${service}-${prefix}`, names),
    ),
  );
  const [authBus, analyticsBus, edgeBus] = buses;
  const auth: AuthHandle = await startAuth({
    config,
    logger,
    transport: { kind: 'nats', url: NATS_URL, bus: authBus },
  });
  const analytics = await startAnalytics({
    port: 0,
    host: '127.0.0.1',
    dbPath: join(dir, `${name}.duckdb`),
    config,
    bus: analyticsBus,
    logger,
    events: { kind: 'jetstream', connection: analyticsBus.connection, names },
  });
  const edgeId = `edge-${name}-${randomUUID().slice(0, 8)}`;
  const edge = await startEdge({
    port: 0,
    host: '127.0.0.1',
    edgeId,
    sessionSecret: randomUUID(),
    config,
    logger,
    bus: edgeBus,
    events: { kind: 'jetstream', connection: edgeBus.connection, names },
  });
  // Ready as a load balancer sees it: NATS connected and this stack's auth answering.
  await eventually(
    async () => (await fetch(`${edge.url}/readyz`)).status === 200,
    10_000,
    `stack ${name}'s edge to be ready`,
    20,
  );
  return {
    name,
    names,
    adminKey,
    edge,
    edgeId,
    analytics,
    close: async () => {
      await edge.close(1_000);
      await analytics.close();
      await auth.close();
      for (const bus of buses) await bus.close();
    },
  };
}

/** POSTs an initialize to the stack's namespace with `key`: 200 when its auth knows the key. */
async function initializeStatus(stack: Stack, key: string): Promise<number> {
  const response = await fetch(`${stack.edge.url}/mcp/tools`, {
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
        clientInfo: { name: 'shared-nats', version: '1.0.0' },
      },
    }),
  });
  await response.body?.cancel();
  return response.status;
}

async function storedEvents(stack: Stack): Promise<McpEvent[]> {
  const response = await fetch(`${stack.analytics.url}/api/v1/events?limit=1000`, {
    headers: { Authorization: `Bearer ${stack.adminKey}` },
  });
  if (!response.ok) throw new Error(`events answered ${response.status}`);
  return ((await response.json()) as { events: McpEvent[] }).events;
}

describe('two deployments with their own events.nats_prefix on one NATS', () => {
  const run = randomBytes(4).toString('hex');
  let dir: string;
  let backend: ToolboxBackend;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let a: Stack;
  let b: Stack;
  /** Events of either stack seen on the v1 subjects (there must be none). */
  const onV1Subjects: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-shared-nats-'));
    backend = await new ToolboxBackend().start();
    nc = await connect({ servers: NATS_URL, name: 'shared-nats-test' });
    jsm = await jetstreamManager(nc);
    nc.subscribe('mcp.events.v1.>', {
      callback: (_error, msg) => void onV1Subjects.push(msg.string()),
    });
    await nc.flush();
    a = await startStack('a', `a-${run}`, backend.url, dir);
    b = await startStack('b', `b-${run}`, backend.url, dir);
  }, 30_000);

  afterAll(async () => {
    for (const stack of [a, b]) await stack?.close();
    for (const stack of [a, b]) {
      if (!stack) continue;
      await jsm.streams.delete(stack.names.eventsStream).catch(() => undefined);
      // The auth service's key-value bucket of created keys (a stream named KV_{bucket}).
      await jsm.streams.delete(`KV_${stack.names.keysBucket}`).catch(() => undefined);
    }
    await nc?.close();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores each stack’s events in its own analytics only', async () => {
    for (const stack of [a, b]) {
      const { client } = await connectClient(`${stack.edge.url}/mcp/tools`, stack.adminKey);
      await client.listTools();
      await client.callTool({ name: 'echo', arguments: {} });
      await client.close();
      await stack.edge.publisher.flush();
    }
    const stored = new Map<Stack, McpEvent[]>();
    for (const stack of [a, b]) {
      const { eventsStream, eventsSubjects, analyticsDurable } = stack.names;
      const stream = await jsm.streams.info(eventsStream);
      expect(stream.config.subjects).toEqual([`${stack.names.prefix}.mcp.events.v1.>`]);
      expect(stream.state.messages).toBeGreaterThan(0);
      expect(eventsSubjects.startsWith(`${stack.names.prefix}.`)).toBe(true);
      // Everything the stack's stream holds was consumed by the stack's analytics and stored.
      let events: McpEvent[] = [];
      await eventually(
        async () => {
          const consumer = await jsm.consumers.info(eventsStream, analyticsDurable);
          if (consumer.num_pending > 0 || consumer.num_ack_pending > 0) return false;
          events = await storedEvents(stack);
          return events.length === stream.state.messages;
        },
        15_000,
        () =>
          `stack ${stack.name}'s analytics to store its ${stream.state.messages} events ` +
          `(it holds ${events.length}, from ${[...new Set(events.map((e) => e.edge_id))].join(', ')})`,
        50,
      );
      stored.set(stack, events);
    }
    for (const [stack, other] of [
      [a, b],
      [b, a],
    ]) {
      const events = stored.get(stack)!;
      expect(new Set(events.map((event) => event.edge_id))).toEqual(new Set([stack.edgeId]));
      expect(events).toContainEqual(
        expect.objectContaining({
          method: 'tools/call',
          tool: 'echo',
          key_id: `admin-${stack.name}`,
        }),
      );
      const otherIds = new Set(stored.get(other)!.map((event) => event.id));
      expect(events.filter((event) => otherIds.has(event.id))).toEqual([]);
    }
    const ours = onV1Subjects.filter((body) => body.includes(a.edgeId) || body.includes(b.edgeId));
    expect(ours).toEqual([]);
  });

  it('verifies keys with the stack’s own auth service only', async () => {
    // Controls: each stack's auth knows its keys.
    expect(await initializeStatus(a, a.adminKey)).toBe(200);
    expect(await initializeStatus(b, B_ONLY_KEYS[0])).toBe(200);
    // A key only B knows is unknown at A, every time (distinct keys: none is a cached answer).
    const atA = [];
    for (const key of B_ONLY_KEYS) atA.push(await initializeStatus(a, key));
    expect(atA).toEqual(B_ONLY_KEYS.map(() => 401));
    expect(await initializeStatus(b, a.adminKey)).toBe(401);
  });

  it('reports an edge whose prefix has no auth service not ready, though other prefixes’ answer', async () => {
    const config = new ConfigStore(parseConfig(`events: { nats_prefix: c-${run} }\n`, {}));
    const names = natsNamesAtStart(config, logger);
    const bus = await NatsBus.connect(NATS_URL, `edge-c-${run}`, names);
    const edge = await startEdge({
      port: 0,
      host: '127.0.0.1',
      edgeId: `edge-c-${run}`,
      sessionSecret: randomUUID(),
      config,
      logger,
      bus,
      events: { kind: 'in-process', channel: new InProcessEventChannel() },
    });
    try {
      const response = await fetch(`${edge.url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({
        checks: { auth: { ok: false, detail: `no service answers c-${run}.auth.key.verify.v1` } },
      });
    } finally {
      await edge.close(1_000);
      await bus.close();
    }
  });
});
