import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { HttpUpstreamConfig } from '#common';

/**
 * The backend side of a bridged session on an HTTP backend, built with the MCP SDK's client
 * transports: a legacy HTTP+SSE server, or a Streamable HTTP server (when the client speaks
 * legacy SSE). Only the configured upstream headers are sent, never the client's. (A stdio
 * backend is a `StdioChild`, see stdio-child.ts.)
 */
export function createBackendTransport(upstream: HttpUpstreamConfig): Transport {
  // The configured headers are set in one place, the fetch every request of the transport goes
  // through, replacing any of the same name: set also in `requestInit`, the SDK would send them
  // twice on some requests (`Authorization: Bearer X, Bearer X`), and a backend that checks its
  // token would refuse them.
  const configured = upstream.headers;
  const withHeaders: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    for (const [name, value] of Object.entries(configured)) headers.set(name, value);
    return fetch(input, { ...init, headers });
  };
  const url = new URL(upstream.url);
  return upstream.transport === 'sse'
    ? new SSEClientTransport(url, { fetch: withHeaders })
    : new StreamableHTTPClientTransport(url, { fetch: withHeaders });
}
