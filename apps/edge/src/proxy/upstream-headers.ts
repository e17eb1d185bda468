import type { IncomingHttpHeaders } from 'node:http';

// Client headers a backend needs (SPEC §4 item 1). Everything else — credentials, Host,
// Origin, cookies, hop-by-hop headers, the client's Content-Type parameters — stays at the
// gateway: a body always goes as `application/json` (UTF-8), what the gateway parsed it as.
const FORWARDED = new Set([
  'accept',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'user-agent',
  'x-request-id',
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

// Backend response headers relayed to the client; mcp-session-id is rewritten separately.
const RELAYED = [
  'content-type',
  'mcp-protocol-version',
  'cache-control',
  'allow',
  'www-authenticate',
];

export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of RELAYED) {
    const value = upstream[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}
