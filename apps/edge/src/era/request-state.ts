import { randomBytes } from 'node:crypto';
import { deriveKey, IV_BYTES, seal, unseal } from '../sessions/sealing.js';

/** What the gateway's `requestState` of a bridged multi round-trip request carries. */
export interface RequestState {
  /** The key (principal) the request was made with: only it may answer. */
  k: string;
  /** The backend connection, and the gateway's id of the waiting request on it. */
  c: string;
  o: string;
  /** The edge holding that connection, and how other edges reach it. */
  e: string;
  u?: string;
  /** Expiry, in ms since the epoch. */
  x: number;
}

const MAX_STATE = 2048;

/**
 * Seals the `requestState` the gateway hands a 2026-07-28 client when a 2025-era backend asks it
 * for input (AES-256-GCM under a key derived from GATEWAY_SESSION_SECRET): the client echoes it
 * back with its answers, and nothing in it can be read or changed by the client. Opening checks
 * the seal and the expiry; the caller checks it is the same principal's.
 */
export class RequestStates {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = deriveKey(secret, 'request-state-key');
  }

  seal(state: RequestState): string {
    return seal(this.key, randomBytes(IV_BYTES), Buffer.from(JSON.stringify(state)));
  }

  /** The state of a sound, unexpired seal of ours; undefined for anything else. */
  open(text: unknown, now = Date.now()): RequestState | undefined {
    const plain = unseal(this.key, text, MAX_STATE);
    if (!plain) return undefined;
    try {
      const state = JSON.parse(plain.toString('utf8')) as RequestState;
      return typeof state.x === 'number' && state.x > now ? state : undefined;
    } catch {
      return undefined;
    }
  }
}
