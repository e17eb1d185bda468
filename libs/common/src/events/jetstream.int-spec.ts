import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type PrivateNatsServer,
  startPrivateNatsServer,
} from '../../../../test/support/private-nats-server.js';
import { ensureEventsStream, EVENTS_DUPLICATE_WINDOW_MS } from './jetstream.js';
import { EVENTS_STREAM, eventSubject, type McpEvent } from './mcp-event.js';

// A private JetStream server: this file deletes and recreates MCP_EVENTS, which must not
// disturb other files using the shared server.

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
    count: 1,
    client_network: null,
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
    await ensureEventsStream(nc);
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
    await ensureEventsStream(nc);
    await jetstream(nc).publish(eventSubject('search'), JSON.stringify(event('e-1')), {
      msgID: 'e-1',
    });
    await ensureEventsStream(nc);
    expect(await messages()).toBe(1);
  });

  it('is idempotent under concurrent calls from several services', async () => {
    const services = await Promise.all([open(), open(), open(), open()]);
    await expect(
      Promise.all(services.flatMap((c) => [ensureEventsStream(c), ensureEventsStream(c)])),
    ).resolves.toHaveLength(8);
    const streams = await (await jetstreamManager(nc)).streams.names().next();
    expect(streams).toEqual([EVENTS_STREAM]);
  });

  it('stores an event published twice with the same Nats-Msg-Id once', async () => {
    await ensureEventsStream(nc);
    const js = jetstream(nc);
    const payload = JSON.stringify(event('e-dup'));
    const first = await js.publish(eventSubject('search'), payload, { msgID: 'e-dup' });
    const second = await js.publish(eventSubject('search'), payload, { msgID: 'e-dup' });
    expect(first).toMatchObject({ stream: EVENTS_STREAM, duplicate: false });
    expect(second).toMatchObject({ stream: EVENTS_STREAM, duplicate: true, seq: first.seq });
    expect(await messages()).toBe(1);
  });

  it('stores events with different ids separately, whatever their namespace subject', async () => {
    await ensureEventsStream(nc);
    const js = jetstream(nc);
    const a = await js.publish(eventSubject('search'), JSON.stringify(event('e-a')), {
      msgID: 'e-a',
    });
    const b = await js.publish(eventSubject(''), JSON.stringify(event('e-b')), { msgID: 'e-b' });
    expect([a.duplicate, b.duplicate]).toEqual([false, false]);
    expect(await messages()).toBe(2);
  });
});
