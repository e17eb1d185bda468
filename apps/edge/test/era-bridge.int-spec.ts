import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { MemberBackend } from '../../../test/support/member-backend.js';
import { ROOT, tempDir } from '../../../test/support/processes.js';
import { textOf } from '../../../test/support/mcp.js';
import { postModern } from '../../../test/support/raw-client.js';

// A 2026-07-28 client (the TypeScript SDK v2, pinned to the revision: no fallback) on 2025-era
// backends of every kind (SPEC §4 behaviour 10): the gateway speaks the modern revision to the
// client and holds 2025 sessions with the backend for it.

const key = `era-${randomUUID()}`;
const otherKey = `era-other-${randomUUID()}`;
const http = new MemberBackend('http');
const sse = new MemberBackend('sse');

/**
 * A backend that speaks only 2026-07-28 (raw HTTP, so that it can misbehave): its
 * `subscriptions/listen` stream asks the client for sampling unprompted when `ask()` is called,
 * a request that belongs to no call of anyone's.
 */
class UnpromptedAsker {
  url = '';
  private server?: Server;
  private readonly listeners = new Set<ServerResponse>();

  get listening(): number {
    return this.listeners.size;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => this.handle(body, res));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
  }

  ask(): void {
    const request = {
      jsonrpc: '2.0',
      id: 'unprompted-1',
      method: 'sampling/createMessage',
      params: {
        messages: [{ role: 'user', content: { type: 'text', text: 'unprompted' } }],
        maxTokens: 5,
      },
    };
    for (const res of this.listeners) res.write(`data: ${JSON.stringify(request)}\n\n`);
  }

  async stop(): Promise<void> {
    for (const res of this.listeners) res.end();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private handle(body: string, res: ServerResponse): void {
    const message = JSON.parse(body || '{}') as { id?: unknown; method?: string };
    const answer = (result: unknown): void => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    };
    switch (message.method) {
      case 'server/discover':
        return answer({
          supportedVersions: ['2026-07-28'],
          capabilities: { tools: { listChanged: true } },
          _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'asker', version: '1' } },
        });
      case 'tools/list':
        return answer({ resultType: 'complete', tools: [] });
      case 'subscriptions/listen':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: { toolsListChanged: true } } })}\n\n`,
        );
        this.listeners.add(res);
        res.on('close', () => this.listeners.delete(res));
        return;
      default:
        res.writeHead(202).end();
    }
  }
}

const asker = new UnpromptedAsker();
/** A legacy SSE address that resets every connection, counting them. */
let resets = 0;
const resetting = createTcpServer((socket) => {
  resets++;
  socket.destroy();
});
const dir = tempDir('era');
const stdioLog = join(dir, 'stdio.log');
let gateway: InProcessGateway;
const url = (path: string, edge = 0) => `http://127.0.0.1:${gateway.edges[edge].port}/mcp/${path}`;

beforeAll(async () => {
  await Promise.all([http.start(), sse.start(), asker.start()]);
  await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
  const resettingPort = (resetting.address() as AddressInfo).port;
  writeFileSync(stdioLog, '');
  const member = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/member-stdio.mjs')}"]`;
  const stdio = `${member}, env: { MEMBER_NAME: stdio, MEMBER_LOG: "${stdioLog}" }`;
  gateway = await startInProcessGateway(
    `
server: { max_sessions_per_key: 3 }
namespaces:
  http: { upstream: { url: "${http.url}/mcp" } }
  sse: { upstream: { url: "${sse.url}/sse", transport: sse } }
  stdio: { upstream: { ${stdio} }, tools: { deny: ["stdio_only"] } }
  asker: { upstream: { url: "${asker.url}" } }
  broken: { upstream: { command: /nonexistent/bin } }
  gone: { upstream: { url: "http://127.0.0.1:1/sse", transport: sse } }
  resetting: { upstream: { url: "http://127.0.0.1:${resettingPort}/sse", transport: sse } }
  full: { upstream: { ${member}, env: { MEMBER_NAME: full }, max_children: 1, warm: 0 } }
servers:
  both: { namespaces: [http, stdio] }
  mixed: { namespaces: [asker, stdio] }
keys:
  - { id: era, key: "${key}", namespaces: ["*"] }
  - { id: other, key: "${otherKey}", namespaces: ["*"] }
`,
    { edges: 2 },
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([http.stop(), sse.stop(), asker.stop()]);
  resetting.close();
  rmSync(dir, { recursive: true, force: true });
});

async function modernClient(path: string, apiKey = key): Promise<Client> {
  const client = new Client(
    { name: 'era-client', version: '2.0.0' },
    {
      capabilities: { sampling: {} },
      versionNegotiation: { mode: { pin: '2026-07-28' } },
    },
  );
  client.setRequestHandler('sampling/createMessage', (request) => ({
    model: 'test-model',
    role: 'assistant',
    content: {
      type: 'text',
      text: `answered ${(request.params.messages[0].content as { text: string }).text}`,
    },
  }));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url(path)), {
      requestInit: { headers: { Authorization: `Bearer ${apiKey}` } },
    }),
  );
  return client;
}

