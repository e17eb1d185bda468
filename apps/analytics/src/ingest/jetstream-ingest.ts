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
import { ensureEventsStream, type NatsNames } from '#common';
import type { Logger } from 'pino';
import { type Delivery, readDelivery } from './ack-subject.js';
import type { BatchWriter } from './batch-writer.js';
import type { EventIngest } from './event-ingest.js';

export interface JetStreamIngestOptions {
  connection: NatsConnection;
  /** The events stream and the durable consumer of this deployment. */
  names: NatsNames;
  /** Events per DuckDB transaction at most (default 20000). */
  batchSize?: number;
  /** How long the first event of a quiet period waits for company before it is written (default 100 ms). */
  lingerMs?: number;
  /** Delivered but unacknowledged events the server allows; bounds this process's memory (default 60000). */
  maxAckPending?: number;
  /** Delay before retrying a batch the database could not take (default 2 s). */
  retryDelayMs?: number;
}

/**
 * A run of consecutive deliveries, committed as one DuckDB transaction and acknowledged with a
 * single ack of its last message (AckPolicy.All acks everything delivered before it). Invalid
 * messages are part of the run and are covered by that ack, so they are dropped with it.
 */
interface Batch {
  /** The message bodies as received: DuckDB parses them (see BatchWriter.writeDocuments). */
  docs: string[];
  /** Stream sequence of each, to name an invalid one in the log. */
  seqs: number[];
  /** The last message of the run (the highest stream sequence): its ack covers the run. */
  last?: JsMsg;
}

const ACK_WAIT_MS = 60_000;
const NANOS_PER_MS = 1_000_000;

function emptyBatch(): Batch {
  return { docs: [], seqs: [], last: undefined };
}

/**
 * Durable pull consumer of the events stream (SPEC §7, §9), with AckPolicy.All. Messages are
 * decoded as they arrive and written in batches; a batch is acked (one ack, of its last message)
 * only after it is committed, so a crash loses nothing (JetStream redelivers what was not acked)
 * and the store's dedupe makes the redelivery harmless. Batching is adaptive and pipelined: the
 * server keeps delivering while a batch commits, so under load batches fill up to batchSize and
 * when quiet an event waits at most lingerMs.
 */
export class JetStreamIngest implements EventIngest {
  private readonly batchSize: number;
  private readonly lingerMs: number;
  private readonly maxAckPending: number;
  private readonly retryDelayMs: number;
  private readonly stream: string;
  private readonly durable: string;
  /** The batch filling up, and full ones waiting for the writer (in delivery order). */
  private current: Batch = emptyBatch();
  private readonly full: Batch[] = [];
  /** Highest stream sequence taken into a batch, and highest acked, by this process. */
  private highestSeq = 0;
  private ackedSeq = 0;
  private messages?: ConsumerMessages;
  private flushing?: Promise<void>;
  private linger?: NodeJS.Timeout;
  private stopping = false;
  private connected = true;
  private consumerProblem: string | null = null;
  private recreating?: Promise<void>;
  /** Reused for every message (see readDelivery). */
  private readonly delivery: Delivery = { deliveryCount: 0, streamSequence: 0 };

  constructor(
    private readonly options: JetStreamIngestOptions,
    private readonly writer: BatchWriter,
    private readonly logger: Logger,
  ) {
    // Measured on 2 cores: 20,000-event transactions ingest ~30 % faster than 5,000 (the commit
    // and its WAL sync are per transaction). A quiet stream still commits within lingerMs.
    this.batchSize = options.batchSize ?? 20_000;
    this.lingerMs = options.lingerMs ?? 100;
    this.maxAckPending = options.maxAckPending ?? 60_000;
    this.retryDelayMs = options.retryDelayMs ?? 2_000;
    this.stream = options.names.eventsStream;
    this.durable = options.names.analyticsDurable;
  }

