import { hash } from 'node:crypto';
import type { Principal } from '#common';

/**
 * A fingerprint of an API key (from the SHA-256 the edge already has): not the digest itself,
 * which the auth service's store holds, and only ever sealed into what the gateway hands out.
 */
export function credentialOf(keySha256: string): string {
  return hash('sha256', `mcp-gateway credential\n${keySha256}`, 'base64url').slice(0, 22);
}

/**
 * What a session, a bridged request state, a pool of backend connections and a forwarding mark
 * are bound to: the principal's id and, for an API key, the very key that proved it. A key id
 * names a key, not a secret: a revoked key's id issued again (even in another tenant), or a file
 * key whose secret was changed under the same id, is another credential and takes over nothing
 * the old one opened. An OAuth principal is its issuer and subject (`oauth:{issuer}#{sub}`),
 * whichever token proves it; its id cannot read as a key's (a key id holds no `:` or `[`).
 */
export function principalRef(principal: Principal): string {
  return principal.credential === undefined
    ? principal.keyId
    : JSON.stringify([principal.keyId, principal.credential]);
}
