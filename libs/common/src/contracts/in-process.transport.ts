import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import type { InProcessBus } from './in-process-bus.js';

/**
 * A Nest microservice transport that serves the app's `@MessagePattern` / `@EventPattern`
 * handlers on an InProcessBus: standalone mode runs exactly the handlers NATS would reach.
 */
export class InProcessTransport extends Server implements CustomTransportStrategy {
  private readonly registered: string[] = [];
  private readonly unsubscribers: Array<() => void> = [];

  constructor(private readonly bus: InProcessBus) {
    super();
  }

  listen(callback: () => void): void {
    for (const [pattern, handler] of this.getHandlers()) {
      if (handler.isEventHandler) {
        this.unsubscribers.push(
          this.bus.subscribe(pattern as never, (payload) => void handler(payload)),
        );
      } else {
        this.bus.registerRequestHandler(pattern, (data) => handler(data));
        this.registered.push(pattern);
      }
    }
    callback();
  }

  close(): void {
    for (const pattern of this.registered) this.bus.unregisterRequestHandler(pattern);
    for (const unsubscribe of this.unsubscribers) unsubscribe();
  }

  on(): never {
    throw new Error('InProcessTransport has no status events');
  }

  unwrap<T>(): T {
    return this.bus as T;
  }
}
