import { createHash, createHmac } from 'node:crypto';
import { deriveKey, IV_BYTES, seal, unseal } from './sealing.js';

/** What a gateway session id carries; the client sees it sealed, never the backend's own id. */
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
  /** bridged because the backend speaks only 2026-07-28 (on a route otherwise relayed as is) */
  m?: 1;
  /** expiry, in seconds since the epoch (set by `encode` when absent) */
  x?: number;
}

/** How long a session id is good for; a client whose id expired gets 404 and starts anew. */
export const SESSION_TTL_S = 7 * 24 * 3600;
const MAX_TOKEN = 4096;
/** How many opened ids an edge remembers (oldest forgotten first): ~2 MiB at most. */
const OPENED_CACHE = 4096;

/**
 * Seals session claims with GATEWAY_SESSION_SECRET (AES-256-GCM under a key derived with HKDF),
 * so any edge replica sharing the secret can serve any request of the session, a session id
 * presented with another key or namespace is recognised as foreign (SPEC §4 item 4), and nobody
 * else can read what it carries (an edge's address, the backend's session id). The IV is derived
 * from the claims (an HMAC under a second derived key), so the same session always gets the same
 * id. Only the canonical encoding is accepted: a twin of an id (padding, other trailing bits)
 * is garbage, not the same session.
 */
export class SessionCodec {
  private readonly key: Buffer;
  private readonly ivKey: Buffer;
  /**
   * Ids opened lately, by their exact text: a client sends its id with every request, and
   * opening it (a decipher per request) was 7% of a stdio call's CPU in the edge. A hit is the
   * very string that opened before, so it carries the same claims; expiry is checked each time.
   */
  private readonly opened = new Map<string, SessionClaims>();

  constructor(secret: string) {
    this.key = deriveKey(secret, 'session-claims-key');
    this.ivKey = deriveKey(secret, 'session-claims-iv');
  }

  encode(claims: SessionClaims): string {
    const sealed: SessionClaims = { ...claims, x: claims.x ?? nowSeconds() + SESSION_TTL_S };
    const plain = Buffer.from(JSON.stringify(sealed));
    const iv = createHmac('sha256', this.ivKey).update(plain).digest().subarray(0, IV_BYTES);
    return seal(this.key, iv, plain);
  }

  /** Returns the claims of a sound, unexpired id of ours, or undefined for anything else. */
  decode(token: string | undefined): SessionClaims | undefined {
    if (token === undefined) return undefined;
    const known = this.opened.get(token);
    if (known) return known.x! > nowSeconds() ? known : undefined;
    const claims = this.open(token);
    if (claims) {
      if (this.opened.size >= OPENED_CACHE) this.opened.delete(this.opened.keys().next().value!);
      this.opened.set(token, Object.freeze(claims));
    }
    return claims;
  }

  private open(token: string): SessionClaims | undefined {
    const plain = unseal(this.key, token, MAX_TOKEN);
    if (!plain) return undefined;
    let claims: SessionClaims;
    try {
      claims = JSON.parse(plain.toString('utf8')) as SessionClaims;
    } catch {
      return undefined;
    }
    const sound =
      typeof claims.k === 'string' &&
      typeof claims.n === 'string' &&
      typeof claims.b === 'string' &&
      typeof claims.x === 'number' &&
      claims.x > nowSeconds();
    return sound ? claims : undefined;
  }
}

/**
 * What identifies a session whatever id it was presented with: ended sessions are remembered by
 * it, so no other encoding of an ended session's id can bring it back.
 */
export function sessionIdentity(claims: SessionClaims): string {
  let identity = identities.get(claims);
  if (identity === undefined) {
    identity = createHash('sha256')
      .update(`${claims.k}\n${claims.n}\n${claims.t}\n${claims.b}`)
      .digest('base64url');
    if (Object.isFrozen(claims)) identities.set(claims, identity);
  }
  return identity;
}
const identities = new WeakMap<SessionClaims, string>();

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
