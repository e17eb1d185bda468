import {
  type Bus,
  BusRemoteError,
  BusTimeoutError,
  BusUnavailableError,
  type EventOf,
  type EventSubject,
  type PinRecord,
  pinKey,
  type PinStore,
  PinStoreUnavailableError,
  type ReplyOf,
  type RequestOf,
  type RequestSubject,
  type StoredPin,
  type Unsubscribe,
} from '#common';
import { type PortLink, RemoteError } from './port-link.js';

// The analytics thread's view of what the main thread owns in standalone mode: the in-process
// bus (the auth service answers there) and the pin store (the edge writes it). Each has a
// serving half, on the main thread, and a client half, in the analytics thread.

/** Main thread: answers the analytics thread's bus requests, relays its events both ways. */
export function serveBus(link: PortLink, bus: Bus): () => void {
  const subscriptions = new Map<string, Unsubscribe>();
  link.handle('bus.send', (payload) => {
    const { subject, body, timeoutMs } = payload as {
      subject: RequestSubject;
      body: RequestOf<RequestSubject>;
      timeoutMs?: number;
    };
    return bus.send(subject, body, { timeoutMs });
  });
  link.handle('bus.emit', (payload) => {
    const { subject, body } = payload as { subject: EventSubject; body: EventOf<EventSubject> };
    return bus.emit(subject, body);
  });
  link.handle('bus.subscribe', (payload) => {
    const subject = payload as EventSubject;
    if (!subscriptions.has(subject)) {
      subscriptions.set(
        subject,
        bus.subscribe(subject, (body) => link.notify('bus.event', { subject, body })),
      );
    }
  });
  return () => {
    for (const unsubscribe of subscriptions.values()) unsubscribe();
    subscriptions.clear();
  };
}

/** Analytics thread: the Bus, over the link to the main thread's in-process bus. */
export class LinkedBus implements Bus {
  private readonly handlers = new Map<string, Set<(payload: unknown) => void>>();

  constructor(private readonly link: PortLink) {
    link.handle('bus.event', (payload) => {
      const { subject, body } = payload as { subject: string; body: unknown };
      for (const handler of this.handlers.get(subject) ?? []) {
        try {
          handler(body);
        } catch {
          // as on NATS: a failing subscriber never reaches the emitter
        }
      }
    });
  }

  async send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyOf<S>> {
    try {
      return (await this.link.request('bus.send', {
        subject,
        body: payload,
        timeoutMs: options.timeoutMs,
      })) as ReplyOf<S>;
    } catch (error) {
      throw busError(subject, error, options.timeoutMs);
    }
  }

  async emit<S extends EventSubject>(subject: S, payload: EventOf<S>): Promise<void> {
    await this.link.request('bus.emit', { subject, body: payload });
  }

  subscribe<S extends EventSubject>(
    subject: S,
    handler: (payload: EventOf<S>) => void,
  ): Unsubscribe {
    let set = this.handlers.get(subject);
    if (!set) {
      set = new Set();
      this.handlers.set(subject, set);
      this.link.notify('bus.subscribe', subject);
    }
    const wrapped = handler as (payload: unknown) => void;
    set.add(wrapped);
    return () => set.delete(wrapped);
  }

  isConnected(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.handlers.clear();
    return Promise.resolve();
  }
}

/** The bus error the main thread's bus threw, as the same class on this side. */
function busError(subject: string, error: unknown, timeoutMs = 2_000): Error {
  if (!(error instanceof RemoteError)) return new BusUnavailableError(subject, error);
  if (error.remoteName === 'BusTimeoutError') return new BusTimeoutError(subject, timeoutMs);
  if (error.remoteName === 'BusUnavailableError') return new BusUnavailableError(subject);
  return new BusRemoteError(subject, error.message.replace(`${subject} failed: `, ''));
}

/** Main thread: the pin store's state to the analytics thread on every change, and its writes. */
export async function servePins(link: PortLink, store: PinStore): Promise<void> {
  link.handle('pins.put', (payload) => {
    const { record, revision } = payload as { record: PinRecord; revision: number | undefined };
    return store.put(record, revision);
  });
  link.handle('pins.list', () => store.list());
  await store.watch(() => link.notify('pins.changed', store.list()));
}

/** Analytics thread: the pin store, as the main thread's last snapshot of it. */
export class LinkedPinStore implements PinStore {
  private pins = new Map<string, StoredPin>();
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly link: PortLink) {
    link.handle('pins.changed', (payload) => this.replace(payload as StoredPin[]));
  }

  async watch(onChange: () => void): Promise<void> {
    this.listeners.push(onChange);
    this.replace((await this.link.request('pins.list')) as StoredPin[]);
  }

  get(namespace: string, tool: string): StoredPin | undefined {
    return this.pins.get(pinKey(namespace, tool));
  }

  list(): StoredPin[] {
    return [...this.pins.values()];
  }

  async put(record: PinRecord, revision: number | undefined): Promise<boolean> {
    try {
      return (await this.link.request('pins.put', { record, revision })) as boolean;
    } catch (error) {
      throw new PinStoreUnavailableError('the pin store is unavailable', { cause: error });
    }
  }

  async close(): Promise<void> {
    return Promise.resolve();
  }

  private replace(pins: StoredPin[]): void {
    this.pins = new Map(pins.map((pin) => [pinKey(pin.record.namespace, pin.record.tool), pin]));
    for (const listener of this.listeners) listener();
  }
}