/** The result of the last JSON-RPC response of an SSE (or JSON) answer body. */
function sseResult(body: string): unknown {
  const messages = body.trimStart().startsWith('{')
    ? [body]
    : [...body.matchAll(/^data: (.*)$/gm)].map((m) => m[1]);
  const last = JSON.parse(messages[messages.length - 1]) as { result?: unknown };
  return last.result;
}

describe.each(['http', 'sse', 'stdio'])(
  'a client pinned to 2026-07-28 on the 2025-era %s backend',
  (ns) => {
    let client: Client;

    beforeAll(async () => {
      client = await modernClient(ns);
    });

    afterAll(async () => {
      await client?.close();
    });

    it('connects with server/discover answered from the backend’s initialize', () => {
      expect(client.getProtocolEra()).toBe('modern');
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      expect(client.getServerCapabilities()?.tools).toBeDefined();
    });

    it('lists and calls tools, the namespace’s filter applied', async () => {
      const names = (await client.listTools()).tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(['echo', 'progress', 'sample']));
      if (ns === 'stdio') expect(names).not.toContain('stdio_only');
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe(
        `${ns} ran echo: hi`,
      );
    });

    it('passes progress on the call’s answer stream', async () => {
      const progress: number[] = [];
      const result = await client.callTool(
        { name: 'progress', arguments: {} },
        { onprogress: (p: { progress: number }) => progress.push(p.progress) },
      );
      expect(textOf(result)).toBe(`${ns} progressed`);
      expect(progress).toEqual([1, 2, 3]);
    });

    it('turns the backend’s sampling request into an input_required round trip', async () => {
      const result = await client.callTool({ name: 'sample', arguments: {} });
      expect(textOf(result)).toBe(`${ns} sampled: answered from ${ns}`);
    });

    it('records both eras on its events: the client’s 2026-07-28, the backend’s 2025-11-25', async () => {
      await client.callTool({ name: 'echo', arguments: { text: 'era' } });
      await gateway.flush();
      const call = gateway.events.findLast(
        (e) =>
          e.namespace === ns && e.method === 'tools/call' && e.direction === 'client_to_server',
      );
      expect(call).toMatchObject({
        protocol_version: '2026-07-28',
        upstream_protocol_version: '2025-11-25',
        tool: 'echo',
        outcome: 'ok',
      });
    });

    it('never runs a hidden tool', async () => {
      if (ns !== 'stdio') return;
      await expect(client.callTool({ name: 'stdio_only', arguments: {} })).rejects.toThrow(
        'Tool not found: stdio_only',
      );
    });
  },
);

describe('2026-07-28 on a virtual server', () => {
  it('lists the members’ tools prefixed and routes calls and sampling', async () => {
    const client = await modernClient('both');
    try {
      const names = (await client.listTools()).tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(['http__echo', 'stdio__echo']));
      expect(textOf(await client.callTool({ name: 'stdio__echo', arguments: { text: 'v' } }))).toBe(
        'stdio ran echo: v',
      );
      expect(textOf(await client.callTool({ name: 'http__sample', arguments: {} }))).toBe(
        'http sampled: answered from http',
      );
      // Each call's events name the server, the member, the backend's tool and its backend kind.
      await gateway.flush();
      const calls = gateway.events.filter(
        (e) =>
          e.server === 'both' && e.method === 'tools/call' && e.direction === 'client_to_server',
      );
      // (The sampling call is two requests: the first answered input_required, then the retry.)
      const routed = new Set(
        calls.map((e) => [e.namespace, e.tool, e.client_tool, e.transport].join(' ')),
      );
      expect([...routed]).toEqual([
        'stdio echo stdio__echo stdio',
        'http sample http__sample streamable',
      ]);
    } finally {
      await client.close();
    }
  });
});

