import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/**
 * A real MCP server (official SDK, Streamable HTTP) that records what reaches it: the headers
 * of every HTTP request, the tools called, and cancellations. Used to prove what the gateway
 * forwards and what it never does.
 */
export class RecordingBackend {
  readonly headers: IncomingHttpHeaders[] = [];
  readonly toolCalls: string[] = [];
  readonly cancelled: string[] = [];
  /** GET streams opened (server-to-client notifications are dropped until one is open). */
  gets = 0;
  private server?: Server;
  private readonly transports = new Map<string, StreamableHTTPServerTransport>();
  url = '';

  private createMcpServer(): McpServer {
    const server = new McpServer({ name: 'recording-backend', version: '1.0.0' });
    server.registerTool('echo', { inputSchema: { message: z.string() } }, ({ message }) => {
      this.toolCalls.push('echo');
      return { content: [{ type: 'text', text: message }] };
    });
    server.registerTool('secret_delete', { inputSchema: {} }, () => {
      this.toolCalls.push('secret_delete');
      return { content: [{ type: 'text', text: 'deleted' }] };
    });
    server.registerTool('fail', { inputSchema: {} }, () => {
      this.toolCalls.push('fail');
      return { isError: true, content: [{ type: 'text', text: 'it failed' }] };
    });
    server.registerTool('add_tools', { inputSchema: {} }, () => {
      // Registering tools after connect makes the SDK send notifications/tools/list_changed.
      this.toolCalls.push('add_tools');
      server.registerTool(`secret_new_${this.toolCalls.length}`, { inputSchema: {} }, () => ({
        content: [],
      }));
      server.registerTool(`visible_new_${this.toolCalls.length}`, { inputSchema: {} }, () => ({
        content: [],
      }));
      return { content: [{ type: 'text', text: 'added' }] };
    });
    server.registerTool('wait', { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
      this.toolCalls.push('wait');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          this.cancelled.push(String(extra.requestId));
          resolve();
        });
      });
      return { content: [{ type: 'text', text: `waited ${ms}` }] };
    });
    return server;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.headers.push(req.headers);
      if (req.method === 'GET') this.gets++;
      if (req.url === '/modern') {
        this.modern(req, res);
        return;
      }
      if (req.url === '/stateless') {
        // Stateless mode: a fresh server per request, no session, no initialize needed.
        const stateless = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
        });
        void this.createMcpServer()
          .connect(stateless)
          .then(() => stateless.handleRequest(req, res));
        return;
      }
      const sessionId = req.headers['mcp-session-id'];
      let transport = typeof sessionId === 'string' ? this.transports.get(sessionId) : undefined;
      if (!transport) {
        if (sessionId !== undefined) {
          res.writeHead(404).end();
          return;
        }
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => `backend-${randomUUID()}`,
          onsessioninitialized: (id) => void this.transports.set(id, transport!),
          onsessionclosed: (id) => void this.transports.delete(id),
        });
        void this.createMcpServer().connect(transport);
      }
      void transport.handleRequest(req, res);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
    return this;
  }

  /** The URL of `/modern`: a backend that offers 2026-07-28 (it answers `server/discover`). */
  get modernUrl(): string {
    return this.url.replace(/\/mcp$/, '/modern');
  }

  /**
   * `/modern`: `server/discover` answered as a 2026-07-28 server answers it, every other request
   * by a fresh stateless server (which reads no envelope): the gateway treats it as modern and
   * relays 2026-07-28 requests to it as they are.
   */
  private modern(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: { id?: unknown; method?: unknown } | undefined;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        body = undefined;
      }
      if (body?.method === 'server/discover') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: body.id,
            result: { supportedVersions: ['2026-07-28'], capabilities: { tools: {} } },
          }),
        );
        return;
      }
      const stateless = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      void this.createMcpServer()
        .connect(stateless)
        .then(() => stateless.handleRequest(req, res, body));
    });
  }

  async stop(): Promise<void> {
    for (const transport of this.transports.values())
      await transport.close().catch(() => undefined);
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
