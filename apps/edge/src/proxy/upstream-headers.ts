import type { IncomingHttpHeaders } from 'node:http';

// Client headers a backend needs (SPEC §4 item 1). Everything else — credentials, Host,
// Origin, cookies, hop-by-hop headers — stays at the gateway.
const FORWARDED = new Set([
  'accept',
  'content-type',
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
