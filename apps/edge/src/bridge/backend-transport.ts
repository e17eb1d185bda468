import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isStdioUpstream, type NamespaceConfig } from '#common';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

/**
 * The backend side of a bridged session, built with the MCP SDK's client transports: a child
 * process (stdio), a legacy HTTP+SSE server, or a Streamable HTTP server (when the client
 * speaks legacy SSE). Only the configured upstream headers are sent, never the client's.
 */
export function createBackendTransport(
  upstream: NamespaceConfig['upstream'],
  logger: Logger,
): Transport {
  if (isStdioUpstream(upstream)) {
    const child = new StdioClientTransport({
      command: upstream.command,
      args: upstream.args,
      env: { ...getDefaultEnvironment(), ...upstream.env },
      cwd: upstream.cwd,
      stderr: 'pipe',
    });
    const stderr = child.stderr;
    if (stderr) {
      createInterface({ input: stderr as unknown as NodeJS.ReadableStream }).on('line', (line) =>
        logger.info({ stderr: line.slice(0, 4096) }, 'stdio backend stderr'),
      );
    }
    return child;
  }
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
