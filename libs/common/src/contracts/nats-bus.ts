import { connect, type NatsConnection, RequestError, TimeoutError } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import {
  type Bus,
  BusRemoteError,
  BusTimeoutError,
  BusUnavailableError,
  DEFAULT_BUS_TIMEOUT_MS,
  type Unsubscribe,
} from './bus.js';
import type { EventOf, EventSubject, ReplyOf, RequestOf, RequestSubject } from './subjects.js';

/**
 * Bus over NATS, speaking the wire format of Nest's NATS transport (`{ pattern, data, id }` in,
 * `{ id, response, err, isDisposed }` out) so the services' `@MessagePattern` handlers answer it.
 * It uses nats.js `request()` directly because only that reports "no responders" at once: an
 * auth service that is down must cost the client a 503 now, not after a timeout.
 */
export class NatsBus implements Bus {
  private connected = true;

  private constructor(readonly connection: NatsConnection) {
    void this.watchStatus();
  }

  static async connect(url: string, name: string): Promise<NatsBus> {
    const connection = await connect({
      servers: url.split(','),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
    });
    return new NatsBus(connection);
  }

  async send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyOf<S>> {
    if (!this.connected || this.connection.isClosed()) throw new BusUnavailableError(subject);
    const timeout = options.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS;
    let reply;
    try {
      reply = await this.connection.request(
        subject,
        JSON.stringify({ pattern: subject, data: payload, id: randomUUID() }),
        { timeout },
      );
    } catch (error) {
      if (error instanceof RequestError && error.isNoResponders()) {
        throw new BusUnavailableError(subject, error);
      }
      if (
        error instanceof TimeoutError ||
        (error instanceof RequestError && error.cause instanceof TimeoutError)
      ) {
        throw new BusTimeoutError(subject, timeout);
      }
      throw new BusUnavailableError(subject, error);
    }
    const packet = reply.json<{ response?: ReplyOf<S>; err?: unknown }>();
    if (packet.err !== undefined && packet.err !== null) {
      throw new BusRemoteError(subject, packet.err);
    }
    return packet.response as ReplyOf<S>;
  }

  async emit<S extends EventSubject>(subject: S, payload: EventOf<S>): Promise<void> {
    // Like send(): with NATS away the caller learns it at once, as a bus error, not as a raw
    // nats.js error after a reconnect attempt.
    if (!this.isConnected()) throw new BusUnavailableError(subject);
    try {
      this.connection.publish(subject, JSON.stringify({ pattern: subject, data: payload }));
      await this.connection.flush();
    } catch (error) {
      throw new BusUnavailableError(subject, error);
    }
  }

  subscribe<S extends EventSubject>(
    subject: S,
    handler: (payload: EventOf<S>) => void,
  ): Unsubscribe {
    const subscription = this.connection.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return;
        try {
          handler(msg.json<{ data: EventOf<S> }>().data);
        } catch {
          // a malformed broadcast must not kill the subscription
        }
      },
    });
    return () => subscription.unsubscribe();
  }

  isConnected(): boolean {
    return this.connected && !this.connection.isClosed();
  }

  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    // drain() rejects when the server is gone; a shutdown must still complete then.
    await this.connection.drain().catch(() => this.connection.close());
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect') this.connected = false;
      else if (status.type === 'reconnect') this.connected = true;
    }
  }
}
