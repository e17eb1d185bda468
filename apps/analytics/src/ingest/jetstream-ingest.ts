import {
  AckPolicy,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ensureEventsStream } from '#common';
import type { Logger } from 'pino';
import type { BatchWriter } from './batch-writer.js';
import { type DecodedEvent, decodeEventMessage } from './event-decoder.js';
import type { EventIngest } from './event-ingest.js';

export interface JetStreamIngestOptions {
  connection: NatsConnection;
  stream: string;
  subjects: string[];
  durable: string;
  /** Events per DuckDB transaction at most (default 5000). */
  batchSize?: number;
  /** How long the first event of a quiet period waits for company before it is written (default 100 ms). */
  lingerMs?: number;
  /** Delivered but unacknowledged events the server allows; bounds this process's memory (default 20000). */
  maxAckPending?: number;
  /** Redelivery delay of a batch the database could not take (default 2 s). */
  retryDelayMs?: number;
}

interface Pending {
  msg: JsMsg;
  event: DecodedEvent;
}

const ACK_WAIT_MS = 60_000;
const NANOS_PER_MS = 1_000_000;

/**
 * Durable pull consumer of the events stream (SPEC §7, §9). Messages are decoded as they arrive
 * and written in batches; a message is acked only after its batch is committed, so a crash
 * loses nothing (JetStream redelivers) and the store's dedupe makes the redelivery harmless.
 * Batching is adaptive: while one batch commits the next accumulates, so under load batches
 * grow towards batchSize and when quiet an event waits at most lingerMs.
 */
export class JetStreamIngest implements EventIngest {
  private readonly batchSize: number;
  private readonly lingerMs: number;
  private readonly maxAckPending: number;
  private readonly retryDelayMs: number;
  private buffer: Pending[] = [];
  private messages?: ConsumerMessages;
  private flushing?: Promise<void>;
  private linger?: NodeJS.Timeout;
  private stopping = false;
  private connected = true;
  private consumerProblem: string | null = null;
  private recreating?: Promise<void>;

  constructor(
    private readonly options: JetStreamIngestOptions,
    private readonly writer: BatchWriter,
    private readonly logger: Logger,
  ) {
    this.batchSize = options.batchSize ?? 5_000;
    this.lingerMs = options.lingerMs ?? 100;
    this.maxAckPending = options.maxAckPending ?? 20_000;
    this.retryDelayMs = options.retryDelayMs ?? 2_000;
  }

  async start(): Promise<void> {
    const { connection, stream, durable } = this.options;
    await this.ensureConsumer(true);
    const consumer = await jetstream(connection).consumers.get(stream, durable);
    this.messages = await consumer.consume({
      max_messages: Math.min(this.batchSize, this.maxAckPending),
      callback: (msg) => this.receive(msg),
    });
    void this.watchConsumer(this.messages);
    void this.watchConnection();
    this.logger.info(
      { stream, durable, batchSize: this.batchSize },
      'consuming events from JetStream',
    );
  }

  async stop(): Promise<void> {
    if (this.stopping) {
      await this.flushing;
      return;
    }
    this.stopping = true;
    clearTimeout(this.linger);
    await this.messages?.close().catch(() => undefined);
    // Finish what is in hand: commit, then ack, then make sure the acks left this process.
    await this.flush();
    if (!this.options.connection.isClosed())
      await this.options.connection.flush().catch(() => undefined);
  }

  problem(): string | null {
    if (this.options.connection.isClosed()) return 'NATS connection closed';
    if (!this.connected) return 'NATS disconnected';
    return this.consumerProblem;
  }

  private receive(msg: JsMsg): void {
    if (this.stopping) {
      // Arrived after the last batch: hand it back for whoever consumes next.
      msg.nak();
      return;
    }
    const decoded = decodeEventMessage(msg.string());
    if (!decoded.ok) {
      // Not an event at all: log it and never see it again (redelivery cannot fix it). term()
      // without a reason: servers before 2.10.4 ignore a `+TERM reason` ack altogether.
      this.writer.countInvalid();
      this.logger.warn(
        { subject: msg.subject, seq: msg.seq, reason: decoded.reason },
        'invalid event dropped',
      );
      msg.term();
      return;
    }
    this.buffer.push({ msg, event: decoded.event });
    if (this.buffer.length >= this.batchSize) {
      void this.flush();
    } else if (!this.linger && !this.flushing) {
      this.linger = setTimeout(() => void this.flush(), this.lingerMs);
    }
  }

