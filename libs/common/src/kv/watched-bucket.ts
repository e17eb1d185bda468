import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { type KV, type KvEntry, KvWatchInclude, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

/** Waits between attempts to (re)open the watch while NATS or JetStream is away. */
const RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000];
/** How long a write waits for this reader's own watch to deliver it. */
const SETTLE_TIMEOUT_MS = 2_000;

/**
 * KV keys allow `[-/_=.A-Za-z0-9]`, with `.` separating tokens. Every other character (and `.`,
 * `/`, `=`) is written `=XX` with its UTF-8 bytes in hex, so any text maps to one key and back:
 * `bob@acme.example` is stored under `bob=40acme=2Eexample`.
 */
export function kvKeyOf(text: string): string {
  let key = '';
  for (const char of text) {
    if (/^[A-Za-z0-9_-]$/.test(char)) {
      key += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) {
      key += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return key;
}

export function textOfKvKey(key: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < key.length; i++) {
    if (key[i] === '=' && /^[0-9A-F]{2}$/.test(key.slice(i + 1, i + 3))) {
      bytes.push(parseInt(key.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(key.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The bucket cannot be reached (NATS or JetStream down), or refused a write. */
export class BucketUnavailableError extends Error {
  constructor(bucket: string, options?: { cause?: unknown }) {
    super(`the NATS key-value bucket ${bucket} is unavailable`, options);
    this.name = 'BucketUnavailableError';
  }
}

/** One entry as held: its decoded value and the bucket's revision of it. */
export interface WatchedEntry<T> {
  value: T;
  revision: number;
}

/**
 * A JetStream key-value bucket followed by a watch: every reader holds the last value of every
 * entry, so a write by anyone (another replica, `nats kv`) reaches every reader within
 * milliseconds. Values are JSON read back through `decode`, so an entry that is not what the
 * bucket holds is ignored and logged, never trusted. Writes are atomic against the revision a
 * reader holds (create only when absent, update or delete only that revision).
 *
 * The watch is an ordered consumer, which would notice a restarted NATS server only after
 * missing two heartbeats (a minute): on every reconnect it is replaced by a new one, which
 * delivers the bucket's current state again. Each watch's initial state replaces the set held,
 * so nothing deleted meanwhile (even purged by hand) survives a reconnect.
 */
export class WatchedBucket<T> {
  private kv?: KV;
  private entries = new Map<string, WatchedEntry<T>>();
  private onChange?: () => void;
  private stopWatch?: () => void;
  private readonly settled: Array<() => void> = [];
  private closed = false;
  private failing = false;

  /**
   * @param decode the value of an entry's JSON, or undefined when it is not one (logged, ignored)
   * @param what what the entries are, for log lines ("key store", "pin store")
   */
  constructor(
    private readonly connection: NatsConnection,
    readonly bucket: string,
    private readonly decode: (json: unknown, key: string) => T | undefined,
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  /**
   * Starts following the bucket; resolves once its state was delivered, or after
   * `readyTimeoutMs` when it cannot be reached yet (it keeps trying).
   */
  async watch(onChange: () => void, readyTimeoutMs = 5_000): Promise<void> {
    this.onChange = onChange;
    let ready!: () => void;
    const loaded = new Promise<void>((resolve) => (ready = resolve));
    this.settled.push(() => ready());
    void this.followReconnects();
    void this.keepWatching();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), readyTimeoutMs);
    });
    const inTime = await Promise.race([loaded.then(() => true), timeout]);
    clearTimeout(timer);
    if (!inTime) {
      this.logger.warn({ bucket: this.bucket }, `${this.what} not reachable yet; retrying`);
    }
  }

  /** The entry under `key` (a text key, see kvKeyOf), as last delivered. */
  held(key: string): WatchedEntry<T> | undefined {
    return this.entries.get(key);
  }

  /** Every entry as last delivered, by text key. */
  all(): ReadonlyMap<string, WatchedEntry<T>> {
    return this.entries;
  }

  /** The entry under `key` read from the bucket itself (not the watch), or undefined. */
  async read(key: string): Promise<WatchedEntry<T> | undefined> {
    const kv = await this.open();
    let entry: KvEntry | null;
    try {
      entry = await kv.get(kvKeyOf(key));
    } catch (error) {
      throw new BucketUnavailableError(this.bucket, { cause: error });
    }
    if (!entry || entry.operation !== 'PUT') return undefined;
    const value = this.decoded(entry);
    return value === undefined ? undefined : { value, revision: entry.revision };
  }

  /**
   * Writes `value` under `key` if the entry is still at `revision` (undefined: absent, or
   * deleted). False when someone else wrote first. Resolves once this reader's watch holds a
   * revision at least as new as the write (bounded).
   */
  async put(key: string, value: T, revision: number | undefined): Promise<boolean> {
    const kv = await this.open();
    let written: number;
    try {
      written =
        revision === undefined
          ? await kv.create(kvKeyOf(key), JSON.stringify(value))
          : await kv.update(kvKeyOf(key), JSON.stringify(value), revision);
    } catch (error) {
      if (isRevisionConflict(error)) return false;
      throw new BucketUnavailableError(this.bucket, { cause: error });
    }
    await this.settle(() => (this.entries.get(key)?.revision ?? 0) >= written);
    return true;
  }

  /** Deletes the entry if it is still at `revision`; false when it is not (gone or rewritten). */
  async delete(key: string, revision: number): Promise<boolean> {
    const kv = await this.open();
    try {
      await kv.delete(kvKeyOf(key), { previousSeq: revision });
    } catch (error) {
      if (isRevisionConflict(error)) return false;
      throw new BucketUnavailableError(this.bucket, { cause: error });
    }
    await this.settle(() => (this.entries.get(key)?.revision ?? Infinity) !== revision);
    return true;
  }

  close(): void {
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
        throw new BucketUnavailableError(this.bucket, { cause: error });
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
          const cause = error instanceof BucketUnavailableError ? (error.cause ?? error) : error;
          this.logger.warn(
            { err: String(cause), bucket: this.bucket },
            `cannot watch the ${this.what}; retrying`,
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
      this.logger.info({ bucket: this.bucket }, `${this.what} reachable again`);
    }
    // The watch first delivers the last value of every entry (the last one marked as an
    // update), then every change. An empty bucket delivers nothing to begin with.
    let initial: Map<string, WatchedEntry<T>> | undefined = new Map();
    if (stored === 0) {
      initial = undefined;
      this.publish(new Map());
    }
    for await (const entry of watch) {
      const target = initial ?? this.entries;
      const key = textOfKvKey(entry.key);
      const value = entry.operation === 'PUT' ? this.decoded(entry) : undefined;
      if (value === undefined) target.delete(key);
      else target.set(key, { value, revision: entry.revision });
      if (entry.isUpdate) {
        this.publish(initial ?? this.entries);
        initial = undefined;
      }
    }
  }

  private publish(entries: Map<string, WatchedEntry<T>>): void {
    this.entries = entries;
    this.onChange?.();
    for (const resolve of this.settled.splice(0)) resolve();
  }

  private decoded(entry: KvEntry): T | undefined {
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const value = json === undefined ? undefined : this.decode(json, textOfKvKey(entry.key));
    if (value === undefined) {
      this.logger.error(
        { bucket: this.bucket, entry: entry.key },
        `${this.what} entry is not valid; ignored`,
      );
    }
    return value;
  }

  private async followReconnects(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (this.closed) return;
      // A new watch, at once: the old one would notice a restarted server only after a minute.
      if (status.type === 'reconnect') this.stopWatch?.();
    }
  }

  /** Resolves once `done` holds after a delivery of this reader's watch, or after a bound. */
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

function isRevisionConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