describe('subscriptions/listen on a 2025-era backend', () => {
  it('acknowledges what the backend can tell and passes its list_changed, tagged', async () => {
    const client = await modernClient('http');
    try {
      let changed = 0;
      client.setNotificationHandler('notifications/tools/list_changed', () => {
        changed++;
      });
      const subscription = await client.listen({
        toolsListChanged: true,
        promptsListChanged: true,
      });
      expect(subscription.honoredFilter).toEqual({ toolsListChanged: true });
      await client.callTool({ name: 'grow', arguments: {} });
      await eventually(() => changed > 0, 5_000, 'list_changed on the listen stream');
      await subscription.close();
    } finally {
      await client.close();
    }
  });
});

describe('what a modern request must be', () => {
  const post = (body: unknown, headers: Record<string, string>) =>
    fetch(url('stdio'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  /** A raw 2026-07-28 request to a namespace, with the given client capabilities. */
  const modern = (
    ns: string,
    apiKey: string,
    id: number,
    method: string,
    params: Record<string, unknown>,
    capabilities: Record<string, unknown>,
  ) => postModern(url(ns), apiKey, id, method, params, capabilities);
  /** The methods a call's answer asks the client for; the answer must be `input_required`. */
  const askedFor = async (answer: Response): Promise<string[]> => {
    const result = sseResult(await answer.text()) as {
      resultType?: string;
      inputRequests?: Record<string, { method: string }>;
    };
    expect(result.resultType).toBe('input_required');
    return Object.values(result.inputRequests ?? {}).map((request) => request.method);
  };

  it('refuses a header and an envelope that name different revisions (-32020), and a body without the envelope (-32602)', async () => {
    const mismatch = await post(
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope } },
      { 'mcp-protocol-version': '2025-11-25' },
    );
    expect(mismatch.status).toBe(400);
    expect(((await mismatch.json()) as { error: { code: number } }).error.code).toBe(-32020);
    const bare = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
    );
    expect(bare.status).toBe(400);
    expect(((await bare.json()) as { error: { code: number } }).error.code).toBe(-32602);
    // The header names 2026-07-28, the envelope another revision: they disagree (-32020), as a
    // modern server answers it (the conformance suite's header-mismatch check), not -32602.
    const other = await post(
      {
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/list',
        params: { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } },
      },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
    );
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ id: 3, error: { code: -32020 } });
  });

  it('caps the backend sessions a key holds for a target, whatever capabilities it sends', async () => {
    // Each call waits for the client's input, so its session is busy and cannot make room.
    const sample = (n: number) =>
      modern(
        'sse',
        otherKey,
        n,
        'tools/call',
        { name: 'sample', arguments: {} },
        {
          sampling: {},
          [`x${n}`]: {},
        },
      );
    const statuses = [];
    for (let n = 1; n <= 4; n++) statuses.push((await sample(n)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(
      ((await (await sample(5)).json()) as { error: { data: { code: string } } }).error.data.code,
    ).toBe('too_many_sessions');
  });

  it('makes room at the cap by ending an idle session of other capabilities', async () => {
    const statuses = [];
    for (let n = 1; n <= 5; n++) {
      const answer = await modern('http', otherKey, n, 'tools/list', {}, { [`idle${n}`]: {} });
      statuses.push(answer.status);
      await answer.text();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
  });

  it('shows the backend’s requests for input that come together in one input_required', async () => {
    const answer = await modern(
      'stdio',
      key,
      40,
      'tools/call',
      { name: 'sample', arguments: { times: 2 } },
      { sampling: {}, together: {} },
    );
    expect(await askedFor(answer)).toEqual(['sampling/createMessage', 'sampling/createMessage']);
  });

  it('gives a prompt that asks for input a session of its own while a call waits for input', async () => {
    // otherKey: the two sessions this leaves waiting for input count against its own cap.
    const caps = { sampling: {}, prompt: {} };
    const waiting = await modern(
      'stdio',
      otherKey,
      90,
      'tools/call',
      { name: 'sample', arguments: {} },
      caps,
    );
    expect(await askedFor(waiting)).toEqual(['sampling/createMessage']);
    // On the waiting call's session, the prompt's request for input could not be told apart.
    const prompt = await modern(
      'stdio',
      otherKey,
      91,
      'prompts/get',
      { name: 'greet', arguments: { ask: 'yes' } },
      caps,
    );
    expect(await askedFor(prompt)).toEqual(['sampling/createMessage']);
  });

  it('tells a listener of a change on another of the pool’s sessions', async () => {
    const caps = { sampling: {}, pool: {} };
    // Session A: busy with a call waiting for input, then also holding the listener.
    const waiting = await modern(
      'stdio',
      key,
      50,
      'tools/call',
      { name: 'sample', arguments: {} },
      caps,
    );
    expect(await askedFor(waiting)).toEqual(['sampling/createMessage']);
    const listen = await modern(
      'stdio',
      key,
      51,
      'subscriptions/listen',
      { notifications: { toolsListChanged: true } },
      caps,
    );
    const reader = (listen.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const heard = (async () => {
      while (!text.includes('notifications/tools/list_changed')) {
        const { value, done } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
      }
    })();
    // `grow` needs a session with no call waiting: session B, whose child changes its list.
    const grow = await modern(
      'stdio',
      key,
      52,
      'tools/call',
      { name: 'grow', arguments: {} },
      caps,
    );
    expect(textOf(sseResult(await grow.text()))).toBe('stdio grew');
    await Promise.race([heard, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    await reader.cancel();
    expect(text).toContain('notifications/tools/list_changed');
  });

  it('fails a call whose backend asks for a capability the client did not declare: 400 -32021', async () => {
    const answer = await modern(
      'stdio',
      key,
      70,
      'tools/call',
      { name: 'sample', arguments: {} },
      {},
    );
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({
      id: 70,
      error: {
        code: -32021,
        data: { code: 'missing_capability', requiredCapabilities: { sampling: {} } },
      },
    });
    // The backend heard the refusal: the same session serves the next call.
    const next = await modern(
      'stdio',
      key,
      71,
      'tools/call',
      { name: 'echo', arguments: { text: 'on' } },
      {},
    );
    expect(textOf(sseResult(await next.text()))).toBe('stdio ran echo: on');
  });

  it('answers a stateless request naming a revision it does not speak with -32022 and what it supports', async () => {
    const answer = await post(
      {
        jsonrpc: '2.0',
        id: 80,
        method: 'tools/list',
        params: { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } },
      },
      { 'mcp-protocol-version': 'v999.0.0', 'mcp-method': 'tools/list' },
    );
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({
      id: 80,
      error: { code: -32022, data: { supported: ['2026-07-28'], requested: 'v999.0.0' } },
    });
  });

  it('answers resources/subscribe and an unknown method as 2026-07-28 does: 404 -32601', async () => {
    for (const [id, method, params] of [
      [60, 'resources/subscribe', { uri: 'mem://stdio/readme' }],
      [61, 'resources/unsubscribe', { uri: 'mem://stdio/readme' }],
      [62, 'unknown/method', {}],
    ] as const) {
      const answer = await modern('stdio', key, id, method, params, {});
      expect({ method, status: answer.status }).toEqual({ method, status: 404 });
      expect(await answer.json()).toMatchObject({ id, error: { code: -32601 } });
    }
  });

  it('answers the methods 2026-07-28 removed with 404 -32601', async () => {
    const answer = await post(
      { jsonrpc: '2.0', id: 3, method: 'ping', params: { _meta: envelope } },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'ping' },
    );
    expect(answer.status).toBe(404);
    expect(((await answer.json()) as { error: { code: number } }).error.code).toBe(-32601);
  });

  it('refuses a requestState that is forged, another key’s or another route’s, and takes its own on any edge', async () => {
    const forgedAnswer = { role: 'assistant', content: { type: 'text', text: 'forged' } };
    const call = (
      apiKey: string,
      requestState: string | undefined,
      id: number,
      inputResponses: Record<string, unknown> = { x: forgedAnswer },
      edge = 0,
      route = 'stdio',
    ) =>
      fetch(url(route, edge), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'sample',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: {
            name: 'sample',
            arguments: {},
            requestState,
            inputResponses,
            _meta: {
              ...envelope,
              'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
            },
          },
        }),
      });
    const forged = await call(key, Buffer.from('{"k":"era"}').toString('base64url'), 4);
    // (the forged one names no real input request, so the key of inputResponses is irrelevant)
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { error: { code: number } }).error.code).toBe(-32602);

    // A real state, from a sampling round trip of `key`, presented by another key: refused; by
    // its own key, it answers the backend and the call completes.
    const first = await call(key, undefined, 5);
    const asked = sseResult(await first.text()) as {
      resultType: string;
      inputRequests: Record<string, { method: string }>;
      requestState: string;
    };
    expect(asked.resultType).toBe('input_required');
    expect(Object.values(asked.inputRequests)[0].method).toBe('sampling/createMessage');
    const stolen = await call(otherKey, asked.requestState, 6);
    expect(stolen.status).toBe(400);
    // The same key on another route (other filters, other members): refused too.
    const answers = { [Object.keys(asked.inputRequests)[0]]: { ...forgedAnswer, model: 'm' } };
    const elsewhere = await call(key, asked.requestState, 8, answers, 0, 'http');
    expect(elsewhere.status).toBe(400);
    // Its retry lands on the other edge: sent to the edge that holds the backend session.
    const own = await call(key, asked.requestState, 7, answers, 1);
    expect(own.status).toBe(200);
    expect(sseResult(await own.text())).toMatchObject({
      content: [{ type: 'text', text: 'stdio sampled: forged' }],
    });
  });
});

