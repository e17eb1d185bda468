import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** The part of Express used here (the project carries no Express types). */
interface ExpressApp {
  post(
    path: string,
    handler: (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => void,
  ): void;
  listen(port: number, host: string, callback: () => void): Server;
}

/**
 * A stateless MCP server built the way the SDK's docs build one: `createMcpExpressApp` (Express,
 * body-parser, which honours the request's declared charset), tools `echo` and `get-env`.
 * Records the tools it ran, so a test can prove a hidden one never ran.
 */
export class ExpressBackend {
  readonly ran: string[] = [];
  private server?: Server;
  url = '';

  async start(): Promise<this> {
    const app = createMcpExpressApp() as unknown as ExpressApp;
    app.post('/mcp', (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
      const mcp = new McpServer({ name: 'express-backend', version: '1.0.0' });
      for (const name of ['echo', 'get-env']) {
        mcp.registerTool(name, { inputSchema: {} }, () => {
          this.ran.push(name);
          return { content: [{ type: 'text', text: `ran ${name}` }] };
        });
      }
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.on('close', () => void transport.close());
      void mcp.connect(transport).then(() => transport.handleRequest(req, res, req.body));
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.server!.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
