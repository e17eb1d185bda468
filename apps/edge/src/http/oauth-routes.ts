import type { IncomingMessage, ServerResponse } from 'node:http';
import { type GatewayConfig, NAMESPACE_NAME } from '#common';
import { KEY_HELP, METADATA_PATH, requiredScopes } from '../auth/challenge.js';
import { resourceUrl } from '../auth/token-verifier.js';

/**
 * Where an MCP client looks when it is refused (SPEC §4 v2):
 *
 * - with `auth.oauth`, `GET /.well-known/oauth-protected-resource{base}/mcp/{name}` is the route's
 *   RFC 9728 protected-resource metadata: its resource URL (the `aud` its tokens must carry) and
 *   the issuers that grant them. `{base}` is the path of `server.public_url` (RFC 9728 §3.1 puts
 *   the well-known segment before it); the same answer is given without it, for a proxy that
 *   strips that path as it does from `/mcp` requests (see metadataRoute). It answers for any
 *   well-formed name, configured or not, so this
 *   unauthenticated route tells nobody which namespaces exist (a token for a name that does not
 *   exist is refused by the route itself, after authentication, as any request is);
 * - without it, every OAuth discovery and registration endpoint a client tries
 *   (`/.well-known/oauth-*`, `/.well-known/openid-configuration`, `/register`, `/authorize`,
 *   `/token`) answers 404 with an RFC 6749 error body saying how to send a key, which SDK clients
 *   show as the reason instead of "registration failed (HTTP 404)".
 *
 * Returns false for any other path. These answers carry no credential and are never counted as
 * failed key attempts or recorded as events.
 */
export function serveOAuthRoutes(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  config: GatewayConfig,
): boolean {
  const oauth = config.auth.oauth;
  const publicUrl = config.server.public_url;
  if (oauth && publicUrl) {
    if (!path.startsWith(`${METADATA_PATH}/`) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      return false;
    }
    const name = metadataRoute(path.slice(METADATA_PATH.length), publicUrl);
    if (name === undefined) return false;
    const scopes = requiredScopes(config);
    send(res, 200, {
      resource: resourceUrl(publicUrl, name),
      authorization_servers: [...new Set(oauth.issuers.map((issuer) => issuer.issuer))],
      ...(scopes && { scopes_supported: scopes.split(' ') }),
      bearer_methods_supported: ['header'],
      resource_name: `MCP Gateway: ${name}`,
    });
    return true;
  }
  if (!OAUTH_PROBES.test(path)) return false;
  send(res, 404, {
    error: 'invalid_request',
    error_description: `This gateway does not use OAuth. ${KEY_HELP}.`,
  });
  return true;
}

/**
 * The route whose metadata `rest` (the path after the well-known segment) asks for. A client asks
 * at `{origin}/.well-known/oauth-protected-resource{base}/mcp/{name}`, which sits outside `{base}`
 * on the host: a proxy that serves the gateway under `{base}` routes it to the edge either as it
 * is or, as it does with `{base}/mcp/…`, with `{base}` stripped. Both mean the same route.
 */
function metadataRoute(rest: string, publicUrl: string): string | undefined {
  const base = new URL(publicUrl).pathname.replace(/\/$/, '');
  for (const prefix of [`${base}/mcp/`, '/mcp/']) {
    if (!rest.startsWith(prefix)) continue;
    const name = rest.slice(prefix.length);
    if (NAMESPACE_NAME.test(name)) return name;
  }
  return undefined;
}

const OAUTH_PROBES =
  /^\/(?:\.well-known\/(?:oauth-[a-z-]+|openid-configuration)(?:\/.*)?|register|authorize|token)$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': status === 200 ? 'public, max-age=300' : 'no-store',
  });
  res.end(text);
}