  async start(): Promise<void> {
    const { connection } = this.options;
    const { stream, durable } = this;
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
      // Arrived after the last batch: left unacked for whoever consumes next (it recreates the
      // consumer at the ack floor, see resumeFromAckFloor).
      return;
    }
    const delivery = this.delivery;
    // The ack subject is on the client's message object, not in the JsMsg interface: read it
    // where it is, and fall back to the library's own parse where it is not.
    const reply = (msg as { reply?: unknown }).reply;
    if (typeof reply !== 'string' || !readDelivery(reply, delivery)) {
      delivery.deliveryCount = msg.info.deliveryCount;
      delivery.streamSequence = msg.info.streamSequence;
    }
    const { streamSequence: seq, deliveryCount } = delivery;
    if (deliveryCount > 1 && seq <= this.highestSeq) {
      // A redelivery (ack_wait ran out while the database was failing, or an ack was lost) of a
      // message this process already holds in a batch, or has committed: the batch's ack covers
      // it. Acking a committed one at once spares the server another redelivery.
      if (seq <= this.ackedSeq) msg.ack();
      return;
    }
    this.highestSeq = seq;
    const batch = this.current;
    batch.last = msg;
    batch.docs.push(msg.string());
    batch.seqs.push(seq);
    if (batch.docs.length >= this.batchSize) {
      this.full.push(batch);
      this.current = emptyBatch();
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
      if (this.current.docs.length > 0 && !this.stopping)
        this.linger = setTimeout(() => void this.flush(), this.lingerMs);
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    for (;;) {
      let batch = this.full.shift();
      if (!batch) {
        if (this.current.docs.length === 0) return;
        batch = this.current;
        this.current = emptyBatch();
      }
      // A batch is written until it is committed: acking anything later would ack it too
      // (AckPolicy.All), so nothing after it may be acked first.
      for (;;) {
        try {
          const { seqs } = batch;
          await this.writer.writeDocuments(batch.docs, (i) => ({ seq: seqs[i] }));
          break;
        } catch (error) {
          this.logger.error(
            { err: error, events: batch.docs.length },
            'could not store event batch; retrying it',
          );
          // Stopping: leave it unacked; the next start redelivers it from the ack floor.
          if (this.stopping) return;
          // The database is failing: give it a moment rather than spinning.
          await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs));
        }
      }
      // Events DuckDB refused alone were logged by the writer and are dropped with the batch.
      const last = batch.last!;
      last.ack();
      this.ackedSeq = batch.seqs[batch.seqs.length - 1];
    }
  }

  /**
   * Creates the stream and the durable consumer if missing, and keeps the consumer's limits
   * current. With `resumeUnacked` (at start) it also takes back what a crashed predecessor
   * left unacknowledged: see resumeFromAckFloor.
   */
  private async ensureConsumer(resumeUnacked = false): Promise<void> {
    const { connection, names } = this.options;
    const { stream, durable } = this;
    await ensureEventsStream(connection, names);
    const jsm = await jetstreamManager(connection);
    const existing = await jsm.consumers.info(stream, durable).catch(() => undefined);
    if (
      existing &&
      ((resumeUnacked && existing.num_ack_pending > 0) ||
        existing.config.ack_policy !== AckPolicy.All)
    ) {
      // A consumer of an earlier version acked each message (AckPolicy.Explicit); the ack
      // policy of a consumer cannot be updated, so it is recreated at its ack floor as well.
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
    const { stream, durable } = this;
    const from = existing.ack_floor.stream_seq + 1;
    if (existing.num_ack_pending > 0) {
      this.logger.warn(
        { stream, durable, unacked: existing.num_ack_pending, fromSeq: from },
        'events of a previous analytics process were never acked; redelivering them now',
      );
    } else {
      this.logger.info(
        { stream, durable, ackPolicy: existing.config.ack_policy, fromSeq: from },
        'recreating the events consumer with ack policy "all"',
      );
    }
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
    const { stream, durable } = this;
    try {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.All,
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
