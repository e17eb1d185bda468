import type { ConfigStore } from '#common';
import type { Logger } from 'pino';
import type { EventStore } from './event-store.js';

const DAY_MS = 86_400_000;

/**
 * Deletes events older than `analytics.retention_days`, at start and then periodically. The
 * setting is read at every run, so a config reload applies without restart.
 */
export class RetentionJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly store: EventStore,
    private readonly config: ConfigStore,
    private readonly logger: Logger,
    private readonly intervalMs = 3_600_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Prunes once now, then every intervalMs in the background. */
  async start(): Promise<void> {
    await this.runOnce();
    this.timer = setInterval(() => {
      this.runOnce().catch((error: unknown) =>
        this.logger.error({ err: error }, 'retention run failed'),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Deletes what is past retention; returns how many events went. */
  runOnce(): Promise<number> {
    this.running ??= this.prune().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async prune(): Promise<number> {
    const days = this.config.current.analytics.retention_days;
    const cutoff = new Date(this.now() - days * DAY_MS);
    const deleted = await this.store.deleteOlderThan(cutoff);
    if (deleted > 0)
      this.logger.info(
        { deleted, cutoff: cutoff.toISOString(), retentionDays: days },
        'retention: old events deleted',
      );
    return deleted;
  }
}
