import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PinoNestLogger } from '#common';
import { EdgeModule } from './edge.module.js';
import { EVENT_PUBLISHER, type EdgeOptions, TRACING } from './edge-options.js';
import type { EventPublisher } from './events/event-publisher.js';
import { EdgeServer } from './http/edge-server.js';
import { EdgeMetrics } from './metrics/edge-metrics.js';
import type { Tracing } from './tracing/tracing.js';

export type { EdgeOptions } from './edge-options.js';
export { traceOptionsFromEnv } from './tracing/tracing.js';

export interface EdgeHandle {
  url: string;
  port: number;
  publisher: EventPublisher;
  metrics: EdgeMetrics;
  /** Exports every ended span now (nothing when traces are off). */
  flushTraces(): Promise<void>;
  /** Graceful: waits up to `graceMs` for in-flight unary requests. */
  close(graceMs?: number): Promise<void>;
}

/** Starts an edge: the module composes it, the server listens on bootstrap and drains on close. */
export async function startEdge(options: EdgeOptions): Promise<EdgeHandle> {
  const app = await NestFactory.createApplicationContext(EdgeModule.forRoot(options), {
    logger: new PinoNestLogger(options.logger),
  });
  await app.init();
  const server = app.get(EdgeServer);
  const tracing = app.get<Tracing | null>(TRACING);
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port,
    publisher: app.get<EventPublisher>(EVENT_PUBLISHER),
    metrics: app.get(EdgeMetrics),
    flushTraces: async () => {
      await tracing?.flush();
    },
    close: async (graceMs = 10_000) => {
      server.graceMs = graceMs;
      await app.close();
    },
  };
}
