import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

/**
 * AES-256-GCM sealing of what the gateway hands clients and reads back (session ids,
 * `requestState`s): `iv ‖ ciphertext ‖ tag`, base64url. Only a sound, canonical encoding of a
 * seal under the key opens: a twin of a token (padding, other trailing bits) is garbage.
 */
export const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A 32-byte key for `info`, derived from the deployment's secret (GATEWAY_SESSION_SECRET). */
export function deriveKey(secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'mcp-gateway', info, 32));
}

export function seal(key: Buffer, iv: Buffer, plain: Buffer): string {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** The plain text of a seal of ours no longer than `maxLength` characters; else undefined. */
export function unseal(key: Buffer, token: unknown, maxLength: number): Buffer | undefined {
  if (typeof token !== 'string' || !token || token.length > maxLength || !BASE64URL.test(token))
    return undefined;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES || raw.toString('base64url') !== token) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    return undefined;
  }
}
