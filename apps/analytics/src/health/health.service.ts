import type { EventIngest } from '../ingest/event-ingest.js';
import type { IngestStats } from '../ingest/batch-writer.js';
import type { EventStore } from '../storage/event-store.js';

export interface Readiness {
  status: 'ok' | 'unavailable';
  checks: { duckdb: string; events: string };
  ingest: IngestStats;
}

const PING_TIMEOUT_MS = 2_000;

/** Ready when the DuckDB file answers and the event source can deliver (NATS connected). */
export class HealthService {
  constructor(
    private readonly store: EventStore,
    private readonly ingest: EventIngest,
    private readonly stats: IngestStats,
  ) {}

  async readiness(): Promise<Readiness> {
    const duckdb = await this.pingStore();
    const events = this.ingest.problem() ?? 'ok';
    return {
      status: duckdb === 'ok' && events === 'ok' ? 'ok' : 'unavailable',
      checks: { duckdb, events },
      ingest: { ...this.stats },
    };
  }

  private async pingStore(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${PING_TIMEOUT_MS} ms`), PING_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.store.ping().then(() => 'ok'), timeout]);
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      clearTimeout(timer);
    }
  }
}
