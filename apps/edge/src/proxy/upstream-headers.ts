import type { IncomingHttpHeaders } from 'node:http';

// Client headers a backend needs (SPEC §4 item 1). Everything else — credentials, Host,
// Origin, cookies, hop-by-hop headers, the client's Content-Type parameters — stays at the
// gateway: a body always goes as `application/json` (UTF-8), what the gateway parsed it as.
// The W3C trace context passes on (SPEC §8): as the client sent it when tracing is off, replaced
// by the gateway's own span when it is on (upstream/http-passthrough.ts).
const FORWARDED = new Set([
  'accept',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'user-agent',
  'x-request-id',
  'traceparent',
  'tracestate',
]);

export function upstreamRequestHeaders(
  client: IncomingHttpHeaders,
  configured: Record<string, string>,
  backendSessionId: string | undefined,
  requestId: string,
  withBody: boolean,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in client) {
    const value = client[name];
    if (value === undefined) continue;
    if (FORWARDED.has(name) || name.startsWith('mcp-param-')) {
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  headers['x-request-id'] = requestId;
  if (withBody) headers['content-type'] = 'application/json';
  if (backendSessionId !== undefined) headers['mcp-session-id'] = backendSessionId;
  for (const name in configured) headers[name.toLowerCase()] = configured[name];
  return headers;
}

// Backend response headers relayed to the client; mcp-session-id is rewritten separately and
// content-type is rewritten to its bare media type. Never the backend's WWW-Authenticate: it would
// send the client into an OAuth flow for a credential only the gateway holds (and name an
// internal address); a backend refusing the gateway's credentials is answered as upstream_error.
const RELAYED = ['mcp-protocol-version', 'cache-control', 'allow'];

export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of RELAYED) {
    const value = upstream[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  // The gateway decodes JSON and SSE bodies as UTF-8 whatever the backend declares, so a client
  // must too: a charset parameter (utf-7) could make a client read names the tap never saw.
  const media = mediaTypeOf(upstream['content-type']);
  if (media) headers['content-type'] = media;
  return headers;
}

/**
 * The media type of a Content-Type value, lower-cased and without parameters ('' when absent).
 * Media types are case-insensitive (RFC 9110 §8.3.1): `Text/Event-Stream` is an event stream,
 * and is read (and filtered) as one, as clients read it.
 */
export function mediaTypeOf(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return '';
  const end = text.indexOf(';');
  return (end === -1 ? text : text.slice(0, end)).trim().toLowerCase();
}
