import { randomUUID } from 'node:crypto';
import { freePort } from '../../../test/support/processes.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';

// How the gateway reads a backend's answer decides whether the tap sees it: media types are
// case-insensitive and carry no charset the client could honour, an answer of another type never
// reaches the client, a JSON-RPC body with an error status crosses the tap too, and a backend
// refusing the gateway's own credentials never sends the client into an OAuth flow.

const HIDDEN = 'get-env';
const key = `key-${randomUUID()}`;
const backends = new HostileBackends();
let gateway: InProcessGateway;
let edge: string;

let closedPort = 0;

beforeAll(async () => {
  await backends.start();
  closedPort = await freePort();
  const hide = `tools: { deny: ["${HIDDEN}"] }`;
  gateway = await startInProcessGateway(`
namespaces:
  json_cased: { upstream: { url: "${backends.url}/json-cased" }, ${hide} }
  sse_cased: { upstream: { url: "${backends.url}/sse-cased" }, ${hide} }
  text: { upstream: { url: "${backends.url}/text" }, ${hide} }
  status_400: { upstream: { url: "${backends.url}/status-400" }, ${hide} }
  refuses: { upstream: { url: "${backends.url}/refuses" }, ${hide} }
  gone: { upstream: { url: "http://127.0.0.1:${closedPort}/private/mcp" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
  edge = gateway.edges[0].url;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backends.stop();
});

async function list(
  namespace: string,
): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(`${edge}/mcp/${namespace}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    text: await res.text(),
    headers: res.headers,
  };
}

describe('a backend that cannot be reached', () => {
  it('is 502 upstream_error whose message names no address, port or path', async () => {
    const answer = await list('gone');
    expect(answer.status).toBe(502);
    const { error } = JSON.parse(answer.text) as {
      error: { message: string; data: { code: string } };
    };
    expect(error.data.code).toBe('upstream_error');
    expect(error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|private|:\d{2,5}/);
    expect(answer.text).not.toContain(String(closedPort));
  });
});

describe('a backend answer is read as clients read it', () => {
  it.each([
    ['Application/JSON', 'json_cased', 'application/json'],
    ['Text/Event-Stream; charset=utf-7', 'sse_cased', 'text/event-stream'],
  ])('%s: filtered, and relayed as its bare media type', async (_type, namespace, expected) => {
    const answer = await list(namespace);
    expect(answer.status).toBe(200);
    expect(answer.type).toBe(expected);
    expect(answer.text).toContain('echo');
    expect(answer.text).not.toContain(HIDDEN);
  });

  it('an answer of another media type never reaches the client: 502 upstream_error', async () => {
    const answer = await list('text');
    expect(answer.status).toBe(502);
    expect(answer.text).not.toContain(HIDDEN);
    expect(JSON.parse(answer.text)).toMatchObject({
      id: 1,
      error: { data: { code: 'upstream_error' } },
    });
  });

  it('a JSON-RPC body with an error status crosses the tap too', async () => {
    const answer = await list('status_400');
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('echo');
    expect(answer.text).not.toContain(HIDDEN);
  });

  it("a backend refusing the gateway's credentials is 502, without its WWW-Authenticate", async () => {
    const answer = await list('refuses');
    expect(answer.status).toBe(502);
    expect(answer.headers.get('www-authenticate')).toBeNull();
    expect(answer.text).not.toContain('10.9.9.9');
    expect(answer.text).not.toContain(HIDDEN);
  });
});
