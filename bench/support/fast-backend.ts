import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The "minimal fast backend" of SPEC §10, run as its own process so it never shares an event
 * loop with the load generator: a Streamable HTTP MCP server reduced to what the bench sends.
 * POST answers every request with a ~1 KiB JSON result (`initialize` also issues a session
 * id, `tools/list` lists ten tools), notifications get 202, GET opens an SSE stream that stays open and idle, DELETE is 200.
 *
 *   node dist/bench/support/fast-backend.js [count]   → listens on `count` loopback ports and
 *   prints `BENCH_BACKEND {"ports":[...]}` once all are listening.
 */
const TEXT = 'x'.repeat(960);
const SESSION = 'bench-backend-session';
/** What `tools/list` answers: ten small definitions (the virtual-server row merges three lists). */
const TOOLS = Array.from({ length: 10 }, (_, i) => ({
  name: `tool_${i}`,
  description: `Bench tool number ${i}: does nothing but answer`,
  inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
}));
let openStreams = 0;

function answer(
  res: ServerResponse,
  id: unknown,
  result: unknown,
  headers: Record<string, string> = {},
): void {
  const body = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(result)}}`;
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function onPost(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let message: { id?: unknown; method?: unknown };
    try {
      message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof message;
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (message.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (message.method === 'initialize') {
      answer(
        res,
        message.id,
        {
          protocolVersion: '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: { name: 'bench-backend', version: '1.0.0' },
        },
        { 'mcp-session-id': SESSION },
      );
      return;
    }
    if (message.method === 'tools/list') {
      answer(res, message.id, { tools: TOOLS });
      return;
    }
    answer(res, message.id, { content: [{ type: 'text', text: TEXT }], isError: false });
  });
}

function onGet(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  openStreams++;
  req.socket.setKeepAlive(true);
  res.once('close', () => openStreams--);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/streams') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ openStreams }));
    return;
  }
  switch (req.method) {
    case 'POST':
      onPost(req, res);
      return;
    case 'GET':
      onGet(req, res);
      return;
    case 'DELETE':
      res.writeHead(200).end();
      return;
    default:
      res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
  }
}

async function listen(): Promise<number> {
  const server = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, handle);
  server.headersTimeout = 60_000;
  server.maxHeadersCount = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const count = Math.max(1, Number(process.argv[2] ?? 1));
const ports: number[] = [];
for (let i = 0; i < count; i++) ports.push(await listen());
process.stdout.write(`BENCH_BACKEND ${JSON.stringify({ ports })}\n`);
process.on('SIGTERM', () => process.exit(0));
