import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { eventSubject, type InProcessEventChannel, type McpEvent } from '#common';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';

/** Where the edge's analytics events go. `publish` never blocks and never throws. */
export interface EventPublisher {
  publish(event: McpEvent): void;
  readonly depth: number;
  /** Waits (bounded) until buffered events are delivered; used on shutdown and in tests. */
  flush(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const MAX_BUFFERED = 100_000;
const MAX_IN_FLIGHT = 512;

/**
 * Publishes to JetStream with `Nats-Msg-Id` = event id, so a retried publish is stored once.
 * Events wait in a bounded buffer while NATS is away and are delivered when it returns; past
 * the bound the newest are dropped and counted (`mcp_gateway_events_dropped_total`).
 */
export class JetStreamEventPublisher implements EventPublisher {
  private readonly js: JetStreamClient;
  private readonly queue: McpEvent[] = [];
  private inFlight = 0;
  private retryTimer?: NodeJS.Timeout;
  private readonly waiters: Array<() => void> = [];

  constructor(
    connection: NatsConnection,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
  ) {
    this.js = jetstream(connection, { timeout: 5_000 });
  }

  get depth(): number {
    return this.queue.length + this.inFlight;
  }

  publish(event: McpEvent): void {
    if (this.queue.length >= MAX_BUFFERED) {
      this.metrics.eventsDropped.inc();
      return;
    }
    this.queue.push(event);
    this.pump();
  }

  async flush(timeoutMs = 5_000): Promise<void> {
    if (this.depth === 0) return;
    await Promise.race([
      new Promise<void>((resolve) => this.waiters.push(resolve)),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
  }

  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.retryTimer);
  }

  private pump(): void {
    this.metrics.eventBufferDepth.set(this.depth);
    while (!this.retryTimer && this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.inFlight++;
      this.js
        .publish(eventSubject(event.namespace), JSON.stringify(event), { msgID: event.id })
        .then(
          () => {
            this.inFlight--;
            this.settled();
          },
          (error: unknown) => {
            this.inFlight--;
            // Keep it and try again shortly: NATS may be down; Nats-Msg-Id makes retries safe.
            this.queue.unshift(event);
            if (!this.retryTimer) {
              this.logger.warn({ err: String(error), buffered: this.queue.length }, 'event publish failed; buffering');
              this.retryTimer = setTimeout(() => {
                this.retryTimer = undefined;
                this.pump();
              }, 500);
            }
            this.settled();
          },
        );
    }
  }

  private settled(): void {
    this.pump();
    if (this.depth === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }
}

/** Standalone mode: events go straight to the in-process analytics consumer. */
export class InProcessEventPublisher implements EventPublisher {
  constructor(
    private readonly channel: InProcessEventChannel,
    private readonly metrics: EdgeMetrics,
  ) {}

  get depth(): number {
    return this.channel.depth;
  }

  publish(event: McpEvent): void {
    if (!this.channel.publish(event)) this.metrics.eventsDropped.inc();
  }

  async flush(): Promise<void> {
    await this.channel.flush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
