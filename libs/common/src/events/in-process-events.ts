import type { McpEvent } from './mcp-event.js';

export type EventBatchHandler = (batch: McpEvent[]) => Promise<void>;

/**
 * Standalone mode's stand-in for the MCP_EVENTS stream: the edge publishes, the analytics
 * service consumes in batches. Bounded: past `capacity` pending events new ones are dropped
 * and counted, exactly like the edge's buffer while NATS is away.
 */
export class InProcessEventChannel {
  private queue: McpEvent[] = [];
  private handler?: EventBatchHandler;
  private draining = false;
  private idle: Array<() => void> = [];
  dropped = 0;

  constructor(
    private readonly capacity = 100_000,
    private readonly batchSize = 1_000,
  ) {}

  publish(event: McpEvent): boolean {
    if (this.queue.length >= this.capacity) {
      this.dropped++;
      return false;
    }
    this.queue.push(event);
    this.schedule();
    return true;
  }

  get depth(): number {
    return this.queue.length;
  }

  consume(handler: EventBatchHandler): void {
    this.handler = handler;
    this.schedule();
  }

  /** Resolves once every event published so far has been handed to the consumer. */
  async flush(): Promise<void> {
    if (this.queue.length === 0 && !this.draining) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.draining || !this.handler || this.queue.length === 0) return;
    this.draining = true;
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    while (this.handler && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      try {
        await this.handler(batch);
      } catch {
        // The consumer failed: put the batch back and retry shortly, losing nothing.
        this.queue.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    this.draining = false;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
