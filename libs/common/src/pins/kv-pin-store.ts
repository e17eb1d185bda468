import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BucketUnavailableError, WatchedBucket } from '../kv/watched-bucket.js';
import {
  type PinRecord,
  type PinStore,
  PinStoreUnavailableError,
  pinRecord,
  type StoredPin,
} from './pin-store.js';

/** The text key of a pin: namespace and tool, which no namespace name can make ambiguous. */
export function pinKey(namespace: string, tool: string): string {
  return `${namespace}/${tool}`;
}

/**
 * Distributed mode's pin store (SPEC §7 v2): a JetStream key-value bucket
 * (`natsNames(prefix).pinsBucket`), one entry per namespace and tool, followed by every edge and
 * the analytics service. An approval written by the analytics service reaches every edge's watch
 * within milliseconds; while NATS is away, every reader keeps the pins it last saw.
 */
export class KvPinStore implements PinStore {
  private readonly bucket: WatchedBucket<PinRecord>;

  constructor(connection: NatsConnection, bucket: string, logger: Logger) {
    this.bucket = new WatchedBucket(
      connection,
      bucket,
      (json, key) => {
        const parsed = pinRecord.safeParse(json);
        // An entry stored under another tool's key is not that tool's pin.
        return parsed.success && pinKey(parsed.data.namespace, parsed.data.tool) === key
          ? parsed.data
          : undefined;
      },
      logger,
      'pin store',
    );
  }

  watch(onChange: () => void, readyTimeoutMs?: number): Promise<void> {
    return this.bucket.watch(onChange, readyTimeoutMs);
  }

  get(namespace: string, tool: string): StoredPin | undefined {
    const entry = this.bucket.held(pinKey(namespace, tool));
    return entry && { record: entry.value, revision: entry.revision };
  }

  list(): StoredPin[] {
    return [...this.bucket.all().values()].map((entry) => ({
      record: entry.value,
      revision: entry.revision,
    }));
  }

  async put(record: PinRecord, revision: number | undefined): Promise<boolean> {
    try {
      return await this.bucket.put(pinKey(record.namespace, record.tool), record, revision);
    } catch (error) {
      if (error instanceof BucketUnavailableError) {
        throw new PinStoreUnavailableError(error.message, { cause: error.cause });
      }
      throw error;
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the PinStore contract is async
  async close(): Promise<void> {
    this.bucket.close();
  }
}
