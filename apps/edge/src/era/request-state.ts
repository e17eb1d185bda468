import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

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

const IV_BYTES = 12;
const TAG_BYTES = 16;
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
    this.key = Buffer.from(hkdfSync('sha256', secret, 'mcp-gateway', 'request-state-key', 32));
  }

  seal(state: RequestState): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(state)), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The state of a sound, unexpired seal of ours; undefined for anything else. */
  open(text: unknown, now = Date.now()): RequestState | undefined {
    if (typeof text !== 'string' || text.length > MAX_STATE || !/^[A-Za-z0-9_-]+$/.test(text))
      return undefined;
    const raw = Buffer.from(text, 'base64url');
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]);
      const state = JSON.parse(plain.toString('utf8')) as RequestState;
      return typeof state.x === 'number' && state.x > now ? state : undefined;
    } catch {
      return undefined;
    }
  }
}
