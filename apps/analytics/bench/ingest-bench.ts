/**
 * Analytics ingest throughput (SPEC §10: ≥ 50,000 events/s sustained).
 *
 *   npm run build && node dist/apps/analytics/bench/ingest-bench.js [events=100000] [nats=127.0.0.1:4222]
 *
 * 1. store: decoded batches of 5,000 straight into DuckDB (dedupe included), then the same
 *    batches again to time the all-duplicates path;
 * 2. jetstream: a backlog published to a private stream, consumed by the real service from
 *    start to fully acked. The stream and the temp files are removed at the end.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  ConfigStore,
  InProcessBus,
  type McpEvent,
  natsNames,
  OUTCOMES,
  parseConfig,
} from '#common';
import { pino } from 'pino';
import { startAnalytics } from '../src/bootstrap.js';
import {
  type DecodedEvent,
  decodeEventMessage,
  decodeEventObject,
} from '../src/ingest/event-decoder.js';
import { EventStore } from '../src/storage/event-store.js';

const total = Number(process.argv[2] ?? 100_000);
const natsUrl = process.argv[3] ?? '127.0.0.1:4222';
const logger = pino({ level: 'warn' });

function event(i: number, start: number): McpEvent {
  return {
    id: randomUUID(),
    ts: new Date(start + i).toISOString(),
    edge_id: 'edge-1',
    request_id: randomUUID(),
    tenant: `tenant-${i % 3}`,
    key_id: `key-${i % 50}`,
    user: `user-${i % 50}@example.com`,
    namespace: `ns-${i % 5}`,
    transport: 'streamable',
    protocol_version: '2025-06-18',
    session_id: `session-${i % 1000}`,
    direction: i % 2 === 0 ? 'client_to_server' : 'server_to_client',
    kind: i % 2 === 0 ? 'request' : 'response',
    jsonrpc_id: String(i),
    method: 'tools/call',
    tool: `tool-${i % 20}`,
    outcome: i % 10 === 0 ? OUTCOMES[1] : 'ok',
    http_status: 200,
    error_code: null,
    duration_ms: (i % 500) + 0.25,
    upstream_ms: i % 400,
    bytes_in: 1024,
    bytes_out: 2048,
    client_name: 'bench',
    client_version: '1.0.0',
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

function rate(count: number, ms: number): string {
  return `${Math.round((count / ms) * 1000).toLocaleString('en')} events/s (${count.toLocaleString('en')} in ${Math.round(ms)} ms)`;
}

async function benchStore(dir: string): Promise<void> {
  const store = await EventStore.open(join(dir, 'store.duckdb'), { logger });
  const start = Date.now();
  const events = Array.from({ length: total }, (_, i) => event(i, start));
  let started = performance.now();
  const decoded: DecodedEvent[] = [];
  for (const e of events) {
    const result = decodeEventObject(e);
    if (result.ok) decoded.push(result.event);
  }
  console.log(`decode + validate (objects):  ${rate(total, performance.now() - started)}`);
  const bodies = events.map((e) => new TextEncoder().encode(JSON.stringify(e)));
  started = performance.now();
  let valid = 0;
  for (const body of bodies) if (decodeEventMessage(body).ok) valid++;
  console.log(`decode + validate (messages): ${rate(valid, performance.now() - started)}`);
  started = performance.now();
  let inserted = 0;
  for (let i = 0; i < decoded.length; i += 5_000)
    inserted += await store.insertBatch(decoded.slice(i, i + 5_000));
  console.log(`store, new events:            ${rate(inserted, performance.now() - started)}`);
  started = performance.now();
  let again = 0;
  for (let i = 0; i < decoded.length; i += 5_000)
    again += await store.insertBatch(decoded.slice(i, i + 5_000));
  console.log(
    `store, all duplicates:        ${rate(decoded.length, performance.now() - started)} -> ${again} new rows`,
  );
  started = performance.now();
  await store.query('SELECT count(*) FROM events');
  await store.close();
}

async function benchJetStream(dir: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const names = natsNames(`bench-${randomBytes(6).toString('hex')}`);
  const stream = names.eventsStream;
  const subject = names.eventSubject('bench');
  await jsm.streams.add({ name: stream, subjects: [names.eventsSubjects] });
  try {
    const js = jetstream(nc);
    const start = Date.now();
    let started = performance.now();
    for (let i = 0; i < total; i += 1_000) {
      const acks = [];
      for (let j = i; j < Math.min(i + 1_000, total); j++) {
        const e = event(j, start);
        acks.push(js.publish(subject, JSON.stringify(e), { msgID: e.id }));
      }
      await Promise.all(acks);
    }
    console.log(`publish backlog:              ${rate(total, performance.now() - started)}`);
    started = performance.now();
    const cpu = process.cpuUsage();
    const handle = await startAnalytics({
      port: 0,
      host: '127.0.0.1',
      dbPath: join(dir, 'service.duckdb'),
      config: new ConfigStore(parseConfig('analytics: { retention_days: 100000 }\n', {})),
      bus: new InProcessBus(),
      logger,
      events: { kind: 'jetstream', connection: nc, names },
    });
    for (;;) {
      const info = await jsm.consumers.info(stream, names.analyticsDurable);
      if (info.num_pending === 0 && info.num_ack_pending === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    console.log(`jetstream -> duckdb (acked):  ${rate(total, performance.now() - started)}`);
    const used = process.cpuUsage(cpu);
    // CPU of this process (Node and DuckDB's threads; not nats-server): robust to a busy machine.
    console.log(
      `  cpu ${((used.user + used.system) / 1000).toFixed(0)} ms (${((used.user + used.system) / total).toFixed(1)} µs/event)`,
    );
    const ready = (await (await fetch(`${handle.url}/readyz`)).json()) as {
      ingest: { inserted: number; batches: number };
    };
    console.log(`  rows ${ready.ingest.inserted}, batches ${ready.ingest.batches}`);
    await handle.close();
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'analytics-bench-'));
try {
  await benchStore(dir);
  await benchJetStream(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
