import { type Bus, EDGE_SESSION_CLOSED } from '#common';

const TTL_MS = 24 * 3600_000;
const MAX_ENTRIES = 200_000;

/**
 * Session ids that clients ended with DELETE, so a replayed id gets 404 on every edge even where
 * the backend would answer otherwise (server-everything answers 400 for an ended session).
 * Edges tell each other over the bus; entries expire after a day, bounded in number.
 */
export class ClosedSessions {
  private readonly closed = new Map<string, number>();

  constructor(private readonly bus: Bus) {
    bus.subscribe(EDGE_SESSION_CLOSED, (event) => this.remember(event.sessionMac));
  }

  has(token: string): boolean {
    const mac = macOf(token);
    const at = this.closed.get(mac);
    if (at === undefined) return false;
    if (Date.now() - at > TTL_MS) {
      this.closed.delete(mac);
      return false;
    }
    return true;
  }

  close(token: string): void {
    const mac = macOf(token);
    this.remember(mac);
    void this.bus.emit(EDGE_SESSION_CLOSED, { sessionMac: mac }).catch(() => undefined);
  }

  private remember(mac: string): void {
    if (this.closed.size >= MAX_ENTRIES) {
      const oldest = this.closed.keys().next().value;
      if (oldest !== undefined) this.closed.delete(oldest);
    }
    this.closed.set(mac, Date.now());
  }
}

function macOf(token: string): string {
  return token.slice(token.lastIndexOf('.') + 1);
}
