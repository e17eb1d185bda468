import { type OriginPattern, originMatches, parseOriginPattern, parseRequestOrigin } from '#common';

/** With `allowed_origins` unset: local pages on any port. */
const LOCAL: OriginPattern[] = ['localhost', '127.0.0.1', '[::1]'].flatMap((host) =>
  ['http:', 'https:'].map((scheme) => ({ any: false, scheme, host, subdomains: false, port: '*' })),
);

/** Compiled once per config: the config's `allowed_origins` array is new with each reload. */
const compiled = new WeakMap<string[], OriginPattern[]>();

function patternsOf(allowed: string[] | undefined): OriginPattern[] {
  if (!allowed) return LOCAL;
  let patterns = compiled.get(allowed);
  if (!patterns) {
    // The schema refused any entry that is no pattern; one that slipped past grants nothing.
    patterns = allowed.flatMap((text) => parseOriginPattern(text) ?? []);
    compiled.set(allowed, patterns);
  }
  return patterns;
}

/**
 * DNS-rebinding defence (SPEC §4 item 9) and the CORS allow-list. A request without Origin passes
 * (non-browser clients); with `allowed_origins` unset only local origins on any port pass. Entries
 * are patterns (config/origin-pattern.ts in libs/common): an exact origin (scheme and host
 * compared case-insensitively, a default port the same as none), `*`, a `*` port, or a `*` first
 * host label matching any subdomain of the rest.
 */
export function originAllowed(origin: string | undefined, allowed: string[] | undefined): boolean {
  if (origin === undefined) return true;
  const patterns = patternsOf(allowed);
  if (patterns.some((pattern) => pattern.any)) return true;
  const parsed = parseRequestOrigin(origin);
  return parsed !== undefined && patterns.some((pattern) => originMatches(pattern, parsed));
}
