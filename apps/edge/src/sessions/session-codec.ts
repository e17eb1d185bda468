import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a gateway session id carries; the client sees it signed, never the backend's own id. */
export interface SessionClaims {
  /** key id the session was created with */
  k: string;
  /** namespace */
  n: string;
  /**
   * h: Streamable HTTP passed through (any edge serves it, `b` is the backend's session id);
   * b: bridged in one edge (stdio child, legacy SSE backend or client; `b` is the bridge's id)
   */
  t: 'h' | 'b';
  b: string;
  /** bridged sessions: the owning edge and how other edges reach it */
  e?: string;
  u?: string;
  /** client name and version from initialize, for analytics on later requests */
  cn?: string;
  cv?: string;
  /** protocol version negotiated at initialize */
  pv?: string;
}

/**
 * Signs session claims with GATEWAY_SESSION_SECRET (HMAC-SHA256), so any edge replica sharing
 * the secret can serve any request of the session, and a session id presented with another key
 * or namespace is recognised as foreign (SPEC §4 item 4).
 */
export class SessionCodec {
  constructor(private readonly secret: string) {}

  encode(claims: SessionClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  /** Returns the claims of a well-signed id, or undefined for anything else. */
  decode(token: string | undefined): SessionClaims | undefined {
    if (!token || token.length > 4096) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = token.slice(0, dot);
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected))
      return undefined;
    try {
      const claims = JSON.parse(
        Buffer.from(payload, 'base64url').toString('utf8'),
      ) as SessionClaims;
      return typeof claims.k === 'string' &&
        typeof claims.n === 'string' &&
        typeof claims.b === 'string'
        ? claims
        : undefined;
    } catch {
      return undefined;
    }
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
