import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { RecordingBackend } from '../../../test/support/recording-backend.js';

// Browser MCP clients (`server.cors`, SPEC §3/§4 v2): preflights on every MCP route and on the
// /.well-known metadata are answered for allowed origins (patterns included) and refused for
// others; a preflight carries no credential, so it is never a failed key attempt nor an event;
// every answer to an allowed origin (success, stream or error) lets the page read it.

const key = `key-${randomUUID()}`;
const backend = new RecordingBackend();
let gateway: InProcessGateway;
let edge: string;

const CONFIG = (cors: boolean) => `
server:
  allowed_origins: ["http://localhost:*", "https://*.example.com"]
  cors: ${cors}
namespaces:
  open: { upstream: { url: "${backend.url}" } }
  stdio: { upstream: { command: "${process.execPath}", args: ["${join(ROOT, 'test/support/hostile-stdio.mjs')}"] } }
auth: { max_failures: { count: 3, per: 1m } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`;

beforeAll(async () => {
  await backend.start();
  gateway = await startInProcessGateway(CONFIG(true));
  edge = gateway.edges[0].url;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backend.stop();
});

const EXPOSED = [
  'Mcp-Session-Id',
  'WWW-Authenticate',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Retry-After',
  'X-Request-Id',
  'Mcp-Protocol-Version',
];

function preflight(path: string, origin: string, requestHeaders?: string): Promise<Response> {
  return fetch(`${edge}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      ...(requestHeaders ? { 'access-control-request-headers': requestHeaders } : {}),
    },
  });
}

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-03-26',
    capabilities: {},
    clientInfo: { name: 'page', version: '1' },
  },
});

function post(path: string, origin: string, credential = key): Promise<Response> {
  return fetch(`${edge}${path}`, {
    method: 'POST',
    headers: {
      origin,
      authorization: `Bearer ${credential}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: initialize,
  });
}

describe('CORS preflight', () => {
  it.each([
    ['/mcp/open', 'http://localhost:5173'],
    ['/mcp/open', 'http://localhost'],
    ['/mcp/open/sse', 'http://localhost:6274'],
    ['/mcp/open/messages', 'https://inspector.example.com'],
    ['/mcp/not-a-namespace', 'https://a.b.example.com'],
    ['/.well-known/oauth-protected-resource/mcp/open', 'http://localhost:5173'],
  ])('answers %s from %s with 204 and the CORS headers', async (path, origin) => {
    const response = await preflight(
      path,
      origin,
      'Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Param-Region, traceparent, X-Evil',
    );
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    expect(response.headers.get('vary')).toBe('Origin');
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE, OPTIONS');
    const allowed = response.headers.get('access-control-allow-headers')!.split(', ');
    expect(allowed).toEqual([
      'authorization',
      'content-type',
      'mcp-session-id',
      'mcp-protocol-version',
      'last-event-id',
      'x-api-key',
      'x-request-id',
      'mcp-method',
      'mcp-name',
      'mcp-param-region',
      'traceparent',
    ]);
    expect(Number(response.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(await response.text()).toBe('');
  });

  it.each([
    ['a foreign origin', 'https://evil.example'],
    ['the pattern name inside another', 'https://example.com.evil.com'],
    ['a look-alike of the pattern name', 'https://evilexample.com'],
    ['the pattern name itself (only subdomains match)', 'https://example.com'],
    ['an unlisted local address', 'http://127.0.0.1:5173'],
    ['another scheme', 'https://localhost:5173'],
    ['"null"', 'null'],
  ])('refuses %s with 403 forbidden_origin and no CORS headers', async (_name, origin) => {
    const response = await preflight('/mcp/open', origin);
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const body = (await response.json()) as { error: { code: string } };
    expect(body.error.code).toBe('forbidden_origin');
  });

  it('counts no preflight as a failed key attempt and records none as an event', async () => {
    const ids = new Set<string>();
    // max_failures is 3: were preflights failed attempts, the wrong key below would get 429.
    for (let i = 0; i < 20; i++) {
      const response = await preflight('/mcp/open', 'http://localhost:5173');
      expect(response.status).toBe(204);
      ids.add(response.headers.get('x-request-id')!);
    }
    expect(ids.size).toBe(20);
    const wrong = await post('/mcp/open', 'http://localhost:5173', `wrong-${randomUUID()}`);
    expect(wrong.status).toBe(401);
    await gateway.flush();
    expect(gateway.events.filter((event) => ids.has(event.request_id))).toEqual([]);
  });
});

describe('CORS headers on actual answers to an allowed origin', () => {
  function expectCors(response: Response, origin: string): void {
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    expect(response.headers.get('vary')).toBe('Origin');
    expect(response.headers.get('access-control-expose-headers')?.split(', ')).toEqual(EXPOSED);
  }

  it('exposes Mcp-Session-Id on a relayed answer (pass-through)', async () => {
    const response = await post('/mcp/open', 'http://localhost:5173');
    expect(response.status).toBe(200);
    expect(response.headers.get('mcp-session-id')).toBeTruthy();
    expectCors(response, 'http://localhost:5173');
  });

  it('exposes Mcp-Session-Id on a bridged session’s answer (a lone answer comes as JSON)', async () => {
    const response = await post('/mcp/stdio', 'https://app.example.com');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('mcp-session-id')).toBeTruthy();
    expectCors(response, 'https://app.example.com');
    await response.body?.cancel();
  });

  it.each<[string, () => Promise<Response>, number]>([
    ['a 401', () => post('/mcp/open', 'http://localhost:3000', 'not-a-key-0123456789'), 401],
    ['a 404', () => post('/mcp/nowhere', 'http://localhost:3000'), 404],
    [
      'a 405',
      () =>
        fetch(`${edge}/mcp/open`, { method: 'PUT', headers: { origin: 'http://localhost:3000' } }),
      405,
    ],
  ])('lets the page read %s', async (_name, send, status) => {
    const response = await send();
    expect(response.status).toBe(status);
    expectCors(response, 'http://localhost:3000');
    if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('adds none for a foreign origin (admission refuses it: 403)', async () => {
    const response = await post('/mcp/open', 'https://evil.example');
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('adds none for a request without Origin', async () => {
    const response = await fetch(`${edge}/mcp/open`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: initialize,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('without server.cors', () => {
  let plain: InProcessGateway;
  beforeAll(async () => {
    plain = await startInProcessGateway(CONFIG(false));
  });
  afterAll(() => plain?.stop());

  it('answers OPTIONS 405 as before and adds no CORS headers', async () => {
    const url = plain.edges[0].url;
    const options = await fetch(`${url}/mcp/open`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' },
    });
    expect(options.status).toBe(405);
    expect(options.headers.get('access-control-allow-origin')).toBeNull();
    const response = await fetch(`${url}/mcp/open`, {
      method: 'POST',
      headers: {
        origin: 'http://localhost:5173',
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: initialize,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});
