import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
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
  return new LegacySseBackend(
    new SSEClientTransport(new URL(upstream.url), { fetch: withHeaders }),
  );
}

/**
 * A legacy HTTP+SSE backend's session lives and dies with its stream: every answer comes on it,
 * and a stream opened again is a new session the backend knows nothing of. The SDK's transport
 * reconnects its EventSource for ever and never closes; here the stream's first error once
 * started (it dropped or ended: the backend died or restarted) closes the transport, so its holder
 * fails what waits and ends the session at once.
 */
class LegacySseBackend implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  private started = false;

  constructor(private readonly sse: SSEClientTransport) {
    sse.onmessage = (message) => this.onmessage?.(message);
    sse.onclose = () => this.onclose?.();
    sse.onerror = (error) => {
      this.onerror?.(error);
      if (this.started && error instanceof SseError) void sse.close();
    };
  }

  async start(): Promise<void> {
    await this.sse.start();
    this.started = true;
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.sse.send(message);
  }

  setProtocolVersion(version: string): void {
    this.sse.setProtocolVersion(version);
  }

  close(): Promise<void> {
    return this.sse.close();
  }
}
