import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type Bus,
  type ConfigStore,
  type InProcessEventChannel,
  type NatsNames,
  type PinStore,
  PinoNestLogger,
} from '#common';
import type { Logger } from 'pino';
import { AdminKeys } from './admin/admin-keys.js';
import {
  type AuditSink,
  AuditLog,
  inProcessAuditSink,
  jetStreamAuditSink,
} from './admin/audit-log.js';
import { AnalyticsModule } from './analytics.module.js';
import { AnalyticsQueries } from './api/analytics-queries.js';
import { HttpErrorFilter } from './api/http-error.filter.js';
import { installJsonBodies } from './api/json-body.js';
import { installRequestHooks, requestId } from './api/request-hooks.js';
import { AdminAuthenticator } from './auth/admin-authenticator.js';
import { AdminFailureLimiter } from './auth/admin-failures.js';
import { HealthService } from './health/health.service.js';
import { BatchWriter } from './ingest/batch-writer.js';
import type { EventIngest } from './ingest/event-ingest.js';
import { InProcessIngest } from './ingest/in-process-ingest.js';
import { JetStreamIngest } from './ingest/jetstream-ingest.js';
import { PinApprovals } from './pins/pin-approvals.js';
import { EventStore } from './storage/event-store.js';
import { RetentionJob } from './storage/retention.js';

export interface AnalyticsOptions {
  port: number;
  host: string;
  dbPath: string;
  config: ConfigStore;
  bus: Bus;
  logger: Logger;
  events:
    /** `names`: the deployment's stream, subjects and consumer (the same as its NatsBus's). */
    | { kind: 'jetstream'; connection: NatsConnection; names: NatsNames }
    | { kind: 'in-process'; channel: InProcessEventChannel };
  /**
   * The pinned tool definitions the edges write (SPEC §7 v2), already watched: a KvPinStore in
   * distributed mode, the edge's own FilePinStore in standalone mode. Owned by the caller, which
   * closes it after this service. Absent: the pins routes answer 503.
   */
  pins?: PinStore;
}

export interface AnalyticsHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the analytics service: opens the DuckDB file (refusing one another process holds),
 * prunes past retention, starts consuming events, then serves the REST API. close() stops in
 * the reverse order: no new requests, finish and commit the batch in hand, release the file.
 */
export async function startAnalytics(options: AnalyticsOptions): Promise<AnalyticsHandle> {
  const { logger } = options;
  const store = await EventStore.open(options.dbPath, {
    logger: logger.child({ component: 'storage' }),
  });
  const cleanup: Array<() => Promise<void> | void> = [() => store.close()];
  const unwind = async () => {
    for (const step of cleanup.reverse()) {
      await Promise.resolve()
        .then(step)
        .catch((error: unknown) => logger.error({ err: error }, 'analytics shutdown step failed'));
    }
  };
  try {
    const retention = new RetentionJob(
      store,
      options.config,
      logger.child({ component: 'retention' }),
    );
    await retention.start();
    cleanup.push(() => retention.stop());

    const writer = new BatchWriter(store, logger.child({ component: 'ingest' }));
    const ingest = createIngest(options, writer);
    await ingest.start();
    cleanup.push(() => ingest.stop());

    const authenticator = new AdminAuthenticator(
      options.bus,
      logger.child({ component: 'auth' }),
      new AdminFailureLimiter(options.config),
    );
    cleanup.push(() => authenticator.close());

    const audit = new AuditLog(auditSink(options), logger.child({ component: 'audit' }));
    cleanup.push(() => audit.close());

    const app = await NestFactory.create<NestFastifyApplication>(
      AnalyticsModule.forRoot({
        queries: new AnalyticsQueries(store),
        authenticator,
        health: new HealthService(store, ingest, writer.stats),
        adminKeys: new AdminKeys(options.bus, audit, logger.child({ component: 'admin' })),
        pins: new PinApprovals(options.pins, audit),
      }),
      new FastifyAdapter({
        genReqId: requestId,
        logger: false,
        bodyLimit: 64 * 1024,
        // A tool name in /api/v1/pins/{namespace}/{tool}/approve: up to 256 characters, percent-
        // encoded (Fastify's default of 100 answered a longer one 404).
        routerOptions: { maxParamLength: 2048 },
      }),
      {
        logger: new PinoNestLogger(logger.child({ component: 'nest' })),
        abortOnError: false,
        // JSON bodies: installJsonBodies (a malformed one is refused after the admin guard).
        bodyParser: false,
      },
    );
    cleanup.push(() => app.close());
    installRequestHooks(app.getHttpAdapter().getInstance(), logger.child({ component: 'http' }));
    installJsonBodies(app.getHttpAdapter().getInstance());
    app.useGlobalFilters(new HttpErrorFilter(logger.child({ component: 'http' })));
    await app.listen({ port: options.port, host: options.host });

    const port = (app.getHttpServer().address() as AddressInfo).port;
    const host = ['0.0.0.0', '::', ''].includes(options.host) ? '127.0.0.1' : options.host;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    logger.info(
      { url, db: options.dbPath, events: options.events.kind },
      'analytics service ready',
    );

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      close: () => {
        closing ??= unwind().then(() => logger.info('analytics service stopped'));
        return closing;
      },
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** Audit events go the way edges' events go, into the same ingest (SPEC §5 v2, §7). */
function auditSink(options: AnalyticsOptions): AuditSink {
  const events = options.events;
  return events.kind === 'in-process'
    ? inProcessAuditSink(events.channel)
    : jetStreamAuditSink(events.connection, events.names);
}

function createIngest(options: AnalyticsOptions, writer: BatchWriter): EventIngest {
  const logger = options.logger.child({ component: 'ingest' });
  const events = options.events;
  if (events.kind === 'in-process') return new InProcessIngest(events.channel, writer, logger);
  return new JetStreamIngest(
    { connection: events.connection, names: events.names },
    writer,
    logger,
  );
}
