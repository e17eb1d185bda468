/**
 * An `allowed_origins` entry (SPEC §3, v2), parsed once: `*` alone, or an origin whose port may be
 * `*` (`http://localhost:*`: any port, none included) and whose first host label may be `*`
 * (`https://*.example.com`: any subdomain of example.com, at any depth, never example.com itself).
 * Scheme and host are kept normalised (lower case, IDN as punycode) and a scheme's default port as
 * none, so matching is plain string comparison. Plain data: the config that holds it stays JSON.
 */
export type OriginPattern =
  | { any: true }
  | {
      any: false;
      /** `http:` or `https:` */
      scheme: string;
      /** The hostname, or with `subdomains` the name whose subdomains match. */
      host: string;
      subdomains: boolean;
      /** `*` for any port; `''` for the scheme's default port. */
      port: string;
    };

/** scheme :// [*.] host [: port | : *] [/] — nothing else (no path, query, user or fragment). */
const SHAPE =
  /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\*\.)?(\[[0-9A-Fa-f:.]+\]|[^/:?#@*[\]\\\s]+)(?::(\*|\d{1,5}))?\/?$/;
const DNS_NAME = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export const ORIGIN_PATTERN_HELP =
  'use an origin like https://app.example, "*", a "*" port (http://localhost:*) or a "*" first host label (https://*.example.com)';

/** The pattern `text` describes, or undefined when it is not one. */
export function parseOriginPattern(text: string): OriginPattern | undefined {
  if (text === '*') return { any: true };
  const shape = SHAPE.exec(text);
  if (!shape) return undefined;
  const [, rawScheme, wildcard, rawHost, rawPort] = shape;
  const scheme = `${rawScheme.toLowerCase()}:`;
  if (scheme !== 'http:' && scheme !== 'https:') return undefined;
  const port = rawPort === undefined || rawPort === '*' ? '' : rawPort;
  let url: URL;
  try {
    url = new URL(`${scheme}//${rawHost}${port === '' ? '' : `:${port}`}`);
  } catch {
    return undefined;
  }
  const host = url.hostname;
  const subdomains = wildcard !== undefined;
  const isIp = host.startsWith('[') || IPV4.test(host);
  if (!isIp && !DNS_NAME.test(host)) return undefined;
  // A `*` label in front of an address names nothing.
  if (subdomains && isIp) return undefined;
  return { any: false, scheme, host, subdomains, port: rawPort === '*' ? '*' : url.port };
}

/**
 * The origin a browser sent, normalised as patterns are (a trailing `/`, which no browser sends,
 * is tolerated as before); undefined when it is no http(s) origin (`null`, a path, credentials):
 * such an Origin matches only `*`.
 */
export function parseRequestOrigin(
  origin: string,
): { scheme: string; host: string; port: string } | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash)
    return undefined;
  return { scheme: url.protocol, host: url.hostname, port: url.port };
}

/** Whether a normalised request origin matches `pattern`. */
export function originMatches(
  pattern: OriginPattern,
  origin: { scheme: string; host: string; port: string },
): boolean {
  if (pattern.any) return true;
  if (origin.scheme !== pattern.scheme) return false;
  if (pattern.port !== '*' && origin.port !== pattern.port) return false;
  if (!pattern.subdomains) return origin.host === pattern.host;
  // One or more whole labels in front of the name: `a.example.com`, `a.b.example.com`; never
  // `example.com`, `evilexample.com` or `example.com.evil.com`.
  const host = origin.host;
  const suffix = `.${pattern.host}`;
  if (host.length <= suffix.length || !host.endsWith(suffix)) return false;
  const labels = host.slice(0, -suffix.length);
  return !labels.startsWith('.') && !labels.endsWith('.') && !labels.includes('..');
}
