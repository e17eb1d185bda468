import { isObservable, lastValueFrom } from 'rxjs';
import {
  type Bus,
  BusRemoteError,
  BusTimeoutError,
  BusUnavailableError,
  DEFAULT_BUS_TIMEOUT_MS,
  type Unsubscribe,
} from './bus.js';
import type { EventOf, EventSubject, ReplyOf, RequestOf, RequestSubject } from './subjects.js';

export type InProcessHandler = (data: unknown) => unknown;

/**
 * The standalone mode's stand-in for NATS: the same Nest message handlers, registered by
 * InProcessTransport, called directly. Payloads are cloned so no service can mutate another's
 * objects, which keeps the semantics of a real wire.
 */
export class InProcessBus implements Bus {
  private readonly requestHandlers = new Map<string, InProcessHandler>();
  private readonly eventHandlers = new Map<string, Set<(payload: unknown) => void>>();

  registerRequestHandler(subject: string, handler: InProcessHandler): void {
    this.requestHandlers.set(subject, handler);
  }

  unregisterRequestHandler(subject: string): void {
    this.requestHandlers.delete(subject);
  }

  async send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyOf<S>> {
    const handler = this.requestHandlers.get(subject);
    if (!handler) throw new BusUnavailableError(subject);
    const timeoutMs = options.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
    });
    try {
      const answer = Promise.resolve(handler(structuredClone(payload))).then((value) =>
        isObservable(value) ? lastValueFrom(value) : value,
      );
      return structuredClone((await Promise.race([answer, timeout])) as ReplyOf<S>);
    } catch (error) {
      if (error instanceof BusTimeoutError) throw error;
      // As over NATS: a handler's failure (Nest's `{ status, message }`) is the responder's error.
      throw new BusRemoteError(subject, error instanceof Error ? error.message : error);
    } finally {
      clearTimeout(timer);
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async: a bad payload rejects, as on NATS
  async emit<S extends EventSubject>(subject: S, payload: EventOf<S>): Promise<void> {
    for (const handler of this.eventHandlers.get(subject) ?? []) {
      // Copied now, as a wire serialises at publish time: a caller that changes its object after
      // emit() must not change what subscribers get. Delivered later, like a broadcast.
      const copy = structuredClone(payload);
      queueMicrotask(() => {
        try {
          handler(copy);
        } catch {
          // as on NATS: a failing subscriber must neither reach the emitter nor crash the process
        }
      });
    }
  }

  subscribe<S extends EventSubject>(
    subject: S,
    handler: (payload: EventOf<S>) => void,
  ): Unsubscribe {
    const set = this.eventHandlers.get(subject) ?? new Set();
    const wrapped = handler as (payload: unknown) => void;
    set.add(wrapped);
    this.eventHandlers.set(subject, set);
    return () => set.delete(wrapped);
  }

  isConnected(): boolean {
    return true;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the Bus contract is async
  async close(): Promise<void> {
    this.requestHandlers.clear();
    this.eventHandlers.clear();
  }
}
