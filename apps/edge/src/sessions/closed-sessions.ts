import { type Bus, EDGE_SESSION_CLOSED } from '#common';
import { type SessionClaims, sessionIdentity } from './session-codec.js';

const TTL_MS = 24 * 3600_000;
const MAX_ENTRIES = 200_000;

/**
 * Sessions that clients ended with DELETE, so a replayed id gets 404 on every edge even where
 * the backend would answer otherwise (server-everything answers 400 for an ended session).
 * Remembered by the session's identity, not by the id's text, so no other encoding of the id
 * revives it. Edges tell each other over the bus (the event's `sessionMac` carries the
 * identity); entries expire after a day, bounded in number.
 */
export class ClosedSessions {
  private readonly closed = new Map<string, number>();

  constructor(private readonly bus: Bus) {
    bus.subscribe(EDGE_SESSION_CLOSED, (event) => this.remember(event.sessionMac));
  }

  has(claims: SessionClaims): boolean {
    const mac = sessionIdentity(claims);
    const at = this.closed.get(mac);
    if (at === undefined) return false;
    if (Date.now() - at > TTL_MS) {
      this.closed.delete(mac);
      return false;
    }
    return true;
  }

  close(claims: SessionClaims): void {
    const mac = sessionIdentity(claims);
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
