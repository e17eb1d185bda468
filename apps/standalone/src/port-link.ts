import type { MessagePort, Worker } from 'node:worker_threads';

/** A worker's `parentPort`, or the Worker seen from the main thread. */
export type PortLike = Pick<MessagePort | Worker, 'postMessage' | 'on' | 'off'>;

/** What crosses the port: a request (`id`), a notification (no `id`) or a reply (`re`). */
type Envelope =
  | { kind: string; id?: number; payload?: unknown }
  | { re: number; ok: true; value: unknown }
  | { re: number; ok: false; error: { name: string; message: string } };

/** A handler's failure as it crossed the port: its class name and message. */
export class RemoteError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
  ) {
    super(message);
    this.name = remoteName;
  }
}

/** The far side went away (the worker exited, or the link was closed) before it answered. */
export class LinkClosedError extends Error {
  constructor() {
    super('the other thread is gone');
    this.name = 'LinkClosedError';
  }
}

/**
 * Requests and notifications between the standalone process's threads over one port. Payloads
 * are structured clones (the port copies them), so neither side shares an object with the
 * other, as on a wire. A request whose handler throws rejects with a RemoteError that keeps the
 * error's class name, so callers can tell a bus timeout from an unavailable store.
 */
export class PortLink {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private readonly handlers = new Map<string, (payload: unknown) => unknown>();
  private closed = false;
  private readonly listener = (message: Envelope) => void this.receive(message);

  constructor(private readonly port: PortLike) {
    port.on('message', this.listener);
  }

  handle(kind: string, handler: (payload: unknown) => unknown): void {
    this.handlers.set(kind, handler);
  }

  request(kind: string, payload?: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new LinkClosedError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.port.postMessage({ kind, id, payload } satisfies Envelope);
    });
  }

  notify(kind: string, payload?: unknown): void {
    if (!this.closed) this.port.postMessage({ kind, payload } satisfies Envelope);
  }

  /** Fails every request still waiting (the far side is gone) and stops listening. */
  close(): void {
    this.closed = true;
    this.port.off('message', this.listener);
    for (const { reject } of this.waiting.values()) reject(new LinkClosedError());
    this.waiting.clear();
  }

  private async receive(message: Envelope): Promise<void> {
    if ('re' in message) {
      const waiting = this.waiting.get(message.re);
      this.waiting.delete(message.re);
      if (!waiting) return;
      if (message.ok) waiting.resolve(message.value);
      else waiting.reject(new RemoteError(message.error.name, message.error.message));
      return;
    }
    const handler = this.handlers.get(message.kind);
    let reply: Envelope;
    try {
      if (!handler) throw new Error(`nothing handles ${message.kind} on this thread`);
      reply = { re: message.id ?? 0, ok: true, value: await handler(message.payload) };
    } catch (error) {
      const { name, message: text } =
        error instanceof Error ? error : { name: 'Error', message: String(error) };
      reply = { re: message.id ?? 0, ok: false, error: { name, message: text } };
    }
    if (message.id !== undefined && !this.closed) this.port.postMessage(reply);
  }
}
