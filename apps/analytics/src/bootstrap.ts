import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type Bus,
  type ConfigStore,
  EVENTS_STREAM,
  EVENTS_SUBJECT_WILDCARD,
  type InProcessEventChannel,
  PinoNestLogger,
} from '#common';
import type { Logger } from 'pino';
import { AnalyticsModule } from './analytics.module.js';
import { AnalyticsQueries } from './api/analytics-queries.js';
import { HttpErrorFilter } from './api/http-error.filter.js';
import { installRequestHooks, requestId } from './api/request-hooks.js';
import { AdminAuthenticator } from './auth/admin-authenticator.js';
import { AdminFailureLimiter } from './auth/admin-failures.js';
import { HealthService } from './health/health.service.js';
import { BatchWriter } from './ingest/batch-writer.js';
import type { EventIngest } from './ingest/event-ingest.js';
import { InProcessIngest } from './ingest/in-process-ingest.js';
import { JetStreamIngest } from './ingest/jetstream-ingest.js';
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
    | {
        kind: 'jetstream';
        connection: NatsConnection;
        stream?: string;
        subjects?: string[];
        durable?: string;
      }
    | { kind: 'in-process'; channel: InProcessEventChannel };
}

export interface AnalyticsHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_DURABLE = 'analytics';

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

    const app = await NestFactory.create<NestFastifyApplication>(
      AnalyticsModule.forRoot({
        queries: new AnalyticsQueries(store),
        authenticator,
        health: new HealthService(store, ingest, writer.stats),
      }),
      new FastifyAdapter({ genReqId: requestId, logger: false, bodyLimit: 64 * 1024 }),
      { logger: new PinoNestLogger(logger.child({ component: 'nest' })), abortOnError: false },
    );
    cleanup.push(() => app.close());
    installRequestHooks(app.getHttpAdapter().getInstance(), logger.child({ component: 'http' }));
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

function createIngest(options: AnalyticsOptions, writer: BatchWriter): EventIngest {
  const logger = options.logger.child({ component: 'ingest' });
  const events = options.events;
  if (events.kind === 'in-process') return new InProcessIngest(events.channel, writer, logger);
  return new JetStreamIngest(
    {
      connection: events.connection,
      stream: events.stream ?? EVENTS_STREAM,
      subjects: events.subjects ?? [EVENTS_SUBJECT_WILDCARD],
      durable: events.durable ?? DEFAULT_DURABLE,
    },
    writer,
    logger,
  );
}
