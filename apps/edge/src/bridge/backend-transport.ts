import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { HttpUpstreamConfig } from '#common';
import { StreamableHttpBackend } from './http-backend.js';

/**
 * The backend side of a bridged session on an HTTP backend: a legacy HTTP+SSE server through the
 * MCP SDK's client transport, or a Streamable HTTP server (when the client speaks legacy SSE, or
 * for a virtual server's member) through the lean StreamableHttpBackend. Only the configured
 * upstream headers are sent, never the client's. (A stdio backend is a `StdioChild`, see
 * stdio-child.ts.)
 */
export function createBackendTransport(upstream: HttpUpstreamConfig): Transport {
  if (upstream.transport !== 'sse') return new StreamableHttpBackend(upstream);
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
  return new SSEClientTransport(new URL(upstream.url), { fetch: withHeaders });
}
