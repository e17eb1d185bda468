import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Message, SharedChild } from './shared-child.js';

/**
 * One session's connection to a shared child: a Transport, so the session treats it as its own
 * backend. Closing it ends the session's part (its requests are cancelled at the child), never
 * the child.
 */
export class SharedLane implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  closed = false;
  /** The session's ids of its requests in flight → the child-side ids they were given. */
  readonly childIds = new Map<string, number>();

  constructor(private readonly shared: SharedChild) {}

  start(): Promise<void> {
    return this.shared.start();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed || !this.shared.running) return Promise.reject(new Error('Not connected'));
    return this.shared.fromLane(this, message);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.shared.leave(this);
    }
    return Promise.resolve();
  }

  /** A message of the child for this session. */
  deliver(message: Message): void {
    if (!this.closed) this.onmessage?.(message as JSONRPCMessage);
  }

  /** The child is gone: the session ends as when its own child exits. */
  ended(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}
