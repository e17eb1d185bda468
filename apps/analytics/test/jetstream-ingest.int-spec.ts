import { randomBytes } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InProcessBus, type McpEvent, natsNames, TOOL_DRIFT_METHOD } from '#common';
import { eventually } from '../../../test/support/eventually.js';
import { type AnalyticsHandle, startAnalytics } from '../src/bootstrap.js';
import { EventStore } from '../src/storage/event-store.js';
import {
  makeEvent,
  makeListing,
  memoryLogger,
  preListingEvent,
  tempDir,
  testConfig,
  type TempDir,
} from './fixtures.js';

const NATS_URL = '127.0.0.1:4222';

// Each run gets its own prefix (events.nats_prefix), so its own stream, subjects and consumer
// on the shared nats-server; its streams are deleted at the end.
describe('JetStream ingest (real NATS)', () => {
  const suffix = randomBytes(6).toString('hex');
  const names = natsNames(`test-${suffix}`);
  const readyzNames = natsNames(`readyz-${suffix}`);
  const stream = names.eventsStream;
  const subject = names.eventSubject('search');
  const subjects = [names.eventsSubjects];
  const durable = names.analyticsDurable;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let dir: TempDir;
  let analytics: AnalyticsHandle | undefined;
  const { logger, lines } = memoryLogger();

  const start = () =>
    startAnalytics({
      port: 0,
      host: '127.0.0.1',
      dbPath: dir.file('analytics.duckdb'),
      config: testConfig(100_000),
      bus: new InProcessBus(),
      logger,
      events: { kind: 'jetstream', connection: nc, names },
    });

  /** Resolves once the consumer has nothing left to deliver and nothing unacknowledged. */
  const drained = () =>
    eventually(
      async () => {
        const info = await jsm.consumers.info(stream, durable);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
      },
      15_000,
      'the consumer to drain',
      50,
    );

  const publishAll = async (
    events: McpEvent[],
    msgId: (event: McpEvent) => string = (event) => event.id,
  ) => {
    const acks = [];
    for (const event of events)
      acks.push(js.publish(subject, JSON.stringify(event), { msgID: msgId(event) }));
    return Promise.all(acks);
  };

  /** Rows in the file, read with the service stopped (the service is the file's only opener). */
  const storedRows = async (): Promise<{ rows: number; ids: number }> => {
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const [row] = await store.query(
        'SELECT count(*)::INTEGER AS rows, count(DISTINCT id)::INTEGER AS ids FROM events',
      );
      return { rows: Number(row.rows), ids: Number(row.ids) };
    } finally {
      await store.close();
    }
  };

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    dir = tempDir();
  });

  afterAll(async () => {
    await analytics?.close();
    for (const name of [stream, readyzNames.eventsStream])
      await jsm?.streams.delete(name).catch(() => undefined);
    await nc?.close();
    dir?.remove();
  });

  const N = 3_000;
  const events = Array.from({ length: N }, (_, i) =>
    makeEvent({ ts: new Date(Date.UTC(2025, 0, 1) + i * 10).toISOString() }),
  );

  it('creates the stream and a durable ack-all consumer (one ack per batch) with bounded ack pending', async () => {
    analytics = await start();
    const info = await jsm.consumers.info(stream, durable);
    expect(info.config).toMatchObject({
      durable_name: durable,
      ack_policy: 'all',
      max_ack_pending: 60_000,
    });
    expect((await jsm.streams.info(stream)).config.subjects).toEqual(subjects);
  });

  it('stores N published events exactly once (N rows)', async () => {
    const acks = await publishAll(events);
    expect(acks.every((ack) => !ack.duplicate)).toBe(true);
    // Re-published with the same Nats-Msg-Id: JetStream itself drops them.
    const again = await publishAll(events.slice(0, 100));
    expect(again.every((ack) => ack.duplicate)).toBe(true);
    await drained();
    const ready = await (await fetch(`${analytics!.url}/readyz`)).json();
    expect(ready).toMatchObject({
      status: 'ok',
      checks: { events: 'ok' },
      ingest: { inserted: N },
    });
  });

  it('still has N rows after duplicates JetStream could not recognise (new message ids)', async () => {
    await publishAll(events.slice(0, 1_000), (event) => `${event.id}-republished`);
    await drained();
    const ready = (await (await fetch(`${analytics!.url}/readyz`)).json()) as {
      ingest: { inserted: number; duplicates: number };
    };
    expect(ready.ingest.inserted).toBe(N);
    expect(ready.ingest.duplicates).toBeGreaterThanOrEqual(1_000);
  });

  it('acks and logs invalid messages without stopping', async () => {
    const late = makeEvent({ ts: new Date(Date.UTC(2025, 0, 2)).toISOString() });
    await js.publish(subject, 'this is not JSON', { msgID: `junk-${suffix}-1` });
    await js.publish(subject, JSON.stringify({ id: 42, ts: 'never' }), {
      msgID: `junk-${suffix}-2`,
    });
    await publishAll([late]);
    // Last of its batch: the batch's single ack is this invalid message's own.
    await js.publish(subject, JSON.stringify({ id: 'half-an-event' }), {
      msgID: `junk-${suffix}-3`,
    });
    events.push(late);
    await drained();
    const ready = (await (await fetch(`${analytics!.url}/readyz`)).json()) as {
      ingest: { inserted: number; invalid: number };
    };
    expect(ready.ingest).toMatchObject({ inserted: N + 1, invalid: 3 });
    expect(lines.join('')).toContain('invalid event dropped');
  });

  it('stores listings and drift details as published, beside events of edges without those fields', async () => {
    const ts = (i: number) => new Date(Date.UTC(2025, 0, 2, 1) + i).toISOString();
    const listing = makeListing({ web: 120, news: null }, { ts: ts(0) });
    const drift = makeEvent({
      ts: ts(1),
      direction: 'server_to_client',
      kind: 'notification',
      method: TOOL_DRIFT_METHOD,
      tool: 'web',
      detail: JSON.stringify({
        previous_hash: 'sha256:a',
        hash: 'sha256:b',
        diff: '~ x',
        mode: 'block',
      }),
    });
    // A batch of its own (drained before the next): the strict path, DuckDB parsing alone.
    await publishAll([listing, drift]);
    await drained();
    // An edge of v2 from before these fields, and an older listing: the checked path.
    const older = preListingEvent({ ts: ts(2) }) as McpEvent;
    const checked = makeListing({ read: 7 }, { ts: ts(3) });
    const invalid = [
      makeListing({ web: -1 }, { ts: ts(4) }),
      makeEvent({ ts: ts(5), detail: 'd'.repeat(16_385) }),
    ];
    await publishAll([older, checked, ...invalid]);
    await drained();
    events.push(listing, drift, older, checked);
    const ready = (await (await fetch(`${analytics!.url}/readyz`)).json()) as {
      ingest: { inserted: number; invalid: number };
    };
    expect(ready.ingest).toMatchObject({ inserted: N + 5, invalid: 5 });

    await analytics!.close();
    const store = await EventStore.open(dir.file('analytics.duckdb'), { logger });
    try {
      const ids = [listing, drift, older, checked, ...invalid].map((event) => `'${event.id}'`);
      expect(
        await store.query(
          `SELECT id, tools_listed, detail FROM events WHERE id IN (${ids.join(', ')}) ORDER BY ts`,
        ),
      ).toEqual([
        { id: listing.id, tools_listed: listing.tools_listed, detail: null },
        { id: drift.id, tools_listed: null, detail: drift.detail },
        { id: older.id, tools_listed: null, detail: null },
        { id: checked.id, tools_listed: [{ tool: 'read', tokens: 7 }], detail: null },
      ]);
    } finally {
      await store.close();
    }
    analytics = await start();
    await drained();
  });

  it('takes back at once what a crashed predecessor left unacked (no wait for ack_wait)', async () => {
    await analytics!.close();
    analytics = undefined;
    const orphans = Array.from({ length: 500 }, (_, i) =>
      makeEvent({ ts: new Date(Date.UTC(2025, 0, 3) + i).toISOString() }),
    );
    await publishAll(orphans);
    events.push(...orphans);
    // A "previous process" takes delivery and dies without acking.
    const consumer = await js.consumers.get(stream, durable);
    const taken = await consumer.fetch({ max_messages: orphans.length, expires: 5_000 });
    let delivered = 0;
    for await (const _msg of taken) if (++delivered === orphans.length) break;
    expect((await jsm.consumers.info(stream, durable)).num_ack_pending).toBe(orphans.length);
    analytics = await start();
    // ack_wait is 60 s: draining within the 15 s deadline proves the restart did not wait for it.
    await drained();
    expect(lines.join('')).toContain('were never acked; redelivering them now');
  });

  it('stores everything once after a restart that redelivers the whole stream', async () => {
    await analytics!.close();
    analytics = undefined;
    expect(await storedRows()).toEqual({ rows: events.length, ids: events.length });
    // Forget every ack, as if analytics had crashed before acking anything: all is redelivered.
    await jsm.consumers.delete(stream, durable);
    analytics = await start();
    await drained();
    await analytics.close();
    analytics = undefined;
    expect(await storedRows()).toEqual({ rows: events.length, ids: events.length });
  });

  it('recreates a durable of the earlier explicit-ack design at its ack floor, storing each event once', async () => {
    // The earlier design: AckPolicy.Explicit, each message acked on its own, some acked so far.
    await jsm.consumers.delete(stream, durable);
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
    const consumer = await js.consumers.get(stream, durable);
    const taken = await consumer.fetch({ max_messages: 1_000, expires: 5_000 });
    let acked = 0;
    for await (const msg of taken) {
      msg.ack();
      if (++acked === 1_000) break;
    }
    await nc.flush();
    const fresh = Array.from({ length: 200 }, (_, i) =>
      makeEvent({ ts: new Date(Date.UTC(2025, 0, 4) + i).toISOString() }),
    );
    await publishAll(fresh);
    events.push(...fresh);
    analytics = await start();
    expect((await jsm.consumers.info(stream, durable)).config.ack_policy).toBe('all');
    await drained();
    expect(lines.join('')).toContain('recreating the events consumer with ack policy');
    await analytics.close();
    analytics = undefined;
    expect(await storedRows()).toEqual({ rows: events.length, ids: events.length });
  });

  it('answers /readyz 503 once NATS is gone', async () => {
    const own = await connect({ servers: NATS_URL });
    const handle = await startAnalytics({
      port: 0,
      host: '127.0.0.1',
      dbPath: dir.file('second.duckdb'),
      config: testConfig(),
      bus: new InProcessBus(),
      logger,
      events: { kind: 'jetstream', connection: own, names: readyzNames },
    });
    try {
      expect((await fetch(`${handle.url}/readyz`)).status).toBe(200);
      await own.close();
      const response = await fetch(`${handle.url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({
        status: 'unavailable',
        checks: { duckdb: 'ok', events: 'NATS connection closed' },
      });
    } finally {
      await handle.close();
    }
  });
});
