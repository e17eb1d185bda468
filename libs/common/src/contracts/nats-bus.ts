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
import type { NatsNames } from './nats-names.js';
import type { EventOf, EventSubject, ReplyOf, RequestOf, RequestSubject } from './subjects.js';

/**
 * Bus over NATS, speaking the wire format of Nest's NATS transport (`{ pattern, data, id }` in,
 * `{ id, response, err, isDisposed }` out) so the services' `@MessagePattern` handlers answer it.
 * It uses nats.js `request()` directly because only that reports "no responders" at once: an
 * auth service that is down must cost the client a 503 now, not after a timeout.
 *
 * Contract subjects go on the wire as `names.busSubject(subject)`: the deployment's prefix, if
 * it has one, keeps its requests and broadcasts from another deployment's on the same NATS.
 * Errors name the wire subject, the one an operator can look for on NATS.
 */
export class NatsBus implements Bus {
  private connected = true;

  private constructor(
    readonly connection: NatsConnection,
    readonly names: NatsNames,
  ) {
    void this.watchStatus();
  }

  static async connect(url: string, name: string, names: NatsNames): Promise<NatsBus> {
    const connection = await connect({
      servers: url.split(','),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
    });
    return new NatsBus(connection, names);
  }

  async send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyOf<S>> {
    const wire = this.names.busSubject(subject);
    if (!this.connected || this.connection.isClosed()) throw new BusUnavailableError(wire);
    const timeout = options.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS;
    let reply;
    try {
      reply = await this.connection.request(
        wire,
        JSON.stringify({ pattern: wire, data: payload, id: randomUUID() }),
        { timeout },
      );
    } catch (error) {
      if (error instanceof RequestError && error.isNoResponders()) {
        throw new BusUnavailableError(wire, error);
      }
      if (
        error instanceof TimeoutError ||
        (error instanceof RequestError && error.cause instanceof TimeoutError)
      ) {
        throw new BusTimeoutError(wire, timeout);
      }
      throw new BusUnavailableError(wire, error);
    }
    const packet = reply.json<{ response?: ReplyOf<S>; err?: unknown }>();
    if (packet.err !== undefined && packet.err !== null) {
      throw new BusRemoteError(wire, packet.err);
    }
    return packet.response as ReplyOf<S>;
  }

  async emit<S extends EventSubject>(subject: S, payload: EventOf<S>): Promise<void> {
    // Like send(): with NATS away the caller learns it at once, as a bus error, not as a raw
    // nats.js error after a reconnect attempt.
    const wire = this.names.busSubject(subject);
    if (!this.isConnected()) throw new BusUnavailableError(wire);
    try {
      this.connection.publish(wire, JSON.stringify({ pattern: wire, data: payload }));
      await this.connection.flush();
    } catch (error) {
      throw new BusUnavailableError(wire, error);
    }
  }

  subscribe<S extends EventSubject>(
    subject: S,
    handler: (payload: EventOf<S>) => void,
  ): Unsubscribe {
    const subscription = this.connection.subscribe(this.names.busSubject(subject), {
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
