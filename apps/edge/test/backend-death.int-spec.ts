import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import {
  LegacyRawClient,
  type Message,
  postModern,
  sseMessages,
  StreamableRawClient,
} from '../../../test/support/raw-client.js';

// A backend that dies in the middle of a call, behind a session the gateway holds itself
// (SPEC §9 "backend dies mid-stream"): the call is answered 502-style upstream_error at once, not
// after the request timeout, and a backend gone for good ends the session (404 next time).

type Rpc = { jsonrpc: '2.0'; id?: string | number | null; method?: string; params?: Message };

const TOOL = { name: 'work', inputSchema: { type: 'object' } };
const INIT = {
  protocolVersion: '2025-03-26',
  capabilities: { tools: {} },
  serverInfo: { name: 'fake', version: '1' },
};

/** A wire-level backend: `kill()` is the process dying (every socket reset, port closed). */
abstract class FakeBackend {
  url = '';
  protected server?: Server;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () =>
        this.handle(req, res, body === '' ? undefined : (JSON.parse(body) as Rpc)),
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this;
  }

  kill(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse, message?: Rpc): void;
}

/**
 * A 2025 Streamable HTTP backend. `tools/call` answers on an SSE stream: `reset` writes the
 * headers and a progress event, then dies (whole process, or the one connection); otherwise
 * it answers. `initializeDelayMs` holds initialize's answer (a client that pipelines sends on).
 */
class StreamableBackend extends FakeBackend {
  /** POSTs after initialize that came without Mcp-Session-Id. */
  sessionless = 0;
  readonly received: string[] = [];
  constructor(
    private readonly onCall: 'kill' | 'reset' | 'answer',
    private readonly initializeDelayMs = 0,
  ) {
    super();
  }

  protected handle(req: IncomingMessage, res: ServerResponse, message?: Rpc): void {
    const session = req.headers['mcp-session-id'];
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': open\n\n');
      return;
    }
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    if (message?.method === 'server/discover')
      return void res.writeHead(400, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32000, message: 'Bad Request: Server not initialized' },
        }),
      );
    if (message?.method === 'initialize') {
      const answer = () =>
        res
          .writeHead(200, {
            'content-type': 'application/json',
            'mcp-session-id': 'backend-session',
          })
          .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: INIT }));
      if (this.initializeDelayMs > 0) setTimeout(answer, this.initializeDelayMs);
      else answer();
      return;
    }
    if (session === undefined) {
      this.sessionless++;
      return void res.writeHead(400, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32000, message: 'Bad Request: No valid session ID provided' },
        }),
      );
    }
    this.received.push(message?.method ?? '');
    if (message?.id === undefined) return void res.writeHead(202).end();
    const result =
      message.method === 'tools/list'
        ? { tools: [TOOL] }
        : { content: [{ type: 'text', text: 'done' }] };
    if (message.method !== 'tools/call' || this.onCall === 'answer')
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const token = (message.params?._meta as Message | undefined)?.progressToken;
    res.write(
      `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token ?? 0, progress: 1 } })}\n\n`,
      () => (this.onCall === 'kill' ? this.kill() : res.socket?.destroy()),
    );
  }
}

/** A legacy HTTP+SSE backend; a `tools/call` kills it (its stream and port go). */
class LegacySseBackend extends FakeBackend {
  private stream?: ServerResponse;

