import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { type KV, type KvEntry, KvWatchInclude, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  DuplicateKeyIdError,
  KeyStoreUnavailableError,
  type RuntimeKeyRecord,
  type RuntimeKeys,
  runtimeKeyRecord,
} from './runtime-keys.js';

/** Waits between attempts to (re)open the watch while NATS or JetStream is away. */
const RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000];
/** How long a write waits for this replica's own watch to deliver it. */
const SETTLE_TIMEOUT_MS = 2_000;

/**
 * KV keys allow `[-/_=.A-Za-z0-9]`, with `.` separating tokens; key ids allow `@` and any use of
 * `.`. So every character but `[A-Za-z0-9_-]` is written `=XX` (its hex code): `bob@acme.example`
 * is stored under `bob=40acme=2Eexample`. (Key ids are ASCII: KEY_ID.)
 */
export function kvKeyOf(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function idOfKvKey(key: string): string {
  return key.replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Keys created at run time in a JetStream key-value bucket (`natsNames(prefix).keysBucket`), one
 * entry per key id holding its record (SPEC §5 v2). Every auth replica watches the whole bucket
 * and holds the last value of every entry, so a write by any replica (or by `nats kv`) reaches
 * every replica's verify answers within milliseconds; revoking deletes the entry.
 *
 * The watch is an ordered consumer, which would notice a restarted NATS server only after
 * missing two heartbeats (a minute): on every reconnect it is replaced by a new one, which
 * delivers the bucket's current state again. Each watch's initial state replaces the set held,
 * so nothing deleted meanwhile (even purged by hand) survives a reconnect.
 */
export class KvRuntimeKeys implements RuntimeKeys {
  private kv?: KV;
  private records = new Map<string, RuntimeKeyRecord>();
  private onChange?: (keys: RuntimeKeyRecord[]) => void;
  private stopWatch?: () => void;
  private readonly settled: Array<() => void> = [];
  private closed = false;
  private failing = false;

  constructor(
    private readonly connection: NatsConnection,
    private readonly bucket: string,
    private readonly logger: Logger,
  ) {}

  async watch(onChange: (keys: RuntimeKeyRecord[]) => void, readyTimeoutMs = 5_000): Promise<void> {
    this.onChange = onChange;
    let ready!: () => void;
    const loaded = new Promise<void>((resolve) => (ready = resolve));
    this.settled.push(() => ready());
    void this.followReconnects();
    void this.keepWatching();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn(
          { bucket: this.bucket },
          'key store not reachable yet: created keys are refused until it is (file keys work)',
        );
        resolve();
      }, readyTimeoutMs);
    });
    await Promise.race([loaded, timeout]);
    clearTimeout(timer);
  }

  list(): RuntimeKeyRecord[] {
    return [...this.records.values()];
  }

  async get(id: string): Promise<RuntimeKeyRecord | undefined> {
    const kv = await this.open();
    let entry: KvEntry | null;
    try {
      entry = await kv.get(kvKeyOf(id));
    } catch (error) {
      throw unavailable(error);
    }
    return entry && entry.operation === 'PUT' ? this.decode(entry) : undefined;
  }

  async create(record: RuntimeKeyRecord): Promise<void> {
    const kv = await this.open();
    try {
      // Atomic: fails when the entry exists (a deleted entry may be created again).
      await kv.create(kvKeyOf(record.id), JSON.stringify(record));
    } catch (error) {
      if (
        error instanceof JetStreamApiError &&
        (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
          error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
      ) {
        throw new DuplicateKeyIdError(record.id);
      }
      throw unavailable(error);
    }
    await this.settle(() => this.records.get(record.id)?.key_sha256 === record.key_sha256);
  }

  async revoke(id: string): Promise<boolean> {
    const kv = await this.open();
    try {
      const entry = await kv.get(kvKeyOf(id));
      if (!entry || entry.operation !== 'PUT') return false;
      // Only the entry just read: a key created again under the id meanwhile stays.
      await kv.delete(kvKeyOf(id), { previousSeq: entry.revision });
    } catch (error) {
      if (
        error instanceof JetStreamApiError &&
        error.code === JetStreamApiCodes.StreamWrongLastSequence
      ) {
        return false;
      }
      throw unavailable(error);
    }
    await this.settle(() => !this.records.has(id));
    return true;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatch?.();
    for (const resolve of this.settled.splice(0)) resolve();
  }

  private async open(): Promise<KV> {
    if (this.kv) return this.kv;
    const kvm = new Kvm(this.connection);
    try {
      this.kv = await kvm.create(this.bucket, { history: 1, storage: StorageType.File });
    } catch (error) {
      // A bucket made by hand with other limits cannot be created again: bind to it as it is.
      try {
        this.kv = await kvm.open(this.bucket);
        await this.kv.status();
      } catch {
        this.kv = undefined;
        throw unavailable(error);
      }
    }
    return this.kv;
  }

  /** Runs watches until close(): a watch that ends (reconnect, NATS away) is opened again. */
  private async keepWatching(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      try {
        await this.watchOnce(() => (attempt = 0));
      } catch (error) {
        // Opened again next time: a bucket deleted by hand is created anew.
        this.kv = undefined;
        if (!this.failing) {
          this.failing = true;
          const cause = error instanceof KeyStoreUnavailableError ? (error.cause ?? error) : error;
          this.logger.warn(
            { err: String(cause), bucket: this.bucket },
            'cannot watch the key store; retrying',
          );
        }
      }
      if (this.closed) return;
      await delay(RETRY_DELAYS_MS[Math.min(attempt++, RETRY_DELAYS_MS.length - 1)]);
    }
  }

  private async watchOnce(opened: () => void): Promise<void> {
    const kv = await this.open();
    const stored = (await kv.status()).values;
    const watch = await kv.watch({ include: KvWatchInclude.LastValue });
    this.stopWatch = () => watch.stop();
    if (this.closed) watch.stop();
    opened();
    if (this.failing) {
      this.failing = false;
      this.logger.info({ bucket: this.bucket }, 'key store reachable again');
    }
    // The watch first delivers the last value of every entry (the last one marked as an
    // update), then every change. An empty bucket delivers nothing to begin with.
    let initial: Map<string, RuntimeKeyRecord> | undefined = new Map();
    if (stored === 0) {
      initial = undefined;
      this.publish(new Map());
    }
    for await (const entry of watch) {
      const target = initial ?? this.records;
      const id = idOfKvKey(entry.key);
      const record = entry.operation === 'PUT' ? this.decode(entry) : undefined;
      if (record && record.id === id) target.set(id, record);
      else target.delete(id);
      if (entry.isUpdate) {
        this.publish(initial ?? this.records);
        initial = undefined;
      }
    }
  }

  private publish(records: Map<string, RuntimeKeyRecord>): void {
    this.records = records;
    this.onChange?.(this.list());
    for (const resolve of this.settled.splice(0)) resolve();
  }

  private decode(entry: KvEntry): RuntimeKeyRecord | undefined {
    let value: unknown;
    try {
      value = entry.json();
    } catch {
      value = undefined;
    }
    const parsed = runtimeKeyRecord.safeParse(value);
    if (parsed.success) return parsed.data;
    this.logger.error(
      { bucket: this.bucket, entry: entry.key },
      'key store entry is not a key; ignored',
    );
    return undefined;
  }

  private async followReconnects(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (this.closed) return;
      // A new watch, at once: the old one would notice a restarted server only after a minute.
      if (status.type === 'reconnect') this.stopWatch?.();
    }
  }

  /** Resolves once `done` holds after a delivery of this replica's watch, or after a bound. */
  private async settle(done: () => boolean): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.settled.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function unavailable(error: unknown): KeyStoreUnavailableError {
  if (error instanceof KeyStoreUnavailableError) return error;
  return new KeyStoreUnavailableError('the key store (NATS key-value bucket) is unavailable', {
    cause: error,
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
