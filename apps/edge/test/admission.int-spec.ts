import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { ExpressBackend } from '../../../test/support/express-backend.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { StreamableRawClient } from '../../../test/support/raw-client.js';

// Admission in SPEC order (pipeline/admission.ts), in process against a wire-level backend: each
// refusal comes from the step that owns it, with its status and code, and nothing refused reaches
// the backend.

const key = `key-${randomUUID()}`;
const narrowKey = `narrow-${randomUUID()}`;
const backend = new HostileBackends();
let gateway: InProcessGateway;
let edge: string;

beforeAll(async () => {
  await backend.start();
  gateway = await startInProcessGateway(`
server: { allowed_origins: ["https://app.example"], max_body_bytes: 2048, request_timeout: 1s }
namespaces:
  open: { upstream: { url: "${backend.url}/json" } }
  other: { upstream: { url: "${backend.url}/json" } }
  limited: { upstream: { url: "${backend.url}/json" }, rate_limit: { requests: 1, per: 1h } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
  - { id: narrow, key: "${narrowKey}", namespaces: ["other"] }
`);
  edge = gateway.edges[0].url;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backend.stop();
});

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${edge}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
}

describe('admission, step by step', () => {
  const foreign = { origin: 'https://evil.example', authorization: 'Bearer nope' };
  it.each<[string, string, string, Record<string, string>, number, string]>([
    ['origin before auth', '/mcp/open', JSON.stringify(ping), foreign, 403, 'forbidden_origin'],
    [
      'media type before auth',
      '/mcp/open',
      JSON.stringify(ping),
      { 'content-type': 'application/json; charset=utf-16', authorization: 'Bearer nope' },
      415,
      'unsupported_media_type',
    ],
    [
      'auth',
      '/mcp/open',
      JSON.stringify(ping),
      { authorization: 'Bearer nope' },
      401,
      'unauthorized',
    ],
    ['namespace: unknown', '/mcp/nowhere', JSON.stringify(ping), {}, 404, 'unknown_namespace'],
    [
      'namespace: not the key’s',
      '/mcp/open',
      JSON.stringify(ping),
      { authorization: `Bearer ${narrowKey}` },
      403,
      'forbidden_namespace',
    ],
    ['parse: not JSON', '/mcp/open', '{"jsonrpc":', {}, 400, 'parse_error'],
    [
      'parse: duplicate ids',
      '/mcp/open',
      JSON.stringify([ping, { ...ping, method: 'tools/list' }]),
      {},
      400,
      'invalid_request',
    ],
    [
      'parse: nested deeper than 64',
      '/mcp/open',
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":${'['.repeat(100)}${']'.repeat(100)}}}}`,
      {},
      400,
      'invalid_request',
    ],
    [
      'session: not ours',
      '/mcp/open',
      JSON.stringify(ping),
      { 'mcp-session-id': 'forged.session' },
      404,
      'unknown_session',
    ],
    [
      'body: over max_body_bytes',
      '/mcp/open',
      JSON.stringify({ ...ping, pad: 'x'.repeat(4096) }),
      {},
      413,
      'payload_too_large',
    ],
  ])('refuses at %s', async (_step, path, body, headers, status, code) => {
    const before = backend.received.length;
    const response = await post(path, body, headers);
    expect(response.status).toBe(status);
    const answer = (await response.json()) as { error: { code: unknown; data?: { code: string } } };
    expect(answer.error.data?.code ?? answer.error.code).toBe(code);
    expect(backend.received.length).toBe(before);
  });

  it('refuses past the limit (429 with Retry-After) and counts the first', async () => {
    const client = new StreamableRawClient([edge], 'limited', key);
    const first = await client.post(ping);
    expect(first.status).toBe(200);
    const before = backend.received.length;
    const second = await post('/mcp/limited', JSON.stringify(ping));
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(backend.received.length).toBe(before);
  });

  it('sends the backend JSON as application/json, and none of the client credentials', async () => {
    const response = await post('/mcp/open', JSON.stringify(ping), {
      'content-type': 'Application/JSON; charset="UTF-8"',
      cookie: 'secret=1',
    });
    expect(response.status).toBe(200);
    const seen = backend.headers[backend.headers.length - 1];
    expect(seen['content-type']).toBe('application/json');
    expect(seen.authorization).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
  });
});

