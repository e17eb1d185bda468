import type { VerifyKeyReply } from '#common';

interface Entry {
  reply: VerifyKeyReply;
  expiresAt: number;
}

/**
 * Verify answers by key digest, positive and negative alike, for a short time: the dashboard
 * polls several endpoints a second and each must not cost a NATS round trip. Bounded: the
 * least recently used entry goes first, so a flood of random keys cannot grow it.
 */
export class VerifyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(digest: string): VerifyKeyReply | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    this.entries.delete(digest);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(digest, entry);
    return entry.reply;
  }

  set(digest: string, reply: VerifyKeyReply): void {
    this.entries.delete(digest);
    this.entries.set(digest, { reply, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
