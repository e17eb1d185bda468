/**
 * An http(s) URL in the one form the gateway compares: scheme and host in lower case (IDN as
 * punycode), the scheme's default port dropped, dot segments resolved, and no final `/`
 * (`https://GW.Example:443/` is `https://gw.example`). Clients normalise a server's URL before
 * they ask an IdP for a token with it as the audience (RFC 8707 `resource`), so the gateway's
 * resource URLs and the `aud` it accepts are compared in this form, never as written. Anything
 * else (another scheme, a string that is not a URL) is returned as it is.
 */
export function canonicalUrl(text: string): string {
  if (!/^https?:/i.test(text) || !URL.canParse(text)) return text;
  return new URL(text).href.replace(/\/+$/, '');
}