describe('slow and endless bodies', () => {
  /** Opens a raw connection, sends `head`, then feeds `feed` until the edge answers or closes. */
  function trickle(
    head: string,
    feed: (socket: Socket) => void,
  ): Promise<{ status: number; text: string; closedAfterMs: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      const socket = connect(Number(new URL(edge).port), '127.0.0.1', () => {
        socket.write(`${head}\r\n\r\n`);
        feed(socket);
      });
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('error', () => undefined);
      socket.on('close', () =>
        resolve({
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
          text,
          closedAfterMs: Date.now() - started,
        }),
      );
    });
  }

  const head = (framing: string) =>
    [
      'POST /mcp/open HTTP/1.1',
      'Host: edge',
      `Authorization: Bearer ${key}`,
      'Content-Type: application/json',
      'Accept: application/json, text/event-stream',
      framing,
    ].join('\r\n');

  it('answers a body trickled past request_timeout with 408 and closes the connection', async () => {
    let timer: NodeJS.Timeout | undefined;
    const answer = await trickle(head('Content-Length: 1000'), (socket) => {
      timer = setInterval(() => socket.writable && socket.write('{'), 200);
    });
    clearInterval(timer);
    expect(answer.status).toBe(408);
    expect(answer.text).toContain('"code":"request_timeout"');
    expect(answer.text.toLowerCase()).toContain('connection: close');
  });

  it('answers Expect: 100-continue with 413 before the body is sent when it is declared too large, and with 100 Continue otherwise', async () => {
    const refused = await trickle(head('Content-Length: 4096\r\nExpect: 100-continue'), () => {
      // Waits for the answer, as curl does: sends nothing.
    });
    expect(refused.status).toBe(413);
    expect(refused.text).not.toContain('100 Continue');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const accepted = await trickle(
      head(`Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close`),
      (socket) =>
        socket.once('data', (chunk) => {
          if (chunk.toString().startsWith('HTTP/1.1 100 Continue')) socket.write(body);
        }),
    );
    expect(accepted.status).toBe(100);
    expect(accepted.text).toMatch(/\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('stops reading an endless chunked body after its 413, and closes the connection', async () => {
    let timer: NodeJS.Timeout | undefined;
    const answer = await trickle(head('Transfer-Encoding: chunked'), (socket) => {
      const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
      timer = setInterval(() => socket.writable && socket.write(chunk.repeat(8)), 5);
    });
    clearInterval(timer);
    expect(answer.status).toBe(413);
    expect(answer.text).toContain('"code":"payload_too_large"');
  });
});

describe('a body the backend would read differently', () => {
  const express = new ExpressBackend();
  let pair: InProcessGateway;

  beforeAll(async () => {
    await express.start();
    pair = await startInProcessGateway(`
namespaces:
  express: { upstream: { url: "${express.url}" }, tools: { deny: ["get-env"] } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
  });

  afterAll(async () => {
    await pair?.stop();
    await express.stop();
  });

  // "+AGc-et-env" is "get-env" in UTF-7: a backend on body-parser decodes the declared charset.
  const smuggled = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: '+AGc-et-env', arguments: {} },
  });
  const headers = {
    authorization: `Bearer ${key}`,
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };

  it('refuses a hidden tool spelt in UTF-7 (415), and the Express backend runs nothing', async () => {
    const response = await fetch(`${pair.edges[0].url}/mcp/express`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json; charset=utf-7' },
      body: smuggled,
    });
    expect(response.status).toBe(415);
    expect(express.ran).toEqual([]);
  });

  it('sends the same bytes as UTF-8 JSON when declared so: the backend reads the name the gateway checked', async () => {
    const response = await fetch(`${pair.edges[0].url}/mcp/express`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
      body: smuggled,
    });
    expect(response.status).toBe(200);
    expect(JSON.stringify(await response.json())).toContain('+AGc-et-env');
    expect(express.ran).toEqual([]);
  });
});
