import { ErrorCode, type GatewayConfig, GatewayError } from '#common';
import { resourceUrl, TokenRefused } from './token-verifier.js';

/** The RFC 9728 well-known path segment of protected-resource metadata. */
export const METADATA_PATH = '/.well-known/oauth-protected-resource';

/** What a client without a usable credential is told, in the body and in WWW-Authenticate. */
export const KEY_HELP =
  'Missing or invalid API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"';
const OAUTH_HELP =
  'Missing or invalid credential: send an OAuth access token or an API key as "Authorization: Bearer <token>"';

/**
 * The protected-resource metadata URL of a route (RFC 9728 §3.1): the well-known segment goes
 * between the host and the resource URL's path, so `https://h/base` as `public_url` gives
 * `https://h/.well-known/oauth-protected-resource/base/mcp/{name}`.
 */
export function resourceMetadataUrl(publicUrl: string, name: string): string {
  const resource = new URL(resourceUrl(publicUrl, name));
  return `${resource.origin}${METADATA_PATH}${resource.pathname}`;
}

/**
 * The challenge of a refused credential on the route `name` (SPEC §4 v2), the one place its
 * WWW-Authenticate is written:
 *
 * - with `auth.oauth`: `resource_metadata` (RFC 9728) and the required `scope`, so an MCP client
 *   runs the authorization flow; `error="invalid_token"` when a token was refused;
 *   `error="insufficient_scope"` with the scope on a 403;
 * - without it: no metadata (there is no flow to run), and `error_description` and the body say
 *   how to send a key, so a client shows that instead of an OAuth failure.
 */
export function challenged(error: unknown, config: GatewayConfig, name: string): unknown {
  if (!(error instanceof GatewayError)) return error;
  const oauth = config.auth.oauth;
  const publicUrl = config.server.public_url;
  if (error.code === ErrorCode.Unauthorized) {
    if (!oauth || !publicUrl) {
      return new GatewayError(error.code, KEY_HELP, {
        ...error.headers,
        'WWW-Authenticate': `Bearer realm="mcp-gateway", error_description="${KEY_HELP.replaceAll('"', "'")}"`,
      });
    }
    const parts = [`resource_metadata="${resourceMetadataUrl(publicUrl, name)}"`];
    const scopes = requiredScopes(config);
    if (scopes) parts.push(`scope="${scopes}"`);
    if (error instanceof TokenRefused) {
      parts.push('error="invalid_token"', `error_description="${quotable(error.message)}"`);
    }
    const message = error instanceof TokenRefused ? error.message : OAUTH_HELP;
    return new GatewayError(error.code, message, {
      ...error.headers,
      'WWW-Authenticate': `Bearer ${parts.join(', ')}`,
    });
  }
  if (error.code === ErrorCode.InsufficientScope && publicUrl) {
    return new GatewayError(error.code, error.message, {
      ...error.headers,
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${requiredScopes(config)}", resource_metadata="${resourceMetadataUrl(publicUrl, name)}", error_description="${quotable(error.message)}"`,
    });
  }
  return error;
}

/** Every scope some issuer requires, space-separated (what a client should ask for). */
export function requiredScopes(config: GatewayConfig): string {
  const scopes = new Set<string>();
  for (const issuer of config.auth.oauth?.issuers ?? []) {
    for (const scope of issuer.required_scopes) scopes.add(scope);
  }
  return [...scopes].join(' ');
}

function quotable(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '');
}
