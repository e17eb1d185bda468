import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { type Gateway, startGateway } from '../support/gateway.js';
import { eventually } from '../support/processes.js';
import { RecordingBackend } from '../support/recording-backend.js';

const key = `key-${randomUUID()}`;
const narrowKey = `narrow-${randomUUID()}`;
const slowKey = `slow-${randomUUID()}`;
const ACCEPT = 'application/json, text/event-stream';

/** Pages of tools/list at the wire, as JSON or inside SSE, and a backend that never answers. */
function pagedBackend(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/hang') return; // never answers: the gateway must time out
      const message = JSON.parse(raw) as {
        id: number;
        method: string;
        params?: { cursor?: string };
      };
      const page =
        message.params?.cursor === 'p2'
          ? { tools: [{ name: 'visible_b', inputSchema: { type: 'object' } }] }
          : { tools: [{ name: 'secret_a', inputSchema: { type: 'object' } }], nextCursor: 'p2' };
      const answer = JSON.stringify({ jsonrpc: '2.0', id: message.id, result: page });
      if (req.url === '/sse') {
        res
          .writeHead(200, { 'content-type': 'text/event-stream' })
          .end(`id: e1\nevent: message\ndata: ${answer}\n\n`);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
        server,
      });
    }),
  );
}

describe('tool filtering that cannot be bypassed, and the error table (SPEC §4)', () => {
  const recording = new RecordingBackend();
  let paged: Awaited<ReturnType<typeof pagedBackend>>;
  let gateway: Gateway;
  let edge = '';

  beforeAll(async () => {
    [paged] = await Promise.all([pagedBackend(), recording.start()]);
    gateway = await startGateway({
      config: `
server:
  max_body_bytes: 4096
namespaces:
  rec: { upstream: { url: "${recording.url}" }, tools: { deny: ["secret_*"] } }
  recsse: { upstream: { url: "${recording.url}" }, tools: { allow: ["echo", "add_tools", "visible_*", "secret_*"], deny: ["secret_*"] } }
  paged: { upstream: { url: "${paged.url}/json" }, tools: { deny: ["secret_*"] } }
  pagedsse: { upstream: { url: "${paged.url}/sse" }, tools: { deny: ["secret_*"] } }
  hang: { upstream: { url: "${paged.url}/hang" }, timeout_ms: 500 }
  limited: { upstream: { url: "${recording.url}" }, rate_limit: { requests: 1, per: 1h } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
  - { id: narrow, key: "${narrowKey}", namespaces: ["rec"] }
  - { id: slow, key: "${slowKey}", namespaces: ["limited"] }
`,
    });
    edge = gateway.edges[0];
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    await recording.stop();
    paged?.server.close();
  });

  async function session(ns: string, version = '2025-06-18'): Promise<Record<string, string>> {
    const response = await post(ns, {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: version,
        capabilities: {},
        clientInfo: { name: 'raw', version: '1' },
      },
    });
    await response.text();
    return {
      'mcp-session-id': response.headers.get('mcp-session-id')!,
      'mcp-protocol-version': version,
    };
  }

  function post(
    ns: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return fetch(`${edge}/mcp/${ns}`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: ACCEPT,
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  /** Reads a JSON or SSE answer into its JSON-RPC messages. */
  async function messages(response: Response): Promise<Array<Record<string, unknown>>> {
    const text = await response.text();
    if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      return text
        .split('\n\n')
        .map((event) =>
          event
            .split('\n')
            .find((line) => line.startsWith('data: '))
            ?.slice(6),
        )
        .filter((data): data is string => Boolean(data))
        .map((data) => JSON.parse(data) as Record<string, unknown>);
    }
    return [JSON.parse(text) as Record<string, unknown> | Array<Record<string, unknown>>].flat();
  }

  const call = (name: unknown, id = 5) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: { message: 'x' } },
  });

  describe('hidden tools', () => {
    it.each([
      ['a plain call', () => JSON.stringify(call('secret_delete'))],
      [
        'unicode escapes in the key',
        () =>
          '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"n\\u0061me":"secret_delete"}}',
      ],
      [
        'unicode escapes in the name',
        () =>
          '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"secret\\u005fdelete"}}',
      ],
      [
        'an escaped method',
        () => '{"jsonrpc":"2.0","id":5,"method":"tools\\/call","params":{"name":"secret_delete"}}',
      ],
      [
        'a duplicate key whose last value is hidden',
        () =>
          '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","name":"secret_delete"}}',
      ],
      ['a name that is not a string', () => JSON.stringify(call(['secret_delete']))],
    ])('answers -32602 to %s and never forwards it', async (_name, body) => {
      const headers = await session('rec');
      const before = recording.toolCalls.length;
      const [answer] = await messages(await post('rec', body(), headers));
      expect(answer).toMatchObject({ jsonrpc: '2.0', id: 5, error: { code: -32602 } });
      expect(String((answer.error as { message: string }).message)).toMatch(/^Tool not found: /);
      expect(recording.toolCalls.slice(before)).toEqual([]);
    });

    it('forwards the checked name, not an earlier duplicate (first-wins parsers see the same)', async () => {
      const headers = await session('rec');
      const before = recording.toolCalls.length;
      const body =
        '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"secret_delete","name":"echo","arguments":{"message":"x"}}}';
      const [answer] = await messages(await post('rec', body, headers));
      expect(answer.result).toBeDefined();
      expect(recording.toolCalls.slice(before)).toEqual(['echo']);
    });

    it('keeps case-sensitivity: Secret_delete is another name, and the backend has no such tool', async () => {
      const headers = await session('rec');
      await messages(await post('rec', call('Secret_delete'), headers));
      expect(recording.toolCalls).not.toContain('secret_delete');
    });

    it('filters each element of a batch on a 2025-03-26 session', async () => {
      const headers = await session('rec', '2025-03-26');
      const before = recording.toolCalls.length;
      const answers = await messages(
        await post('rec', [call('echo', 1), call('secret_delete', 2)], headers),
      );
      const byId = Object.fromEntries(
        answers.map((answer) => [String(answer.id), answer]),
      ) as Record<string, Record<string, unknown>>;
      expect(byId[1].result).toBeDefined();
      expect(byId[2]).toMatchObject({
        error: { code: -32602, message: 'Tool not found: secret_delete' },
      });
      expect(recording.toolCalls.slice(before)).toEqual(['echo']);
    });

    it('answers a batch of only hidden calls itself', async () => {
      const headers = await session('rec', '2025-03-26');
      const answers = await messages(
        await post('rec', [call('secret_delete', 1), call('secret_x', 2)], headers),
      );
      expect(answers.map((answer) => (answer.error as { code: number }).code)).toEqual([
        -32602, -32602,
      ]);
    });

    it.each(['2025-06-18', '2025-11-25'])(
      'refuses batches on %s sessions (400, -32600)',
      async (version) => {
        const headers = await session('rec', version);
        const response = await post('rec', [call('echo', 1), call('secret_delete', 2)], headers);
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({
          jsonrpc: '2.0',
          id: 1,
          error: { code: -32600, data: { code: 'invalid_request' } },
        });
      },
    );

    it('refuses an SSE-framed request body as not JSON (400, -32700)', async () => {
      const headers = await session('rec');
      const response = await post(
        'rec',
        `data: ${JSON.stringify(call('secret_delete'))}\n\n`,
        headers,
      );
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32700, data: { code: 'parse_error' } },
      });
    });

    it.each([
      ['SSE', { 'content-type': 'text/event-stream' }],
      ['JSON in UTF-7', { 'content-type': 'application/json; charset=utf-7' }],
      ['JSON in latin1', { 'content-type': 'application/json;charset=ISO-8859-1' }],
      ['gzip', { 'content-encoding': 'gzip' }],
      ['no content type', { 'content-type': '' }],
    ])('refuses a body declared as %s (415) before anything reads it', async (_name, declared) => {
      const headers = await session('rec');
      const before = recording.headers.length;
      const response = await post('rec', call('secret_delete'), { ...headers, ...declared });
      expect(response.status).toBe(415);
      expect(await response.json()).toMatchObject({
        error: { code: -32600, data: { code: 'unsupported_media_type' } },
      });
      expect(recording.headers.length).toBe(before);
    });

    it('refuses a 2026-07-28 request whose Mcp-Name disagrees with its body (400, -32020)', async () => {
      const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' };
      const modern = (name: string) => {
        const plain = call(name);
        return {
          ...plain,
          params: {
            ...plain.params,
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
            },
          },
        };
      };
      const mismatch = await post('rec', modern('secret_delete'), {
        ...headers,
        'mcp-name': 'echo',
      });
      expect(mismatch.status).toBe(400);
      expect(await mismatch.json()).toMatchObject({
        id: 5,
        error: { code: -32020, data: { code: 'header_mismatch' } },
      });
      const wrongMethod = await post('rec', call('echo'), {
        ...headers,
        'mcp-method': 'tools/list',
        'mcp-name': 'echo',
      });
      expect(wrongMethod.status).toBe(400);
      const before = recording.headers.length;
      const agreeing = await post('rec', modern('echo'), { ...headers, 'mcp-name': 'echo' });
      expect(agreeing.status).toBe(200);
      expect(recording.headers.length).toBeGreaterThan(before);
      expect(recording.toolCalls).not.toContain('secret_delete');
    });

    it('hides tools from a legacy SSE client too, and answers its calls with -32602', async () => {
      const client = new Client({ name: 'legacy', version: '1' });
      const auth = { Authorization: `Bearer ${key}` };
      await client.connect(
        new SSEClientTransport(new URL(`${edge}/mcp/recsse/sse`), {
          requestInit: { headers: auth },
          eventSourceInit: {
            fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...auth } }),
          },
        }),
      );
      const names = (await client.listTools()).tools.map((tool) => tool.name);
      expect(names).toContain('echo');
      expect(names.some((name) => name.startsWith('secret'))).toBe(false);
      await expect(client.callTool({ name: 'secret_delete', arguments: {} })).rejects.toThrow(
        /Tool not found: secret_delete/,
      );
      await client.close();
    });
  });

  describe('tools/list', () => {
    it.each([
      ['JSON', 'paged'],
      ['SSE', 'pagedsse'],
    ])('filters every %s page and keeps nextCursor, even on an emptied page', async (_kind, ns) => {
      const [first] = await messages(
        await post(ns, { jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      );
      expect(first.result).toEqual({ tools: [], nextCursor: 'p2' });
      const [second] = await messages(
        await post(ns, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { cursor: 'p2' } }),
      );
      expect(
        (second.result as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name),
      ).toEqual(['visible_b']);
    });

    it.each(['streamable', 'legacy'])(
      'filters the new list after notifications/tools/list_changed (%s client)',
      async (kind) => {
        const client = new Client({ name: 'changes', version: '1' });
        const auth = { Authorization: `Bearer ${key}` };
        const getsBefore = recording.gets;
        const changed = new Promise<void>((resolve) =>
          client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
        );
        await client.connect(
          kind === 'streamable'
            ? new StreamableHTTPClientTransport(new URL(`${edge}/mcp/recsse`), {
                requestInit: { headers: auth },
              })
            : new SSEClientTransport(new URL(`${edge}/mcp/recsse/sse`), {
                requestInit: { headers: auth },
                eventSourceInit: {
                  fetch: (url, init) =>
                    fetch(url, { ...init, headers: { ...init?.headers, ...auth } }),
                },
              }),
        );
        // The backend sends list_changed on its GET stream: wait until the session has one.
        await eventually(
          () => recording.gets > getsBefore,
          5_000,
          'the GET stream to reach the backend',
        );
        await client.callTool({ name: 'add_tools', arguments: {} });
        await changed;
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        expect(names.some((name) => name.startsWith('visible_new'))).toBe(true);
        expect(names.some((name) => name.startsWith('secret'))).toBe(false);
        await client.close();
      },
    );
  });

  describe('the error table', () => {
    const ping = { jsonrpc: '2.0', id: 42, method: 'ping' };

    it.each([
      ['no key', 'rec', { Authorization: '' }, 401, 'unauthorized'],
      [
        'a key not allowed on the namespace',
        'paged',
        { Authorization: `Bearer ${narrowKey}` },
        403,
        'forbidden_namespace',
      ],
      ['a foreign Origin', 'rec', { Origin: 'https://evil.example' }, 403, 'forbidden_origin'],
      ['an unknown namespace', 'nope', {}, 404, 'unknown_namespace'],
      ['an unknown session', 'rec', { 'mcp-session-id': 'forged.session' }, 404, 'unknown_session'],
    ])(
      '%s (/mcp/%s) → %d %s, a JSON-RPC error carrying the request id',
      async (_name, ns, headers, status, code) => {
        const response = await post(ns, ping, headers);
        expect(response.status).toBe(status);
        expect(response.headers.get('x-request-id')).toBeTruthy();
        if (status === 401)
          expect(response.headers.get('www-authenticate')).toMatch(
            /^Bearer .*error_description=".*X-API-Key/,
          );
        expect(await response.json()).toMatchObject({
          jsonrpc: '2.0',
          id: 42,
          error: { data: { code } },
        });
      },
    );

    it('answers the plain error envelope when there is no JSON-RPC request (GET without key)', async () => {
      const response = await fetch(`${edge}/mcp/rec`, {
        headers: { accept: 'text/event-stream', 'x-request-id': 'my-request-1' },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('x-request-id')).toBe('my-request-1');
      expect(await response.json()).toMatchObject({
        error: { code: 'unauthorized', requestId: 'my-request-1' },
      });
    });

    it.each([
      ['not JSON', '{oops', 400, -32700, 'parse_error', null],
      [
        'not JSON-RPC 2.0',
        '{"jsonrpc":"1.0","id":3,"method":"ping"}',
        400,
        -32600,
        'invalid_request',
        3,
      ],
    ])('a body %s → %d, JSON-RPC %d %s', async (_name, body, status, rpcCode, code, id) => {
      const response = await post('rec', body);
      expect(response.status).toBe(status);
      expect(await response.json()).toMatchObject({
        jsonrpc: '2.0',
        id,
        error: { code: rpcCode, data: { code } },
      });
    });

    it('refuses an oversize body from its Content-Length before reading it (413)', async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = tcpConnect(Number(new URL(edge).port), '127.0.0.1', () => {
          // Headers only: the body is never sent, so an answer proves the edge did not wait for it.
          socket.write(
            `POST /mcp/rec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`,
          );
        });
        let data = '';
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString();
          if (data.includes('\r\n\r\n') && data.includes('payload_too_large')) {
            socket.destroy();
            resolve(data);
          }
        });
        socket.on('error', reject);
        setTimeout(() => reject(new Error(`no answer: ${data}`)), 5_000);
      });
      expect(answer).toMatch(/^HTTP\/1.1 413/);
    });

    it('refuses an oversize chunked body while reading it (413)', async () => {
      const payload = new TextEncoder().encode(
        JSON.stringify({ ...ping, params: { pad: 'x'.repeat(10_000) } }),
      );
      const response = await fetch(`${edge}/mcp/rec`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          accept: ACCEPT,
        },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(payload);
            controller.close();
          },
        }),
        duplex: 'half',
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    });

    it('answers 429 rate_limited with Retry-After and the request id past the limit', async () => {
      const headers = { Authorization: `Bearer ${slowKey}` };
      const first = await post('limited', { ...ping, id: 1 }, headers);
      expect(first.headers.get('ratelimit-limit')).toBe('1');
      await first.text();
      const second = await post('limited', ping, headers);
      expect(second.status).toBe(429);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await second.json()).toMatchObject({
        jsonrpc: '2.0',
        id: 42,
        error: { data: { code: 'rate_limited' } },
      });
    });

    it('answers 504 upstream_timeout when the backend sends nothing within timeout_ms', async () => {
      const response = await post('hang', ping);
      expect(response.status).toBe(504);
      expect(await response.json()).toMatchObject({
        jsonrpc: '2.0',
        id: 42,
        error: { data: { code: 'upstream_timeout' } },
      });
    });

    // Plain MCP requests are served before Fastify; everything else goes through its router.
    // Either way a request gets the same answer.
    it.each([
      ['PUT on the MCP route', 'PUT', '/mcp/rec', 405, 'method_not_allowed'],
      ['a trailing slash', 'GET', '/mcp/rec/', 404, 'not_found'],
      ['POST to the legacy stream route', 'POST', '/mcp/rec/sse', 404, 'not_found'],
      ['GET on the legacy messages route', 'GET', '/mcp/rec/messages', 404, 'not_found'],
      ['a percent-encoded namespace', 'POST', '/mcp/n%6Fpe', 404, 'unknown_namespace'],
      ['a plain unknown namespace', 'POST', '/mcp/nope?x=1', 404, 'unknown_namespace'],
      [
        'a namespace named like an object property',
        'POST',
        '/mcp/constructor',
        404,
        'unknown_namespace',
      ],
      ['a namespace past the router limit', 'POST', `/mcp/${'a'.repeat(101)}`, 414, 'uri_too_long'],
      ['a malformed percent-escape', 'POST', '/mcp/%E0%A4%A', 400, 'bad_request'],
    ])('routes %s (%s %s) → %d', async (_name, method, path, status, code) => {
      const response = await fetch(`${edge}${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: method === 'POST' || method === 'PUT' ? JSON.stringify(ping) : undefined,
      });
      expect(response.status).toBe(status);
      // SPEC §4: every response, whoever answers it, carries the request id.
      expect(response.headers.get('x-request-id')).toMatch(/\S/);
      const body = (await response.json()) as {
        error?: { code?: string; data?: { code?: string } };
      };
      if (code) expect(body.error?.data?.code ?? body.error?.code).toBe(code);
    });

    it('answers 404 with a JSON error for routes that do not exist', async () => {
      const response = await fetch(`${edge}/nowhere`);
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: 'not_found' } });
    });

    it('the edge stays healthy after all of it', async () => {
      await eventually(async () => (await fetch(`${edge}/healthz`)).ok, 2_000, 'healthz');
    });
  });
});
