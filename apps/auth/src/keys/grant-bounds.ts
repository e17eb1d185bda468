import {
  type AdminGrant,
  type GatewayConfig,
  parseDuration,
  type RateLimitSpec,
  type ToolRules,
} from '#common';
import type { NewKey } from './new-key.js';

/** A new key a tenant admin may create: what it asked for, with what it inherits filled in. */
export interface BoundedKey {
  key: NewKey;
  /** The admin's own tool scopes: the new key is bounded by them besides its own `tools`. */
  inheritedTools: ToolRules[];
}

/**
 * A tenant admin creates keys within what it may do itself (SPEC §5 v2: a tenant admin manages
 * its tenant's keys, not more access than it has), so an admin key never mints a stronger one:
 *
 * - `roles`: only roles the admin holds (and so what they grant: namespaces, tools, admin);
 * - `namespaces`: only namespaces the admin may use; `*` only when the admin has `*`;
 * - tools: the admin's own tool scopes (its key's and its roles') are inherited, on top of any
 *   `tools` the request names, so the new key sees at most the tools the admin sees;
 * - `rate_limit`: no more requests per window and no higher rate than the admin's own limit
 *   (its key's, else `rate_limits.default`); absent, the admin's own key limit is inherited;
 * - `expires_at`: not after the admin's own key expires; absent, the admin's expiry is inherited.
 *
 * Every excess is answered at once, each with the field it is about. A global admin (no tenant)
 * is not bounded: it is the operator.
 */
export function boundByGrant(
  key: NewKey,
  grant: AdminGrant | undefined,
  config: Pick<GatewayConfig, 'rate_limits'>,
): { ok: true; bounded: BoundedKey } | { ok: false; message: string } {
  if (!grant) {
    return {
      ok: false,
      message:
        'the admin’s own permissions did not come with the request: update the analytics service',
    };
  }
  const problems: string[] = [];
  key.roles.forEach((role, i) => {
    if (!grant.roles.includes(role)) {
      problems.push(`roles.${i}: "${role}" is not a role this admin holds`);
    }
  });
  if (!grant.namespaces.includes('*')) {
    key.namespaces.forEach((ns, i) => {
      if (ns === '*') {
        problems.push(`namespaces.${i}: "*" needs an admin that may use every namespace`);
      } else if (!grant.namespaces.includes(ns)) {
        problems.push(`namespaces.${i}: "${ns}" is not a namespace this admin may use`);
      }
    });
  }
  const own = grant.rateLimit;
  const fallback = config.rate_limits.default;
  const cap = own ?? { requests: fallback.requests, perMs: fallback.per };
  let rateLimit = key.rate_limit;
  if (rateLimit) {
    const asked = { requests: rateLimit.requests, perMs: parseDuration(rateLimit.per)! };
    if (exceeds(asked, cap)) {
      problems.push(
        `rate_limit: ${asked.requests} per ${rateLimit.per} is more than this admin’s own ` +
          `${cap.requests} per ${durationText(cap.perMs)}`,
      );
    }
  } else if (own) {
    rateLimit = { requests: own.requests, per: durationText(own.perMs) };
  }
  let expiresAt = key.expires_at;
  if (grant.expiresAt !== null) {
    const until = new Date(grant.expiresAt).toISOString();
    if (expiresAt === undefined) expiresAt = until;
    else if (Date.parse(expiresAt) > grant.expiresAt) {
      problems.push(`expires_at: after this admin’s own key expires (${until})`);
    }
  }
  if (problems.length > 0) {
    return {
      ok: false,
      message: `a key may not have more access than the admin creating it: ${problems.join('; ')}`,
    };
  }
  return {
    ok: true,
    bounded: {
      key: { ...key, rate_limit: rateLimit, expires_at: expiresAt },
      inheritedTools: grant.tools.map((rules) => ({
        allow: [...rules.allow],
        deny: [...rules.deny],
      })),
    },
  };
}

/** More requests in a window, or a higher rate, than `cap` allows. */
function exceeds(asked: RateLimitSpec, cap: RateLimitSpec): boolean {
  return asked.requests > cap.requests || asked.requests * cap.perMs > cap.requests * asked.perMs;
}

const UNITS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
];

/** A duration in the config's notation (60000 → `1m`), in the largest unit that is exact. */
export function durationText(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
