import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBValue,
  type JS,
} from '@duckdb/node-api';
import type { Logger } from 'pino';
import { ConnectionPool } from './connection-pool.js';
import { migrateSchema } from './schema-migration.js';
import {
  FRESH_FROM_TYPED_SQL,
  GROW_EVENTS_SQL,
  GROWN_REQUESTS_SQL,
  INSERT_FRESH_EVENTS_SQL,
  INSERT_FRESH_REQUESTS_SQL,
  IS_REQUEST,
  REBUILD_REQUESTS_SQL,
  SHRINK_GROWN_REQUESTS_SQL,
  STAGE_GROWN_SQL,
  STAGE_PARSED_SQL,
  STAGE_TYPED_SQL,
  STAGING_TABLE,
  STAGING_TABLE_RESET,
  TYPED_BATCH_FACTS_SQL,
} from './schema.js';

/** The database file is held by another process (or already open in this one). */
export class DatabaseLockedError extends Error {
  constructor(path: string, detail: string) {
    super(
      `analytics database ${path} is already in use (${detail}). The analytics service must be the ` +
        `only writer of its DuckDB file: stop the other analytics instance, or set ANALYTICS_DB to another file.`,
    );
    this.name = 'DatabaseLockedError';
  }
}

/** A read query ran past its deadline and was interrupted. */
export class QueryTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`query interrupted after ${timeoutMs} ms`);
    this.name = 'QueryTimeoutError';
  }
}

/**
 * One event ready to be written: its id, its JSON document, its `ts` in epoch milliseconds and
 * its `count` (how many requests it stands for).
 */
export interface StorableEvent {
  /** The document's `id`: a batch keeps one event of each id, the one of the largest count. */
  id: string;
  doc: string;
  tsMs: number;
  count: number;
}

export interface EventStoreOptions {
  logger: Logger;
  /** Connections serving read queries in parallel (default 4). */
  readConnections?: number;
  /** Read queries running longer are interrupted, freeing their connection (default 30 s). */
  queryTimeoutMs?: number;
  /** DuckDB worker threads while a read query runs (default: DuckDB's, one per core). */
  queryThreads?: number;
}

/**
 * DuckDB worker threads while only ingest runs. Ingest batches are small work for a thread pool:
 * measured on 2 cores, a second thread took ~50 % more CPU for the same batches at the same
 * speed (CPU the NATS client and nats-server then lack), while the read queries over millions of
 * rows need every core. The pool is sized per moment: see EventStore.withQueryThreads.
 */
const INGEST_THREADS = 1;

export type Row = Record<string, JS>;

// DuckDB's file lock is a POSIX record lock, which never conflicts within one process: a second
// open of the same file from this process would succeed and corrupt it. Guard that case here.
const openInThisProcess = new Set<string>();

/**
 * The DuckDB file of analytics events. One connection writes (batches and retention deletes,
 * serialised), a small pool reads. The process holding it is the file's only writer.
 */