  /** Writes everything buffered, one batch at a time; concurrent calls share the running loop. */
  private flush(): Promise<void> {
    clearTimeout(this.linger);
    this.linger = undefined;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
      // Events that arrived during the last commit wait for company only if there are few.
      if (this.buffer.length > 0 && !this.stopping)
        this.linger = setTimeout(() => void this.flush(), this.lingerMs);
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.batchSize);
      try {
        const result = await this.writer.write(batch.map((pending) => pending.event));
        const rejected = new Set(result.rejected);
        for (const { msg, event } of batch) {
          if (rejected.has(event)) msg.term();
          else msg.ack();
        }
      } catch (error) {
        this.logger.error(
          { err: error, events: batch.length },
          'could not store event batch; JetStream redelivers it',
        );
        for (const { msg } of batch) msg.nak(this.retryDelayMs);
        if (this.stopping) return;
        // The database is failing: give it a moment rather than spinning on the next batch.
        await new Promise((resolve) => setTimeout(resolve, Math.min(this.retryDelayMs, 1_000)));
      }
    }
  }

  /**
   * Creates the stream and the durable consumer if missing, and keeps the consumer's limits
   * current. With `resumeUnacked` (at start) it also takes back what a crashed predecessor
   * left unacknowledged: see resumeFromAckFloor.
   */
  private async ensureConsumer(resumeUnacked = false): Promise<void> {
    const { connection, stream, subjects, durable } = this.options;
    await ensureEventsStream(connection, { stream, subjects });
    const jsm = await jetstreamManager(connection);
    const existing = await jsm.consumers.info(stream, durable).catch(() => undefined);
    if (existing && resumeUnacked && existing.num_ack_pending > 0) {
      await this.resumeFromAckFloor(jsm, existing);
      return;
    }
    if (!existing) {
      await this.createConsumer(jsm, { deliver_policy: DeliverPolicy.All });
      return;
    }
    const limits = this.limits();
    if (
      existing.config.max_ack_pending !== limits.max_ack_pending ||
      existing.config.ack_wait !== limits.ack_wait
    ) {
      await jsm.consumers.update(stream, durable, limits);
    }
  }

  /**
   * Events delivered to a previous analytics process that died before acking them would come
   * back only after ack_wait, and while they fill max_ack_pending nothing newer is delivered:
   * a restart would stall for a minute. This process holds the DuckDB file, so no other
   * analytics consumes; it recreates the consumer at the first unacknowledged event instead.
   * What was acked after that point comes again and is dropped by the store's dedupe.
   */
  private async resumeFromAckFloor(jsm: JetStreamManager, existing: ConsumerInfo): Promise<void> {
    const { stream, durable } = this.options;
    const from = existing.ack_floor.stream_seq + 1;
    this.logger.warn(
      { stream, durable, unacked: existing.num_ack_pending, fromSeq: from },
      'events of a previous analytics process were never acked; redelivering them now',
    );
    await jsm.consumers.delete(stream, durable);
    await this.createConsumer(jsm, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
  }

  private async createConsumer(
    jsm: JetStreamManager,
    start: { deliver_policy: DeliverPolicy; opt_start_seq?: number },
  ): Promise<void> {
    const { stream, durable } = this.options;
    try {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ...start,
        ...this.limits(),
      });
      this.logger.info({ stream, durable, ...start }, 'created durable consumer');
    } catch (error) {
      // Created concurrently (another service recreating it): fine if it now exists.
      await jsm.consumers.info(stream, durable).catch(() => {
        throw error;
      });
    }
  }

  private limits(): { max_ack_pending: number; ack_wait: number } {
    return { max_ack_pending: this.maxAckPending, ack_wait: ACK_WAIT_MS * NANOS_PER_MS };
  }

  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      switch (status.type) {
        case 'consumer_deleted':
        case 'consumer_not_found':
        case 'stream_not_found':
          // JetStream lost its state (e.g. a NATS restart without persistence): recreate it;
          // consume() resumes by itself once the consumer exists again.
          this.consumerProblem = `JetStream ${status.type.replace(/_/g, ' ')}`;
          this.logger.warn({ status: status.type }, 'events consumer missing; recreating it');
          this.recreating ??= this.ensureConsumer()
            .then(() => {
              this.consumerProblem = null;
            })
            .catch((error: unknown) =>
              this.logger.error({ err: error }, 'could not recreate events consumer'),
            )
            .finally(() => {
              this.recreating = undefined;
            });
          break;
        case 'heartbeats_missed':
          this.consumerProblem = 'JetStream heartbeats missed';
          this.logger.warn({ count: status.count }, 'JetStream heartbeats missed');
          break;
        case 'heartbeat':
        case 'next':
          this.consumerProblem = null;
          break;
        default:
          break;
      }
    }
  }

  private async watchConnection(): Promise<void> {
    for await (const status of this.options.connection.status()) {
      if (status.type === 'disconnect') this.connected = false;
      else if (status.type === 'reconnect') this.connected = true;
    }
  }
}
