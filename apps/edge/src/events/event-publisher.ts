import {
  createInbox,
  headers,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import type { InProcessEventChannel, McpEvent, NatsNames } from '#common';
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
const MAX_UNACKED = 4_096;
const ACK_TIMEOUT_MS = 5_000;
const ACK_DECODER = new TextDecoder();
/** Events wait this long for company before they go out together... */
const PUBLISH_INTERVAL_MS = 5;
/** ...unless this many are already waiting. */
const PUBLISH_BATCH = 256;

/**
 * An event as it goes on the wire, serialised once when it is recorded: while it waits for its
 * batch and its acknowledgement, the heap holds one small object and off-heap bytes instead of
 * the event's fields (less for each young-generation GC to copy).
 */
interface Outgoing {
  /** Its `Nats-Msg-Id`: see msgIdOf. */
  id: string;
  subject: string;
  data: Buffer;
  sentAt: number;
}

/**
 * An event's `Nats-Msg-Id`: its id, so a retried publish is stored once. A per-minute count of
 * rejected requests is published again under its id as it grows (RejectionTally): its message id
 * also names the count, so JetStream's duplicate window keeps each larger count and still drops
 * retries of one.
 */
export function msgIdOf(event: McpEvent): string {
  return event.count === 1 ? event.id : `${event.id}:${event.count}`;
}

/**
 * Publishes to JetStream with `Nats-Msg-Id` = event id (msgIdOf), so a retried publish is stored
 * once.
 *
 * Built for the hot path: each event is one core-NATS publish carrying a reply subject on a
 * single shared inbox, where JetStream's acknowledgements arrive; publishing never happens inside
 * a request. (One `js.publish()` request-reply per event cost a third of the edge's CPU.) Events
 * go out in batches, at most 5 ms after the first of a batch (or at once when 256 wait): one
 * socket write, one wake-up of the NATS server and acknowledgements read together per batch,
 * instead of per request, which at low rates put the NATS server's work between every request
 * and its response. An event without an acknowledgement within 5 s, or with a negative
 * one, is published again. Events wait in a bounded buffer while NATS is away and go out when it
 * returns; past the bound the newest are dropped and counted
 * (`mcp_gateway_events_dropped_total`).
 */
export class JetStreamEventPublisher implements EventPublisher {
  private queue: Outgoing[] = [];
  private readonly unacked = new Map<number, Outgoing>();
  private readonly inbox = createInbox();
  private readonly subscription: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters: Array<() => void> = [];
  private warned = false;

  constructor(
    private readonly connection: NatsConnection,
    private readonly names: NatsNames,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
    private readonly isConnected: () => boolean = () => !connection.isClosed(),
  ) {
    this.subscription = connection.subscribe(`${this.inbox}.*`, {
      callback: (error, msg) => {
        if (!error) this.onAck(msg.subject, msg.data, msg.headers?.code ?? 0);
      },
    });
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  get depth(): number {
    return this.queue.length + this.unacked.size;
  }

  publish(event: McpEvent): void {
    if (this.depth >= MAX_BUFFERED) {
      this.metrics.eventsDropped.inc();
      return;
    }
    this.queue.push({
      id: msgIdOf(event),
      subject: this.names.eventSubject(event.namespace),
      data: Buffer.from(JSON.stringify(event)),
      sentAt: 0,
    });
    // A full batch goes out on the next turn of the event loop, still never inside a request.
    if (this.queue.length === PUBLISH_BATCH) setImmediate(this.sendNow);
    else this.schedule();
  }

  async flush(timeoutMs = 5_000): Promise<void> {
    if (this.depth === 0) return;
    this.sendNow();
    await Promise.race([
      new Promise<void>((resolve) => this.waiters.push(resolve)),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
  }

  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    this.subscription.unsubscribe();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(this.sendNow, PUBLISH_INTERVAL_MS);
    this.timer.unref();
  }

  private readonly sendNow = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.send();
  };

  private send(): void {
    this.metrics.eventBufferDepth.set(this.depth);
    if (!this.isConnected()) return; // the sweep retries once NATS is back
    const now = Date.now();
    let sent = 0;
    while (sent < this.queue.length && this.unacked.size < MAX_UNACKED) {
      const event = this.queue[sent++];
      const id = ++this.seq;
      const h = headers();
      h.set('Nats-Msg-Id', event.id);
      try {
        this.connection.publish(event.subject, event.data, {
          headers: h,
          reply: `${this.inbox}.${id}`,
        });
      } catch {
        sent--; // connection closing: keep it queued
        break;
      }
      event.sentAt = now;
      this.unacked.set(id, event);
    }
    this.queue = sent === this.queue.length ? [] : this.queue.slice(sent);
  }

  private onAck(subject: string, data: Uint8Array, statusCode: number): void {
    const id = Number(subject.slice(this.inbox.length + 1));
    const entry = this.unacked.get(id);
    if (!entry) return;
    this.unacked.delete(id);
    // A PubAck is `{"stream":…,"seq":…}`; a failure is a status (503: no stream yet) or `{"error":…}`.
    const failed =
      statusCode >= 400 ||
      data.length === 0 ||
      ACK_DECODER.decode(data.subarray(0, 12)).includes('error');
    if (failed) {
      this.queue.unshift(entry);
      this.warnOnce(`JetStream refused an event (status ${statusCode})`);
    } else if (this.warned) {
      this.warned = false;
      this.logger.info('event publishing recovered');
    }
    if (this.queue.length > 0 && !failed) this.schedule();
    this.settled();
  }

  /** Events whose acknowledgement never came (NATS went away) are published again. */
  private sweep(): void {
    const deadline = Date.now() - ACK_TIMEOUT_MS;
    const retry: Outgoing[] = [];
    for (const [id, entry] of this.unacked) {
      if (entry.sentAt > deadline) break; // insertion order is send order
      this.unacked.delete(id);
      retry.push(entry);
    }
    if (retry.length > 0) {
      this.queue = [...retry, ...this.queue];
      this.warnOnce(`${retry.length} events unacknowledged; publishing again`);
    }
    if (this.queue.length > 0) this.schedule();
    this.metrics.eventBufferDepth.set(this.depth);
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.logger.warn({ buffered: this.depth }, message);
  }

  private settled(): void {
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