  protected handle(req: IncomingMessage, res: ServerResponse, message?: Rpc): void {
    if (req.method === 'GET') {
      this.stream = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: endpoint\ndata: /messages?sessionId=s1\n\n`);
      return;
    }
    res.writeHead(202).end();
    if (message?.id === undefined || message.id === null) return;
    if (message.method === 'tools/call') return void setTimeout(() => this.kill(), 50);
    const result = message.method === 'initialize' ? INIT : { tools: [TOOL] };
    this.stream?.write(
      `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`,
    );
  }
}

const key = `death-${randomUUID()}`;
const toLegacy = new LegacySseBackend();
const killedUnderLegacy = new StreamableBackend('kill');
const resetUnderLegacy = new StreamableBackend('reset');
const member = new StreamableBackend('kill');
const modern = new StreamableBackend('reset');
const pipelined = new StreamableBackend('answer', 100);
let gateway: InProcessGateway;
const edge = () => `http://127.0.0.1:${gateway.edges[0].port}`;

beforeAll(async () => {
  await Promise.all(
    [toLegacy, killedUnderLegacy, resetUnderLegacy, member, modern, pipelined].map((b) =>
      b.start(),
    ),
  );
  gateway = await startInProcessGateway(`
namespaces:
  legacy: { upstream: { url: "${toLegacy.url}/sse", transport: sse } }
  killed: { upstream: { url: "${killedUnderLegacy.url}/mcp" } }
  reset: { upstream: { url: "${resetUnderLegacy.url}/mcp" } }
  member: { upstream: { url: "${member.url}/mcp" } }
  modern: { upstream: { url: "${modern.url}/mcp" } }
  pipelined: { upstream: { url: "${pipelined.url}/mcp" } }
servers:
  both: { namespaces: [member] }
keys:
  - { id: death, key: "${key}", namespaces: ["*"] }
`);
});

afterAll(async () => {
  await gateway?.stop();
  for (const backend of [toLegacy, killedUnderLegacy, resetUnderLegacy, member, modern, pipelined])
    backend.kill();
});

const call = (id: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'work', arguments: {}, _meta: { progressToken: id } },
});

/** The JSON-RPC error of an answer, and how long it took. */
function upstreamError(answer: Message | undefined): unknown {
  const error = answer?.error as { code?: number; data?: { code?: string } } | undefined;
  return { code: error?.code, data: error?.data?.code };
}

const UPSTREAM_ERROR = { code: -32052, data: 'upstream_error' };

describe('a backend that dies in the middle of a call, behind a bridged session', () => {
  it('answers a Streamable client upstream_error at once and ends the session (legacy SSE backend)', async () => {
    const client = new StreamableRawClient([edge()], 'legacy', key);
    expect((await client.initialize()).status).toBe(200);
    const started = Date.now();
    const answer = await client.post(call(1));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(upstreamError(answer.messages.find((m) => m.id === 1))).toEqual(UPSTREAM_ERROR);
    // A legacy session cannot outlive its stream: the client starts anew on 404.
    const next = await client.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(next.status).toBe(404);
    expect(next.text).toContain('unknown_session');
  });

  it('answers a legacy SSE client upstream_error at once and closes its stream (Streamable backend killed)', async () => {
    const client = new LegacyRawClient(edge(), 'killed', key);
    await client.initialize();
    await client.post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    await client.answersTo([1]);
    const started = Date.now();
    expect((await client.post(call(2))).status).toBe(202);
    const [answer] = await client.answersTo([2], 2_000);
    expect(upstreamError(answer)).toEqual(UPSTREAM_ERROR);
    expect(Date.now() - started).toBeLessThan(2_000);
    // Its GET stream cannot be opened again: the session ends, the client's stream with it.
    await eventually(() => client.ended, 5_000, 'the client stream to close', 50);
    expect((await client.post({ jsonrpc: '2.0', id: 3, method: 'ping' })).status).toBe(404);
    client.close();
  });

  it('fails only the call whose answer stream broke when the backend lives on', async () => {
    const client = new LegacyRawClient(edge(), 'reset', key);
    await client.initialize();
    const started = Date.now();
    await client.post(call(1));
    const [answer] = await client.answersTo([1], 2_000);
    expect(upstreamError(answer)).toEqual(UPSTREAM_ERROR);
    expect(Date.now() - started).toBeLessThan(2_000);
    await client.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const [list] = await client.answersTo([2]);
    expect(list.result).toEqual({ tools: [TOOL] });
    client.close();
  });

  it('answers a virtual server member’s call upstream_error at once', async () => {
    const client = new StreamableRawClient([edge()], 'both', key);
    expect((await client.initialize()).status).toBe(200);
    const started = Date.now();
    const answer = await client.post({
      ...call(1),
      params: { name: 'member__work', arguments: {} },
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(upstreamError(answer.messages.find((m) => m.id === 1))).toEqual(UPSTREAM_ERROR);
  });

  it('answers a 2026-07-28 call bridged to a 2025 backend upstream_error at once', async () => {
    const started = Date.now();
    const response = await postModern(`${edge()}/mcp/modern`, key, 1, 'tools/call', {
      name: 'work',
      arguments: {},
    });
    const text = await response.text();
    expect(Date.now() - started).toBeLessThan(2_000);
    const type = response.headers.get('content-type') ?? '';
    const messages = type.startsWith('text/event-stream')
      ? sseMessages(text)
      : [JSON.parse(text) as Message];
    expect(upstreamError(messages.find((m) => m.id === 1))).toEqual(UPSTREAM_ERROR);
  });
});

describe('a legacy SSE client that pipelines, on a Streamable HTTP backend', () => {
  it('sends what follows initialize with the backend session once initialize is answered', async () => {
    const client = new LegacyRawClient(edge(), 'pipelined', key);
    await client.open();
    await Promise.all([
      client.post({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2024-11-05',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
      client.post({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      client.post({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'work', arguments: {} },
      }),
    ]);
    const [, answer] = await client.answersTo([0, 1], 3_000);
    expect(answer.result).toEqual({ content: [{ type: 'text', text: 'done' }] });
    expect(pipelined.sessionless).toBe(0);
    expect(pipelined.received).toEqual(['notifications/initialized', 'tools/call']);
    client.close();
  });
});
