import type { EventOf, EventSubject, ReplyOf, RequestOf, RequestSubject } from './subjects.js';

/** Nobody answers the subject (no responders on NATS, or no handler in process). */
export class BusUnavailableError extends Error {
  constructor(subject: string, cause?: unknown) {
    super(`no service answers ${subject}`, { cause });
    this.name = 'BusUnavailableError';
  }
}

/** A responder exists but did not answer within the deadline. */
export class BusTimeoutError extends Error {
  constructor(subject: string, timeoutMs: number) {
    super(`${subject} did not answer within ${timeoutMs}ms`);
    this.name = 'BusTimeoutError';
  }
}

/** The responder answered with an error. */
export class BusRemoteError extends Error {
  constructor(subject: string, detail: unknown) {
    super(`${subject} failed: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    this.name = 'BusRemoteError';
  }
}

export type Unsubscribe = () => void;

/**
 * The one typed way to talk between services, over NATS or in process. Handlers on the other
 * side are the same Nest `@MessagePattern` / `@EventPattern` methods in both modes.
 */
export interface Bus {
  send<S extends RequestSubject>(
    subject: S,
    payload: RequestOf<S>,
    options?: { timeoutMs?: number },
  ): Promise<ReplyOf<S>>;
  emit<S extends EventSubject>(subject: S, payload: EventOf<S>): Promise<void>;
  subscribe<S extends EventSubject>(
    subject: S,
    handler: (payload: EventOf<S>) => void,
  ): Unsubscribe;
  /** False while the transport is disconnected (NATS down); in process it is always true. */
  isConnected(): boolean;
  close(): Promise<void>;
}

export const DEFAULT_BUS_TIMEOUT_MS = 2_000;
