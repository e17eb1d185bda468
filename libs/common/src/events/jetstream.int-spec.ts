import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type PrivateNatsServer,
  startPrivateNatsServer,
} from '../../../../test/support/private-nats-server.js';
import { natsNames } from '../contracts/nats-names.js';
import { ensureEventsStream, EVENTS_DUPLICATE_WINDOW_MS } from './jetstream.js';
import type { McpEvent } from './mcp-event.js';

// A private JetStream server: this file deletes and recreates MCP_EVENTS, which must not
// disturb other files using the shared server.

const V1 = natsNames();
const EVENTS_STREAM = V1.eventsStream;
const eventSubject = V1.eventSubject;

function event(id: string): McpEvent {
  return {
    id,
    ts: '2026-05-01T12:00:00.000Z',
    edge_id: 'edge-1',
    request_id: 'req-1',
    tenant: null,
    key_id: 'alice',
    user: null,
    namespace: 'search',
    transport: 'streamable',
    protocol_version: '2025-06-18',
    session_id: null,
    direction: 'client_to_server',
    kind: 'request',
    jsonrpc_id: '1',
    method: 'tools/list',
    tool: null,
    outcome: 'ok',
    http_status: 200,
    error_code: null,
    duration_ms: 3,
    upstream_ms: 2,
    bytes_in: 50,
    bytes_out: 500,
    client_name: null,
    client_version: null,
    server: null,
    auth_method: 'key',
    client_tool: null,
    upstream_protocol_version: null,
    count: 1,
    client_network: null,
    tools_listed: null,
    detail: null,
  };
}

describe('ensureEventsStream', () => {
  let server: PrivateNatsServer;
  const connections: NatsConnection[] = [];
  let nc: NatsConnection;

  const open = async () => {
    const connection = await connect({ servers: [server.url] });
    connections.push(connection);
    return connection;
  };

  const messages = async () =>
    (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.messages;

  beforeAll(async () => {
    server = await startPrivateNatsServer();
    nc = await open();
  });

  afterAll(async () => {
    for (const connection of connections) await connection.close();
    await server?.stop();
  });

  beforeEach(async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(EVENTS_STREAM).catch(() => undefined);
  });

  it('creates the MCP_EVENTS stream on mcp.events.v1.> with limits retention, file storage and a dedupe window', async () => {
    await ensureEventsStream(nc, V1);
    const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
    expect(info.config).toMatchObject({
      name: 'MCP_EVENTS',
      subjects: ['mcp.events.v1.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
    });
    expect(info.config.max_age).toBeGreaterThan(0);
  });

  it('is idempotent: a second call keeps the stream and the events in it', async () => {
    await ensureEventsStream(nc, V1);
    await jetstream(nc).publish(eventSubject('search'), JSON.stringify(event('e-1')), {
      msgID: 'e-1',
    });
    await ensureEventsStream(nc, V1);
    expect(await messages()).toBe(1);
  });

  it('is idempotent under concurrent calls from several services', async () => {
    const services = await Promise.all([open(), open(), open(), open()]);
    await expect(
      Promise.all(services.flatMap((c) => [ensureEventsStream(c, V1), ensureEventsStream(c, V1)])),
    ).resolves.toHaveLength(8);
    const streams = await (await jetstreamManager(nc)).streams.names().next();
    expect(streams).toEqual([EVENTS_STREAM]);
  });

  it('creates a prefixed deployment’s stream beside the v1 one, each storing only its own events', async () => {
    const blue = natsNames('blue');
    const jsm = await jetstreamManager(nc);
    try {
      // JetStream refuses a stream whose subjects overlap another's: both exist, so they do not.
      await ensureEventsStream(nc, V1);
      await ensureEventsStream(nc, blue);
      const js = jetstream(nc);
      const v1 = await js.publish(eventSubject('search'), JSON.stringify(event('e-v1')), {
        msgID: 'e-v1',
      });
      const prefixed = await js.publish(blue.eventSubject('search'), JSON.stringify(event('e-b')), {
        msgID: 'e-b',
      });
      expect([v1.stream, prefixed.stream]).toEqual(['MCP_EVENTS', 'blue_MCP_EVENTS']);
      const info = await jsm.streams.info('blue_MCP_EVENTS');
      expect(info.config.subjects).toEqual(['blue.mcp.events.v1.>']);
      expect([await messages(), info.state.messages]).toEqual([1, 1]);
    } finally {
      await jsm.streams.delete(blue.eventsStream).catch(() => undefined);
    }
  });

  it('stores an event published twice with the same Nats-Msg-Id once', async () => {
    await ensureEventsStream(nc, V1);
    const js = jetstream(nc);
    const payload = JSON.stringify(event('e-dup'));
    const first = await js.publish(eventSubject('search'), payload, { msgID: 'e-dup' });
    const second = await js.publish(eventSubject('search'), payload, { msgID: 'e-dup' });
    expect(first).toMatchObject({ stream: EVENTS_STREAM, duplicate: false });
    expect(second).toMatchObject({ stream: EVENTS_STREAM, duplicate: true, seq: first.seq });
    expect(await messages()).toBe(1);
  });

  it('stores events with different ids separately, whatever their namespace subject', async () => {
    await ensureEventsStream(nc, V1);
    const js = jetstream(nc);
    const a = await js.publish(eventSubject('search'), JSON.stringify(event('e-a')), {
      msgID: 'e-a',
    });
    const b = await js.publish(eventSubject(''), JSON.stringify(event('e-b')), { msgID: 'e-b' });
    expect([a.duplicate, b.duplicate]).toEqual([false, false]);
    expect(await messages()).toBe(2);
  });
});
