import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HOSTILE_TOOLS, hostileAnswers } from './hostile-mcp.mjs';

export { HOSTILE_TOOLS };

type Message = Record<string, unknown>;

/**
 * Wire-level hostile backends on port 0 (see hostile-mcp.mjs for what they answer), recording
 * every JSON-RPC message that reaches them:
 *
 * - Streamable HTTP at `/json` (JSON answers), `/sse` (SSE answers) and `/sse-bom` (SSE answers
 *   whose stream starts with a byte-order mark); a GET with `Last-Event-ID` replays a tools/list
 *   answer, as a resumable server does;
 * - legacy HTTP+SSE at `/legacy/sse` (stream) and `/legacy/message` (POSTs), `/legacy-bom/sse`
 *   for a stream that starts with a byte-order mark;
 * - answers that test how the gateway reads a backend's media type and status: `/json-cased`
 *   (`Application/JSON`), `/sse-cased` (`Text/Event-Stream; charset=utf-7`), `/text` (a JSON-RPC
 *   answer as `text/plain`), `/status-400` (a JSON-RPC answer with status 400), `/refuses` (401
 *   with a `WWW-Authenticate` naming an internal metadata address);
 * - `/flood`: every request is answered by an SSE stream of 80 notifications of 200 KB each
 *   before its result, written as fast as the socket takes them (a client that reads slowly
 *   pauses it many times).
 */
export class HostileBackends {
  readonly received: Message[] = [];
  /** The headers of every HTTP request that reached a backend. */
  readonly headers: IncomingMessage['headers'][] = [];
  private server?: Server;
  private readonly legacyStreams = new Map<string, ServerResponse>();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this;
  }

  /** tools/call names that reached the backend. */
  get toolCalls(): string[] {
    return this.received
      .filter((m) => m.method === 'tools/call')
      .map((m) => String((m.params as { name?: unknown } | undefined)?.name));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.headers.push(req.headers);
    const path = (req.url ?? '').split('?')[0];
    if (path.endsWith('/sse') && path.startsWith('/legacy') && req.method === 'GET') {
      this.openLegacy(res, path.startsWith('/legacy-bom'));
      return;
    }
    if (req.method === 'GET') {
      this.replay(req, res);
      return;
    }
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return;
    }
    const body = JSON.parse(await text(req)) as Message | Message[];
    const messages = Array.isArray(body) ? body : [body];
    this.received.push(...messages);
    const answers = messages.map((m) => hostileAnswers(m));
    if (answers.includes(null)) return; // never answered: the request hangs until stop()
    const flat = answers.flat() as Message[];
    if (path === '/legacy/message') {
      const stream = this.legacyStreams.get(
        new URL(req.url!, this.url).searchParams.get('sessionId')!,
      );
      for (const answer of flat)
        stream?.write(`event: message\ndata: ${JSON.stringify(answer)}\n\n`);
      res.writeHead(202).end('Accepted');
      return;
    }
    if (path === '/flood') {
      void flood(res, flat);
      return;
    }
    this.answer(res, path, flat, Array.isArray(body));
  }

  private answer(res: ServerResponse, path: string, answers: Message[], batch: boolean): void {
    const headers = { 'mcp-session-id': 'hostile-session' };
    if (answers.length === 0) {
      res.writeHead(202, headers).end();
      return;
    }
    const odd = ODD_ANSWERS[path];
    if (odd) {
      const [status, type, extra] = odd;
      res.writeHead(status, { ...headers, 'content-type': type, ...extra });
      const last = JSON.stringify(batch ? answers : answers[answers.length - 1]);
      res.end(type.toLowerCase().startsWith('text/event-stream') ? `data: ${last}\n\n` : last);
      return;
    }
    if (path === '/json') {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' });
      res.end(JSON.stringify(batch ? answers : answers[answers.length - 1]));
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream' });
    if (path === '/sse-bom') res.write('\uFEFF');
    for (const answer of answers) res.write(`data: ${JSON.stringify(answer)}\n\n`);
    res.end();
  }

  /** A GET with Last-Event-ID: the backend replays what it sent before, a tools/list answer. */
  private replay(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (req.headers['last-event-id'] !== undefined) {
      const replayed = { jsonrpc: '2.0', id: 7, result: { tools: HOSTILE_TOOLS } };
      res.write(`id: 8\ndata: ${JSON.stringify(replayed)}\n\n`);
    }
    res.end();
  }

  private openLegacy(res: ServerResponse, bom: boolean): void {
    const id = `legacy-${this.legacyStreams.size + 1}`;
    this.legacyStreams.set(id, res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`${bom ? '\uFEFF' : ''}event: endpoint\ndata: /legacy/message?sessionId=${id}\n\n`);
    res.on('close', () => this.legacyStreams.delete(id));
  }

  async stop(): Promise<void> {
    for (const stream of this.legacyStreams.values()) stream.end();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const ODD_ANSWERS: Record<string, [number, string, Record<string, string>?]> = {
  '/json-cased': [200, 'Application/JSON'],
  '/sse-cased': [200, 'Text/Event-Stream; charset=utf-7'],
  '/text': [200, 'text/plain'],
  '/status-400': [400, 'application/json'],
  '/refuses': [
    401,
    'application/json',
    { 'www-authenticate': 'Bearer resource_metadata="http://10.9.9.9/.well-known/oauth"' },
  ],
};

async function flood(res: ServerResponse, answers: Message[]): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'hostile-session' });
  const notification = JSON.stringify({
    jsonrpc: '2.0',
    method: 'notifications/message',
    params: { level: 'info', data: 'x'.repeat(200_000) },
  });
  for (let i = 0; i < 80 && !res.destroyed; i++) {
    if (!res.write(`data: ${notification}\n\n`)) {
      await new Promise((resolve) => res.once('drain', resolve));
    }
  }
  for (const answer of answers) res.write(`data: ${JSON.stringify(answer)}\n\n`);
  res.end();
}

function text(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