export class EventStore {
  private writeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private activeReads = 0;
  private threads: number;
  private threadsChange: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    private staging: DuckDBAppender,
    private readonly readers: ConnectionPool,
    /** Runs nothing but `SET threads`: never waits behind a batch or a query. */
    private readonly control: DuckDBConnection,
    private readonly logger: Logger,
    private readonly queryTimeoutMs: number,
    private readonly queryThreads: number,
  ) {
    this.threads = queryThreads;
  }

  static async open(path: string, options: EventStoreOptions): Promise<EventStore> {
    const absolute = path === ':memory:' ? path : resolve(path);
    if (openInThisProcess.has(absolute)) {
      throw new DatabaseLockedError(path, 'it is already open in this process');
    }
    if (absolute !== ':memory:') mkdirSync(dirname(absolute), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(absolute);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/Could not set lock|Conflicting lock/i.test(message)) {
        const holder = /Conflicting lock is held in ([^.]*?\(PID \d+\))/.exec(message)?.[1];
        throw new DatabaseLockedError(path, holder ? `locked by ${holder}` : message);
      }
      throw new Error(`cannot open analytics database ${path}: ${message}`, { cause: error });
    }
    openInThisProcess.add(absolute);
    const connections: DuckDBConnection[] = [];
    try {
      const writer = await connect(instance);
      connections.push(writer);
      await migrateSchema(writer, options.logger);
      await syncRequests(writer, options.logger);
      await writer.run(STAGING_TABLE_RESET);
      const staging = await writer.createAppender(STAGING_TABLE);
      const readers: DuckDBConnection[] = [];
      for (let i = 0; i < (options.readConnections ?? 4); i++)
        readers.push(await connect(instance));
      connections.push(...readers);
      const control = await connect(instance);
      connections.push(control);
      const defaultThreads = (
        await control.runAndReadAll("SELECT current_setting('threads')::INTEGER AS threads")
      ).getRowObjectsJS()[0].threads as number;
      const store = new EventStore(
        absolute,
        instance,
        writer,
        staging,
        new ConnectionPool(readers),
        control,
        options.logger,
        options.queryTimeoutMs ?? 30_000,
        Math.max(1, options.queryThreads ?? defaultThreads),
      );
      await store.applyThreads();
      return store;
    } catch (error) {
      for (const connection of connections) connection.closeSync();
      instance.closeSync();
      openInThisProcess.delete(absolute);
      throw error;
    }
  }

  /**
   * Writes a batch and returns how many rows were new; events already stored (same id) are
   * skipped, but for a per-minute count that grew (see STAGE_GROWN_SQL). Resolves only once the
   * batch is committed.
   *
   * The documents go through an appender into a temp staging table (one cheap call per event;
   * binding them as a list parameter costs several times more), then DuckDB parses them once
   * into a temp table and moves the new ones. The staging table is then replaced rather than
   * emptied: DuckDB keeps the memory of rows deleted from a temp table (measured: ~560 MB after a
   * million events), and the replacement is also faster than TRUNCATE. A failed batch never leaks
   * into the next. The batch's new events are copied into `events` and their requests into
   * `requests` in one transaction: both tables always agree.
   */
  insertBatch(events: readonly StorableEvent[]): Promise<number> {
    if (events.length === 0) return Promise.resolve(0);
    return this.serializeWrite(async () => {
      let min = Infinity;
      let max = -Infinity;
      let counted = false;
      try {
        // One event per id, the largest count (a per-minute count published as it grew):
        // a Map over 5,000 ids costs ~1 ms where a window QUALIFY cost DuckDB 10-20 ms a batch.
        const kept = new Map<string, StorableEvent>();
        for (const event of events) {
          const seen = kept.get(event.id);
          if (!seen || event.count > seen.count) kept.set(event.id, event);
        }
        for (const { doc, tsMs, count } of kept.values()) {
          this.staging.appendVarchar(doc);
          this.staging.endRow();
          if (tsMs < min) min = tsMs;
          if (tsMs > max) max = tsMs;
          if (count > 1) counted = true;
        }
        this.staging.flushSync();
        await this.writer.run(STAGE_PARSED_SQL);
        // Date.parse drops sub-millisecond digits: widen the upper bound by 1 ms to cover them.
        const span = [new Date(min).toISOString(), new Date(max + 1).toISOString()];
        return await this.commitFresh(span, counted);
      } finally {
        await this.resetStaging();
      }
    });
  }

  /**
   * The fast path for documents straight off the wire: Node does not parse them, DuckDB parses
   * each once, strictly (see STAGE_TYPED_SQL), and the batch is checked in SQL (VALID_EVENT, ids
   * unique within the batch). Returns the number of new rows once committed, or `null` when the
   * batch has to be validated event by event first (a document DuckDB refuses, an invalid or
   * repeated event): nothing of it was written then. Measured on 2 cores: parsing in Node as
   * well cost ~7 µs of the main thread per event, a fifth of the ingest's CPU.
   */
  insertDocuments(docs: readonly string[]): Promise<number | null> {
    if (docs.length === 0) return Promise.resolve(0);
    return this.serializeWrite(async () => {
      try {
        for (const doc of docs) {
          this.staging.appendVarchar(doc);
          this.staging.endRow();
        }
        this.staging.flushSync();
        try {
          await this.writer.run(STAGE_TYPED_SQL);
        } catch {
          // Not JSON, not an object, a key missing or repeated, a type DuckDB will not take.
          return null;
        }
        const facts = (await this.writer.runAndReadAll(TYPED_BATCH_FACTS_SQL)).getRowObjectsJS()[0];
        if (facts.invalid !== 0n || facts.ids !== facts.n) return null;
        const span = [facts.min_ts as string, facts.max_ts as string];
        return await this.commitFresh(span, facts.counted === true);
      } finally {
        await this.resetStaging();
      }
    });
  }

  /**
   * Copies the typed batch's new events into both tables, and first, when the batch holds
   * per-minute counts (`counted`), grows the stored ones they outgrew: one transaction.
   */
  private commitFresh(span: string[], counted: boolean): Promise<number> {
    return inTransaction(this.writer, async () => {
      if (counted) {
        await this.writer.run(STAGE_GROWN_SQL, span);
        await this.writer.run(GROW_EVENTS_SQL, span);
        await this.writer.run(SHRINK_GROWN_REQUESTS_SQL, span);
        await this.writer.run(GROWN_REQUESTS_SQL, span);
      }
      await this.writer.run(FRESH_FROM_TYPED_SQL, span);
      const result = await this.writer.run(INSERT_FRESH_EVENTS_SQL);
      await this.writer.run(INSERT_FRESH_REQUESTS_SQL);
      return result.rowsChanged;
    });
  }

  /**
   * Drops what the appender holds and starts a fresh staging table. When this itself fails the
   * old (closed) appender stays, the next batch fails on it, and its reset tries again.
   */
  private async resetStaging(): Promise<void> {
    try {
      this.staging.clear();
      this.staging.closeSync();
    } catch {
      // Already closed by an earlier failed reset.
    }
    await this.writer.run(STAGING_TABLE_RESET);
    this.staging = await this.writer.createAppender(STAGING_TABLE);
  }

  /** Retention: deletes events older than `cutoff`; returns how many. */
  deleteOlderThan(cutoff: Date): Promise<number> {
    return this.serializeWrite(async () => {
      const params = [cutoff.toISOString()];
      return inTransaction(this.writer, async () => {
        const result = await this.writer.run(
          'DELETE FROM events WHERE ts < $1::TIMESTAMPTZ',
          params,
        );
        await this.writer.run('DELETE FROM requests WHERE ts < $1::TIMESTAMPTZ', params);
        return result.rowsChanged;
      });
    });
  }

  /** Runs a read query with bound parameters and returns its rows as plain JS values. */
  query(sql: string, params: DuckDBValue[] = []): Promise<Row[]> {
    return this.readers.use((connection) =>
      this.withQueryThreads(() => this.read(connection, sql, params)),
    );
  }

  /**
   * Gives DuckDB its full thread pool while at least one read query runs, and one thread
   * otherwise (INGEST_THREADS). `SET threads` is instance-wide and safe while queries run; a
   * change is applied in order on its own connection, so the last one wins.
   */
  private async withQueryThreads<T>(work: () => Promise<T>): Promise<T> {
    this.activeReads++;
    await this.applyThreads();
    try {
      return await work();
    } finally {
      this.activeReads--;
      void this.applyThreads();
    }
  }

  private applyThreads(): Promise<void> {
    this.threadsChange = this.threadsChange.then(async () => {
      const wanted = this.activeReads > 0 ? this.queryThreads : INGEST_THREADS;
      if (wanted === this.threads || this.closed) return;
      try {
        await this.control.run(`SET threads = ${wanted}`);
        this.threads = wanted;
      } catch (error) {
        this.logger.warn(
          { err: error, threads: wanted },
          'could not resize the DuckDB thread pool',
        );
      }
    });
    return this.threadsChange;
  }

  /** One query on one connection, interrupted at the deadline. */
  private async read(
    connection: DuckDBConnection,
    sql: string,
    params: DuckDBValue[],
  ): Promise<Row[]> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connection.interrupt();
    }, this.queryTimeoutMs);
    try {
      const reader = await connection.runAndReadAll(sql, params);
      return reader.getRowObjectsJS();
    } catch (error) {
      throw timedOut ? new QueryTimeoutError(this.queryTimeoutMs) : error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Readiness probe: the file answers a query (too small to resize the thread pool for). */
  async ping(): Promise<void> {
    await this.readers.use((connection) => this.read(connection, 'SELECT 1', []));
  }

  /** Waits for the write in progress, checkpoints and releases the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeChain.catch(() => undefined);
    await this.threadsChange;
    try {
      await this.writer.run('CHECKPOINT');
    } catch (error) {
      this.logger.warn(
        { err: error },
        'checkpoint at close failed; the WAL is replayed at next start',
      );
    }
    try {
      this.staging.closeSync();
    } catch {
      // Closed by a failed reset.
    }
    this.readers.close();
    this.control.closeSync();
    this.writer.closeSync();
    this.instance.closeSync();
    openInThisProcess.delete(this.path);
  }

  private serializeWrite<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the analytics database is closed'));
    const next = this.writeChain.then(work, work);
    this.writeChain = next.catch(() => undefined);
    return next;
  }
}

/** Runs `work` in one transaction on `connection`: committed whole, or rolled back and rethrown. */
async function inTransaction<T>(connection: DuckDBConnection, work: () => Promise<T>): Promise<T> {
  await connection.run('BEGIN TRANSACTION');
  try {
    const result = await work();
    await connection.run('COMMIT');
    return result;
  } catch (error) {
    await connection.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function connect(instance: DuckDBInstance): Promise<DuckDBConnection> {
  const connection = await instance.connect();
  // Buckets (date_trunc) and ISO output depend on the session time zone: analytics speaks UTC.
  await connection.run("SET TimeZone = 'UTC'");
  return connection;
}

/**
 * The requests table is derived from `events`. When their request counts differ (a file from
 * before the table existed, or events written by another tool while the service was down) it
 * is rebuilt; each ingest batch and retention run keeps both in one transaction afterwards.
 */
async function syncRequests(writer: DuckDBConnection, logger: Logger): Promise<void> {
  const reader = await writer.runAndReadAll(
    `SELECT (SELECT count(*) FROM events WHERE ${IS_REQUEST}) AS events,
            (SELECT count(*) FROM requests) AS requests`,
  );
  const [counts] = reader.getRowObjectsJS();
  if (counts.events === counts.requests) return;
  const started = performance.now();
  await inTransaction(writer, async () => {
    await writer.run('DELETE FROM requests');
    await writer.run(REBUILD_REQUESTS_SQL);
  });
  logger.info(
    { requests: Number(counts.events), ms: Math.round(performance.now() - started) },
    'rebuilt the requests table from events',
  );
}
