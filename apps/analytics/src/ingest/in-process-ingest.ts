import type { InProcessEventChannel, McpEvent } from '#common';
import type { Logger } from 'pino';
import type { BatchWriter } from './batch-writer.js';
import { type DecodedEvent, decodeEventObject } from './event-decoder.js';
import type { EventIngest } from './event-ingest.js';

/** How long stop() lets the channel hand over what the edge already published. */
const DRAIN_TIMEOUT_MS = 5_000;

/**
 * Standalone mode's consumer of the in-process event channel. A rejected handler promise makes
 * the channel retry the batch, so a failing write loses nothing while the process lives.
 */
export class InProcessIngest implements EventIngest {
  private stopped = false;
  private current?: Promise<unknown>;

  constructor(
    private readonly channel: InProcessEventChannel,
    private readonly writer: BatchWriter,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    this.channel.consume((batch) => this.handle(batch));
    this.logger.info('consuming events in process');
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
      });
      await Promise.race([this.channel.flush(), timeout]);
      clearTimeout(timer);
      this.stopped = true;
    }
    await this.current?.catch(() => undefined);
  }

  problem(): string | null {
    return null;
  }

  private handle(batch: McpEvent[]): Promise<void> {
    if (this.stopped) {
      // The channel has no way to unsubscribe: park its drain loop for good instead of failing,
      // which would make it retry forever. The process is shutting down.
      return new Promise<void>(() => undefined);
    }
    const events: DecodedEvent[] = [];
    for (const item of batch) {
      const decoded = decodeEventObject(item);
      if (decoded.ok) {
        events.push(decoded.event);
      } else {
        this.writer.countInvalid();
        this.logger.warn({ reason: decoded.reason }, 'invalid event dropped');
      }
    }
    const write = this.writer.write(events).then(() => undefined);
    this.current = write;
    return write;
  }
}
