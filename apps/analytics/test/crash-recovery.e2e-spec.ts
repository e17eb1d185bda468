import { writeFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ensureEventsStream, type McpEvent, natsNames } from '#common';
import {
  eventually,
  freePort,
  type NatsHandle,
  type Proc,
  startNats,
  startService,
} from '../../../test/support/processes.js';
import { EventStore } from '../src/storage/event-store.js';
import { makeEvent, memoryLogger, tempDir, type TempDir } from './fixtures.js';

// SPEC §7: "loses nothing and duplicates nothing across its own crash or restart". The real
// service, as a process, is killed (SIGKILL) while it drains a JetStream backlog, three times,
// then runs to the end: the file holds every event exactly once. The config names a NATS prefix,
// so the process reads it from the file (a process on the v1 names would find no events).
const N = 100_000;
const NAMES = natsNames('crash');
const EVENTS_STREAM = NAMES.eventsStream;
const DURABLE = NAMES.analyticsDurable;

describe('analytics killed while ingesting (real process, real JetStream, real DuckDB)', () => {
  let nats: NatsHandle;
  let nc: NatsConnection;
  let dir: TempDir;
  let env: Record<string, string>;
  let url: string;
  let service: Proc | undefined;
  const events: McpEvent[] = [];

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    dir = tempDir();
    writeFileSync(
      dir.file('gateway.yaml'),
      'analytics: { retention_days: 100000 }\nevents: { nats_prefix: crash }\n',
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      GATEWAY_CONFIG: dir.file('gateway.yaml'),
      NATS_URL: nats.url,
      ANALYTICS_DB: dir.file('analytics.duckdb'),
      ANALYTICS_PORT: String(port),
      HOST: '127.0.0.1',
    };
    await ensureEventsStream(nc, NAMES);
    const js = jetstream(nc);
    const start = Date.now() - 60_000;
    for (let i = 0; i < N; i++) {
      // Requests and responses alike: the requests table must agree with the events table.
      const request = i % 2 === 0;
      events.push(
        makeEvent({
          ts: new Date(start + (i >> 3)).toISOString(),
          namespace: `ns-${i % 4}`,
          direction: request ? 'client_to_server' : 'server_to_client',
          kind: request ? 'request' : 'response',
          duration_ms: request ? i % 300 : null,
        }),
      );
    }
    for (let i = 0; i < N; i += 2_000) {
      await Promise.all(
        events.slice(i, i + 2_000).map((event) =>
          js.publish(NAMES.eventSubject(event.namespace), JSON.stringify(event), {
            msgID: event.id,
          }),
        ),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await service?.stop('SIGKILL');
    await nc?.close();
    await nats?.stop();
    dir?.remove();
  });

  const inserted = async (): Promise<number | undefined> => {
    const response = await fetch(`${url}/readyz`);
    if (response.status !== 200) return undefined;
    return ((await response.json()) as { ingest: { inserted: number } }).ingest.inserted;
  };

  const launch = async (): Promise<Proc> => {
    service = startService('analytics', env);
    const proc = service;
    await eventually(
      async () => {
        if ((await inserted().catch(() => undefined)) !== undefined) return true;
        proc.assertAlive('its database could be read');
        return false;
      },
      30_000,
      'analytics to be ready',
      10,
    );
    return proc;
  };

  it('stores each of N events exactly once after three kills mid-ingest', async () => {
    const jsm = await jetstreamManager(nc);
    const killedAt: number[] = [];
    // First kill as soon as it serves (a batch in hand, nothing committed yet, or one just
    // committed), the next two right after a commit (the following batch is being written).
    for (const waitForCommit of [false, true, true]) {
      const proc = await launch();
      if (waitForCommit) {
        await eventually(async () => ((await inserted()) ?? 0) > 0, 30_000, 'a commit', 5);
      }
      killedAt.push((await inserted().catch(() => undefined)) ?? -1);
      await proc.stop('SIGKILL');
    }
    const unacked = await jsm.consumers.info(EVENTS_STREAM, DURABLE);
    // The kills did interrupt ingestion: work was left for the next process.
    expect(unacked.num_pending + unacked.num_ack_pending).toBeGreaterThan(0);

    const proc = await launch();
    await eventually(
      async () => {
        const info = await jsm.consumers.info(EVENTS_STREAM, DURABLE);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      60_000,
      `the backlog to drain (killed at ${killedAt.join(', ')} rows)`,
      50,
    );
    await proc.stop('SIGTERM');
    expect(await proc.exited).toBe(0);

    const { logger } = memoryLogger();
    const store = await EventStore.open(env.ANALYTICS_DB, { logger });
    try {
      const [events] = await store.query(
        'SELECT count(*)::INTEGER AS rows, count(DISTINCT id)::INTEGER AS ids FROM events',
      );
      const [requests] = await store.query('SELECT count(*)::INTEGER AS rows FROM requests');
      expect({ ...events, requests: requests.rows }).toEqual({
        rows: N,
        ids: N,
        requests: N / 2,
      });
    } finally {
      await store.close();
    }
  }, 240_000);
});