describe('a 2026-07-28 client on a namespace (not a virtual server)', () => {
  /** A raw 2026-07-28 request's status and JSON-RPC answer (JSON, or the last SSE event). */
  const ask = async (ns: string, id: number, method: string, capabilities = {}) => {
    const answer = await postModern(url(ns), key, id, method, {}, capabilities);
    const text = await answer.text();
    const body = text.trimStart().startsWith('{')
      ? (JSON.parse(text) as Record<string, unknown>)
      : { result: sseResult(text) };
    return { status: answer.status, body };
  };

  it.each([
    ['broken', 'a command that does not exist'],
    ['gone', 'a legacy SSE backend that does not answer'],
  ])('answers on %s (%s) 502 upstream_error, never an empty success', async (ns) => {
    for (const [id, method] of [
      [1, 'server/discover'],
      [2, 'tools/list'],
      [3, 'prompts/list'],
    ] as const) {
      const { status, body } = await ask(ns, id, method);
      expect({ method, status }).toEqual({ method, status: 502 });
      expect(body).toMatchObject({ id, error: { data: { code: 'upstream_error' } } });
    }
  });

  it('leaves nothing trying a backend it could not reach once it has answered', async () => {
    const { status } = await ask('resetting', 1, 'tools/list');
    expect(status).toBe(502);
    const tried = resets;
    expect(tried).toBeGreaterThan(0);
    // An SSE client left open would go on reconnecting (every few seconds) for ever.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(resets).toBe(tried);
  });

  it('answers 503 when the namespace has no room for another child', async () => {
    expect((await ask('full', 1, 'tools/list', { first: {} })).status).toBe(200);
    // Other capabilities: another backend session, which max_children (1) has no room for.
    const { status, body } = await ask('full', 2, 'tools/list', { second: {} });
    expect(status).toBe(503);
    expect(body).toMatchObject({ id: 2, error: { data: { code: 'unavailable' } } });
  });

  it('answers server/discover with the backend’s own server info and instructions', async () => {
    const { status, body } = await ask('stdio', 1, 'server/discover');
    expect(status).toBe(200);
    expect(body.result).toMatchObject({
      instructions: 'Use stdio for stdio things.',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'stdio', version: '1.0.0' } },
    });
  });
});

describe('a member’s request for input on a virtual server bridged for 2026-07-28', () => {
  it('is never shown under a call routed to another member, whose own answer still arrives', async () => {
    const capabilities = { sampling: {} };
    // The connection and its members first: the modern member then listens.
    const listed = await postModern(url('mixed'), key, 1, 'tools/list', {}, capabilities);
    expect(listed.status).toBe(200);
    await listed.text();
    await eventually(() => asker.listening > 0, 5_000, 'the modern member to listen');
    const ran = readFileSync(stdioLog, 'utf8').split('\n').length;
    const pending = postModern(
      url('mixed'),
      key,
      2,
      'tools/call',
      { name: 'stdio__slow', arguments: { ms: 1_000 } },
      capabilities,
    );
    await eventually(
      () =>
        readFileSync(stdioLog, 'utf8')
          .split('\n')
          .slice(ran - 1)
          .includes('slow'),
      5_000,
      'the slow call to run on stdio',
    );
    asker.ask(); // on its listen stream: no call's, least of all stdio's
    const answer = await pending;
    expect(answer.status).toBe(200);
    const result = sseResult(await answer.text()) as { resultType?: string };
    expect(result.resultType).toBe('complete');
    expect(textOf(result)).toBe('stdio slept');
  });
});
