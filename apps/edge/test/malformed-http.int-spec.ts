import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';

// Requests Node's HTTP parser refuses never reach the router, yet their answers are the
// gateway's like every other (SPEC §4): JSON, an X-Request-Id, then the connection closes; and
// nothing of them reaches a backend.

const key = `key-${randomUUID()}`;
const backends = new HostileBackends();
let gateway: InProcessGateway;
let port: number;

beforeAll(async () => {
  await backends.start();
  gateway = await startInProcessGateway(`
namespaces:
  open: { upstream: { url: "${backends.url}/json" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
  port = gateway.edges[0].port;
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backends.stop();
});

/** Sends raw bytes; resolves with everything the edge wrote once it closed the connection. */
function exchange(head: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no close; got ${text}`)));
    socket.write(`${head}\r\n\r\n${body}`);
  });
}

const ping = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo' },
});
const start = () =>
  `POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
  `Content-Type: application/json\r\nAccept: application/json, text/event-stream`;

describe('requests the HTTP parser refuses', () => {
  it.each<[string, string, string, number]>([
    ['Content-Length twice', `\r\nContent-Length: ${ping.length}\r\nContent-Length: 2`, ping, 400],
    [
      'Transfer-Encoding with Content-Length',
      `\r\nTransfer-Encoding: chunked\r\nContent-Length: ${ping.length}`,
      `${ping.length.toString(16)}\r\n${ping}\r\n0\r\n\r\n`,
      400,
    ],
    ['an unknown Transfer-Encoding', '\r\nTransfer-Encoding: gzip', ping, 400],
    [
      'a control character in a header',
      `\r\nX-Odd: a\x01b\r\nContent-Length: ${ping.length}`,
      ping,
      400,
    ],
    ['a folded header line', `\r\nX-Folded: a\r\n  b\r\nContent-Length: ${ping.length}`, ping, 400],
    [
      'headers over 16 KiB',
      `\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: ${ping.length}`,
      ping,
      431,
    ],
    [
      'an Expect other than 100-continue',
      `\r\nExpect: foo\r\nContent-Length: ${ping.length}`,
      ping,
      400,
    ],
  ])('%s: a JSON answer with an X-Request-Id, then close', async (_name, headers, body, status) => {
    const before = backends.received.length;
    const answer = await exchange(start() + headers, body);
    const [head, json] = answer.split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toMatch(/\r\ncontent-type: application\/json/i);
    expect(head).toMatch(/\r\nx-request-id: [0-9a-f-]{36}/i);
    expect(head).toMatch(/\r\nconnection: close/i);
    expect(JSON.parse(json)).toMatchObject({ error: { code: 'bad_request' } });
    expect(backends.received.length).toBe(before);
  });
});
