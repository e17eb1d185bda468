import type { Logger } from 'pino';
import type { EventStore } from '../storage/event-store.js';
import type { DecodedEvent } from './event-decoder.js';

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

  async write(events: DecodedEvent[]): Promise<WriteResult> {
    if (events.length === 0) return { inserted: 0, rejected: [] };
    const started = performance.now();
    let result: WriteResult;
    try {
      result = { inserted: await this.store.insertBatch(events), rejected: [] };
    } catch (error) {
      result = await this.isolate(events, error);
    }
    const ms = performance.now() - started;
    this.stats.batches++;
    this.stats.inserted += result.inserted;
    this.stats.rejected += result.rejected.length;
    this.stats.duplicates += events.length - result.inserted - result.rejected.length;
    this.stats.lastBatchAt = new Date().toISOString();
    this.stats.lastError = null;
    this.logger.debug(
      { events: events.length, inserted: result.inserted, ms: Math.round(ms) },
      'batch stored',
    );
    return result;
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
