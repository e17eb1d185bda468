import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type GatewayConfig, GatewayError } from '#common';
import { originAllowed } from '../pipeline/origin.js';

/**
 * CORS for browser MCP clients (`server.cors`, SPEC §3/§4 v2), decided once per request in the
 * router, before any other work: a preflight is answered here (it carries no credential, so it is
 * never an authentication attempt, a rate-limited request or an event), and an actual request
 * from an allowed origin gets its headers on `res` before dispatch, so every answer carries them
 * (streams, relayed backend answers, and errors from the one error writer: a browser cannot read
 * a 401 or a 429 without them).
 */

const METHODS = 'GET, POST, DELETE, OPTIONS';

/** What an MCP client sends besides simple headers. */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'x-api-key',
  'x-request-id',
  'mcp-method',
  'mcp-name',
];
const ALLOWED = new Set(ALLOWED_HEADERS);
/** Requested headers allowed besides the fixed ones, echoed only when asked for. */
const EXTRA = /^(?:mcp-param-[!#$%&'*+.^_`|~0-9a-z-]+|traceparent|tracestate)$/;

/** What a script may read of an answer: the session, auth challenges, limits, ids. */
const EXPOSED =
  'Mcp-Session-Id, WWW-Authenticate, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-Id, Mcp-Protocol-Version';

/** Browsers cache a preflight at most this long (Chromium's cap is 2 h). */
const MAX_AGE_S = '7200';

/** `/mcp/{ns}`, `/mcp/{ns}/sse`, `/mcp/{ns}/messages` and the `/.well-known/` metadata. */
const CORS_PATH = /^\/mcp\/[^/]+(?:\/sse|\/messages)?$|^\/\.well-known\//;

/**
 * Applies CORS to the request at `path` when the config enables it; true when it answered the
 * request (a preflight). A disallowed origin's preflight throws 403 `forbidden_origin` for the
 * router's error writer; a disallowed origin's actual request gets no CORS headers here and is
 * refused by admission.
 */
export function applyCors(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  server: GatewayConfig['server'],
): boolean {
  if (!server.cors || !CORS_PATH.test(path)) return false;
  // The answer depends on Origin: shared caches must not hand one origin's answer to another.
  res.setHeader('Vary', 'Origin');
  const origin = req.headers.origin;
  const allowed = origin !== undefined && originAllowed(origin, server.allowed_origins);
  if (req.method !== 'OPTIONS') {
    if (allowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', EXPOSED);
    }
    return false;
  }
  req.resume();
  if (origin === undefined) {
    // Not a preflight (browsers always send Origin): which methods the route takes.
    res.writeHead(204, { Allow: METHODS }).end();
    return true;
  }
  if (!allowed) throw new GatewayError(ErrorCode.ForbiddenOrigin, 'Origin not allowed');
  res
    .writeHead(204, {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Methods': METHODS,
      'Access-Control-Allow-Headers': allowedHeaders(req.headers['access-control-request-headers']),
      'Access-Control-Max-Age': MAX_AGE_S,
    })
    .end();
  return true;
}

/** The fixed list, plus the requested headers the EXTRA patterns allow (`Mcp-Param-*`, tracing). */
function allowedHeaders(requested: string | undefined): string {
  if (!requested) return ALLOWED_HEADERS.join(', ');
  const extra = new Set<string>();
  for (const raw of requested.split(',')) {
    const name = raw.trim().toLowerCase();
    if (!ALLOWED.has(name) && EXTRA.test(name)) extra.add(name);
  }
  return [...ALLOWED_HEADERS, ...extra].join(', ');
}
