/** A source of events feeding the BatchWriter: JetStream (distributed) or in process (standalone). */
export interface EventIngest {
  start(): Promise<void>;
  /** Stops taking events, finishes and commits the batch in hand. Idempotent. */
  stop(): Promise<void>;
  /** Why the source cannot deliver right now (for /readyz), or null when it can. */
  problem(): string | null;
}
