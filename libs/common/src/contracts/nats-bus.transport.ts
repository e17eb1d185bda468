import { type MessageHandler, type NatsOptions, ServerNats } from '@nestjs/microservices';
import type { NatsNames } from './nats-names.js';
import type { EventSubject, RequestSubject } from './subjects.js';

/**
 * Nest's NATS transport, serving the app's `@MessagePattern` / `@EventPattern` handlers on the
 * wire subjects the NatsBus uses (`names.busSubject`). Handlers keep naming the contract
 * subjects; the deployment's prefix is applied here, once, as they are registered, so Nest
 * subscribes to the prefixed subjects and finds the handler of each message by them.
 */
export class NatsBusTransport extends ServerNats {
  constructor(
    options: Required<NatsOptions>['options'],
    private readonly names: NatsNames,
  ) {
    // Reconnect for ever, as the NatsBus does: the NATS client's default gives up after 10
    // attempts (~20 s), and a service whose handlers' connection gave up stays up and deaf
    // (the edges then answered every key they had not cached 503 auth_unavailable for good).
    super({ maxReconnectAttempts: -1, reconnectTimeWait: 250, ...options });
  }

  override addHandler(
    pattern: unknown,
    callback: MessageHandler,
    isEventHandler?: boolean,
    extras?: Record<string, unknown>,
  ): void {
    // Only a subject of the contracts can be prefixed; anything else would escape the prefix.
    if (typeof pattern !== 'string') {
      throw new Error(
        `a NATS handler's pattern must be a bus subject, not ${JSON.stringify(pattern)}`,
      );
    }
    const subject = this.names.busSubject(pattern as RequestSubject | EventSubject);
    super.addHandler(subject, callback, isEventHandler, extras);
  }
}
