import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMember } from './member-mcp.mjs';

/**
 * A virtual-server member (member-mcp.mjs) over HTTP on port 0: Streamable HTTP with sessions
 * at `/mcp`, legacy HTTP+SSE at `/sse` (posts to `/messages`). A server per session; records
 * every tool it ran. `down()` refuses every connection until `up()`.
 */
export class MemberBackend {
  readonly ran: string[] = [];
  /** Every JSON-RPC message POSTed to its Streamable HTTP endpoint, as it arrived. */
  readonly received: unknown[] = [];
  private server?: Server;
  private readonly streamable = new Map<string, StreamableHTTPServerTransport>();
  private readonly legacy = new Map<string, SSEServerTransport>();
  private refusing = false;
  url = '';

  constructor(
    private readonly name: string,
    private readonly options: { pageSize?: number; tools?: number } = {},
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      if (this.refusing) {
        req.socket.destroy();
        return;
      }
      void this.handle(req, res).catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this;
  }

  /** Streamable HTTP sessions open (DELETE ends one). */
  get sessions(): number {
    return this.streamable.size;
  }

  /** Ends every session and refuses connections (a member that went down). */
  down(): void {
    this.refusing = true;
    this.server?.closeAllConnections();
    this.streamable.clear();
    this.legacy.clear();
  }

  up(): void {
    this.refusing = false;
  }

  private member() {
    return createMember({
      name: this.name,
      ...this.options,
      onRun: (tool) => this.ran.push(tool),
    });
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse) {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/sse' && req.method === 'GET') {
      const transport = new SSEServerTransport('/messages', res);
      this.legacy.set(transport.sessionId, transport);
      res.on('close', () => this.legacy.delete(transport.sessionId));
      await this.member().connect(transport);
      return;
    }
    if (path === '/messages' && req.method === 'POST') {
      const id = new URL(req.url!, 'http://x').searchParams.get('sessionId') ?? '';
      const transport = this.legacy.get(id);
      if (!transport) return void res.writeHead(404).end();
      await transport.handlePostMessage(req, res);
      return;
    }
    if (path !== '/mcp') return void res.writeHead(404).end();
    const session = req.headers['mcp-session-id'];
    let transport = typeof session === 'string' ? this.streamable.get(session) : undefined;
    if (!transport) {
      if (session !== undefined) return void res.writeHead(404).end();
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id: string): void => {
          this.streamable.set(id, created);
        },
      });
      created.onclose = () => {
        if (created.sessionId) this.streamable.delete(created.sessionId);
      };
      transport = created;
      await this.member().connect(created);
    }
    if (req.method !== 'POST') return void (await transport.handleRequest(req, res));
    // Read here to record what arrived (the transport takes the parsed body).
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    for (const message of Array.isArray(body) ? body : [body]) this.received.push(message);
    await transport.handleRequest(req, res, body);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
