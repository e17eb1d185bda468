import { BucketUnavailableError, WatchedBucket } from '#common';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  DuplicateKeyIdError,
  KeyStoreUnavailableError,
  type RuntimeKeyRecord,
  type RuntimeKeys,
  runtimeKeyRecord,
} from './runtime-keys.js';

/**
 * Keys created at run time in a JetStream key-value bucket (`natsNames(prefix).keysBucket`), one
 * entry per key id holding its record (SPEC §5 v2). Every auth replica follows the whole bucket
 * (WatchedBucket), so a write by any replica (or by `nats kv`) reaches every replica's verify
 * answers within milliseconds; revoking deletes the entry. Key ids are stored under kvKeyOf
 * (`bob@acme.example` as `bob=40acme=2Eexample`).
 */
export class KvRuntimeKeys implements RuntimeKeys {
  private readonly bucket: WatchedBucket<RuntimeKeyRecord>;
  private onChange?: (keys: RuntimeKeyRecord[]) => void;

  constructor(connection: NatsConnection, bucket: string, logger: Logger) {
    this.bucket = new WatchedBucket(
      connection,
      bucket,
      (json, id) => {
        const parsed = runtimeKeyRecord.safeParse(json);
        // A record stored under another id is not that key.
        return parsed.success && parsed.data.id === id ? parsed.data : undefined;
      },
      logger,
      'key store',
    );
  }

  async watch(onChange: (keys: RuntimeKeyRecord[]) => void, readyTimeoutMs = 5_000): Promise<void> {
    this.onChange = onChange;
    await this.bucket.watch(() => this.onChange?.(this.list()), readyTimeoutMs);
  }

  list(): RuntimeKeyRecord[] {
    return [...this.bucket.all().values()].map((entry) => entry.value);
  }

  async get(id: string): Promise<RuntimeKeyRecord | undefined> {
    return (await this.bucket.read(id).catch(unavailable))?.value;
  }

  async create(record: RuntimeKeyRecord): Promise<void> {
    // Atomic: fails when the entry exists (a deleted entry may be created again).
    const created = await this.bucket.put(record.id, record, undefined).catch(unavailable);
    if (!created) throw new DuplicateKeyIdError(record.id);
  }

  async revoke(id: string): Promise<boolean> {
    const entry = await this.bucket.read(id).catch(unavailable);
    if (!entry) return false;
    // Only the entry just read: a key created again under the id meanwhile stays.
    return this.bucket.delete(id, entry.revision).catch(unavailable);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async close(): Promise<void> {
    this.bucket.close();
  }
}

function unavailable(error: unknown): never {
  if (error instanceof BucketUnavailableError) {
    throw new KeyStoreUnavailableError('the key store (NATS key-value bucket) is unavailable', {
      cause: error.cause,
    });
  }
  throw error;
}
