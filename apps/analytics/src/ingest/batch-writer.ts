import type { Logger } from 'pino';
import type { EventStore } from '../storage/event-store.js';
import { type DecodedEvent, decodeEventMessage } from './event-decoder.js';

export interface WriteResult {
  /** Rows added; the rest of the batch was already stored (redelivery) or rejected. */
  inserted: number;
  /** Events DuckDB refused on their own while the rest of the batch went in. */
  rejected: DecodedEvent[];
}

export interface IngestStats {
  batches: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  rejected: number;
  failedBatches: number;
  lastBatchAt: string | null;
  lastError: string | null;
}

/**
 * Writes decoded batches to the store. A failing batch is split in halves to isolate what
 * DuckDB refuses (validation makes that unlikely, this keeps one bad event from blocking the
 * stream forever). When every single event fails alone the fault is the database, not the
 * data: the error is thrown and the caller retries the whole batch later.
 */
export class BatchWriter {
  readonly stats: IngestStats = {
    batches: 0,
    inserted: 0,
    duplicates: 0,
    invalid: 0,
    rejected: 0,
    failedBatches: 0,
    lastBatchAt: null,
    lastError: null,
  };

  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
  ) {}

  /** Counts an event dropped before the writer (not JSON, not an event). */
  countInvalid(): void {
    this.stats.invalid++;
  }

  /**
   * Writes message bodies as received. DuckDB alone parses them when the whole batch is well
   * formed (the common case, see EventStore.insertDocuments); otherwise each is validated here,
   * the invalid ones are counted and logged (`describe` names one for the log), and the rest are
   * written as checked.
   */
  async writeDocuments(
    docs: readonly string[],
    describe: (index: number) => Record<string, unknown> = () => ({}),
  ): Promise<WriteResult> {
    if (docs.length === 0) return { inserted: 0, rejected: [] };
    const started = performance.now();
    let inserted: number | null;
    try {
      inserted = await this.store.insertDocuments(docs);
    } catch (error) {
      // The database failed; the checked path below retries once and reports what persists.
      this.logger.warn({ err: error }, 'storing a batch as received failed; validating it');
      inserted = null;
    }
    if (inserted !== null) {
      const result = { inserted, rejected: [] };
      this.account(docs.length, result, started);
      return result;
    }
    const events: DecodedEvent[] = [];
    const invalid: Array<{ index: number; reason: string }> = [];
    for (const [index, doc] of docs.entries()) {
      const decoded = decodeEventMessage(doc);
      if (decoded.ok) events.push(decoded.event);
      else invalid.push({ index, reason: decoded.reason });
    }
    const result = await this.write(events);
    // Counted once the batch is stored: a batch that fails is retried whole, invalid ones too.
    for (const { index, reason } of invalid) {
      // Not an event at all: dropped with its batch (redelivery cannot fix it).
      this.countInvalid();
      this.logger.warn({ ...describe(index), reason }, 'invalid event dropped');
    }
    return result;
  }

  /** Writes validated events. */
  async write(events: DecodedEvent[]): Promise<WriteResult> {
    if (events.length === 0) return { inserted: 0, rejected: [] };
    const started = performance.now();
    let result: WriteResult;
    try {
      result = { inserted: await this.store.insertBatch(events), rejected: [] };
    } catch (error) {
      result = await this.isolate(events, error);
    }
    this.account(events.length, result, started);
    return result;
  }

  private account(events: number, result: WriteResult, started: number): void {
    this.stats.batches++;
    this.stats.inserted += result.inserted;
    this.stats.rejected += result.rejected.length;
    this.stats.duplicates += events - result.inserted - result.rejected.length;
    this.stats.lastBatchAt = new Date().toISOString();
    this.stats.lastError = null;
    this.logger.debug(
      { events, inserted: result.inserted, ms: Math.round(performance.now() - started) },
      'batch stored',
    );
  }

  private async isolate(events: DecodedEvent[], firstError: unknown): Promise<WriteResult> {
    const result: WriteResult = { inserted: 0, rejected: [] };
    const failures: unknown[] = [];
    const attempt = async (part: DecodedEvent[]): Promise<void> => {
      try {
        result.inserted += await this.store.insertBatch(part);
      } catch (error) {
        if (part.length === 1) {
          result.rejected.push(part[0]);
          failures.push(error);
          return;
        }
        const half = Math.ceil(part.length / 2);
        await attempt(part.slice(0, half));
        await attempt(part.slice(half));
      }
    };
    if (events.length > 1) {
      const half = Math.ceil(events.length / 2);
      await attempt(events.slice(0, half));
      await attempt(events.slice(half));
    } else {
      result.rejected.push(events[0]);
    }
    if (result.rejected.length === events.length) {
      this.stats.failedBatches++;
      this.stats.lastError = errorMessage(firstError);
      throw firstError;
    }
    for (const [i, event] of result.rejected.entries()) {
      this.logger.error(
        { eventId: event.id, err: failures[i] },
        'event refused by the database; dropped',
      );
    }
    return result;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
