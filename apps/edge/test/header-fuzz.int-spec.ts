import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import fc from 'fast-check';
import { eventually } from '../../../test/support/eventually.js';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import {
  type Message,
  sseMessages,
  StreamableRawClient,
} from '../../../test/support/raw-client.js';

// Generated request headers against the whole edge, in process, over raw sockets (so header
// names keep the client's case, headers repeat, and the body is framed as the client likes):
// a `tools/call` of a hidden tool and of an allowed one, with a valid key, on pass-through
// namespaces (JSON and SSE answers) and a bridged one (a legacy SSE backend). Whatever the
// headers, the edge never answers 5xx, every answer carries a sane X-Request-Id, a refusal is the
// JSON of SPEC §4 and reaches no backend, the hidden tool never runs, and a backend sees
// `Content-Type: application/json` and none of the client's credentials.

const key = `key-${randomUUID()}`;
const COOKIE = `cookie-${randomUUID()}`;
const MARK = `mark-${randomUUID()}`;
const PROXY_SECRET = `proxy-${randomUUID()}`;
const UPSTREAM_TOKEN = `Bearer upstream-${randomUUID()}`;
const HIDDEN = 'get-env';
const ALLOWED_ORIGIN = 'https://app.example';
const backend = new HostileBackends();
let gateway: InProcessGateway;
let port: number;
/** A session of each namespace, opened with an initialize. */
const sessions: Record<string, string> = {};

const NAMESPACES = ['json', 'sse', 'legacy'] as const;
type Namespace = (typeof NAMESPACES)[number];

beforeAll(async () => {
  await backend.start();
  gateway = await startInProcessGateway(`
server: { allowed_origins: ["${ALLOWED_ORIGIN}"], max_body_bytes: 65536, request_timeout: 5s }
rate_limits: { default: { requests: 1000000, per: 1m } }
namespaces:
  json:
    upstream: { url: "${backend.url}/json", headers: { Authorization: "${UPSTREAM_TOKEN}" } }
    tools: { deny: ["${HIDDEN}"] }
  sse: { upstream: { url: "${backend.url}/sse" }, tools: { deny: ["${HIDDEN}"] } }
  legacy:
    upstream: { url: "${backend.url}/legacy/sse", transport: sse }
    tools: { deny: ["${HIDDEN}"] }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
`);
  const edge = gateway.edges[0].url;
  port = Number(new URL(edge).port);
  for (const ns of NAMESPACES) {
    const client = new StreamableRawClient([edge], ns, key);
    const answer = await client.initialize('2025-06-18');
    if (answer.status !== 200 || !client.sessionId)
      throw new Error(`initialize ${ns}: ${answer.status}`);
    sessions[ns] = client.sessionId;
  }
  // A bridged session passes notifications/initialized on after answering it: wait for it, so
  // nothing of the setup is taken for a message of a generated request.
  await eventually(
    () =>
      backend.received.filter((m) => m.method === 'notifications/initialized').length ===
      NAMESPACES.length,
    5_000,
    'every notifications/initialized at the backend',
    10,
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backend.stop();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request on its own connection, exactly as given; the whole answer once the edge closes. */
function exchange(head: string, body: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('close', () => {
      try {
        resolve(parseAnswer(Buffer.concat(chunks)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** An HTTP/1.1 answer read to the end of the connection (interim 1xx answers skipped). */
function parseAnswer(raw: Buffer): RawAnswer {
  let text = raw.toString('latin1');
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end === -1) throw new Error(`no complete answer: ${JSON.stringify(text.slice(0, 200))}`);
    const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]);
    let rest = text.slice(end + 4);
    if (status >= 100 && status < 200) {
      text = rest;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      let body = '';
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, lineEnd), 16);
        if (!(size > 0)) break;
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        rest = rest.slice(lineEnd + 2 + size + 2);
      }
      rest = body;
    }
    return { status, headers, body: Buffer.from(rest, 'latin1').toString('utf8') };
  }
}

// ---------------------------------------------------------------------------------------------
// What a client sends. Header values hold anything Node's parser takes: visible ASCII, spaces,
// tabs and Latin-1 bytes (control characters and CR/LF end the connection before any handler).

const valueChar = fc.oneof(
  { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\t', ' ') },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((code) => String.fromCharCode(code)),
  },
);
const junk = fc
  .string({ unit: valueChar, minLength: 1, maxLength: 40 })
  .map((text) => text.trim())
  .filter((text) => text.length > 0);
const longJunk = fc
  .tuple(junk, fc.integer({ min: 10, max: 200 }))
  .map(([text, times]) => text.repeat(times).slice(0, 1_000).trim());
const garbage = fc.oneof({ weight: 4, arbitrary: junk }, { weight: 1, arbitrary: longJunk });

/** A header as the client writes it: its name in any case, possibly sent twice. */
interface Line {
  name: string;
  value: string;
}

/** Absent in `absent` cases out of 10, so that enough requests get past each refusal. */
const maybe = <T>(arbitrary: fc.Arbitrary<T>, absent: number) =>
  fc.oneof(
    { weight: absent, arbitrary: fc.constant(undefined) },
    { weight: 10 - absent, arbitrary },
  );
const weighted = <T>(...choices: Array<[number, fc.Arbitrary<T>]>) =>
  fc.oneof(...choices.map(([weight, arbitrary]) => ({ weight, arbitrary })));

type Label = 'good' | 'bad' | 'unknown';

const ows = fc.constantFrom('', ' ', '\t');
const contentType: fc.Arbitrary<{ value: string; label: Label }> = fc.oneof(
  fc
    .tuple(
      fc.mixedCase(fc.constantFrom('application/json')),
      fc.option(
        fc
          .tuple(ows, ows, fc.mixedCase(fc.constantFrom('charset=utf-8', 'charset="utf-8"')))
          .map(([a, b, p]) => `${a};${b}${p}`),
        { nil: '' },
      ),
    )
    .map(([essence, parameter]) => ({ value: essence + parameter, label: 'good' as const })),
  fc
    .tuple(
      fc.mixedCase(
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
      ),
      ows,
      fc.mixedCase(
        fc.constantFrom(
          'utf-7',
          'utf-16',
          'utf-16le',
          'utf-32',
          'iso-8859-1',
          'latin1',
          'windows-1252',
          '"utf-7"',
        ),
      ),
    )
    .map(([essence, space, charset]) => ({
      value: `${essence};${space}charset=${charset}`,
      label: 'bad' as const,
    })),
  fc
    .mixedCase(
      fc.constantFrom('text/plain', 'text/json', 'application/jsonx', 'multipart/form-data'),
    )
    .map((value) => ({ value, label: 'bad' as const })),
  fc
    .tuple(fc.mixedCase(fc.constantFrom('application/json')), ows, fc.string({ maxLength: 20 }))
    .map(([essence, space, parameter]) => ({
      value: `${essence};${space}${parameter}`.trim(),
      label: 'unknown' as const,
    })),
  garbage.map((value) => ({ value, label: 'unknown' as const })),
);

const contentEncoding = fc.oneof(
  fc.mixedCase(
    fc.constantFrom('gzip', 'deflate', 'br', 'x-gzip', 'identity, gzip', 'gzip, identity'),
  ),
  fc.mixedCase(fc.constantFrom('identity')),
  garbage,
);

/** Origin: the allowed one, or one refused under any reading of the allow list. */
const origin = weighted<string>(
  [3, fc.constant(ALLOWED_ORIGIN)],
  [
    2,
    fc.constantFrom(
      'https://evil.example',
      'null',
      'http://localhost:3000',
      'https://app.example.evil.example',
      'https://evilapp.example',
      'http://app.example',
      'https://app.example:8443',
    ),
  ],
  [1, garbage],
);

const protocolVersion = weighted(
  [3, fc.constantFrom('2025-06-18', '2025-03-26', '2025-11-25', '2024-11-05', '2026-07-28')],
  [1, garbage],
);

type SessionChoice = 'own' | 'other-namespace' | 'tampered' | 'garbage';

interface Generated {
  namespace: Namespace;
  /** Which session id goes with the request, if any. */
  session?: { choice: SessionChoice; garbage: string; flip: number };
  credential: { name: string; value: string };
  contentType?: { value: string; label: Label };
  contentEncoding?: string;
  origin?: string;
  requestId?: string;
  protocolVersion?: string;
  accept?: string;
  mcpMethod?: string;
  mcpName?: string;
  cookie: boolean;
  proxyAuthorization: boolean;
  forgedMark: boolean;
  /** Names of headers sent twice (the same value again, or another). */
  twice: Array<{ name: string; value: string }>;
  framing: 'length' | 'chunked' | 'gzip-chunked' | 'expect-continue';
  userAgent?: string;
}

const generated: fc.Arbitrary<Generated> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  session: maybe(
    fc.record({
      choice: weighted<SessionChoice>(
        [6, fc.constant('own')],
        [1, fc.constant('other-namespace')],
        [1, fc.constant('tampered')],
        [1, fc.constant('garbage')],
      ),
      garbage,
      flip: fc.nat(),
    }),
    3,
  ),
  credential: fc.oneof(
    fc
      .tuple(
        fc.mixedCase(fc.constantFrom('Authorization')),
        fc.mixedCase(fc.constantFrom('Bearer')),
        fc.constantFrom(' ', '\t', '  '),
      )
      .map(([name, scheme, space]) => ({ name, value: `${scheme}${space}${key}` })),
    fc.mixedCase(fc.constantFrom('X-API-Key')).map((name) => ({ name, value: key })),
  ),
  contentType: weighted<Generated['contentType']>(
    [14, contentType.filter((t) => t.label === 'good')],
    [5, contentType],
    [1, fc.constant(undefined)],
  ),
  contentEncoding: maybe(contentEncoding, 8),
  origin: maybe(origin, 7),
  requestId: maybe(
    fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9._:@/+=-]{1,128}$/), garbage, longJunk),
    3,
  ),
  protocolVersion: maybe(protocolVersion, 5),
  accept: maybe(
    weighted(
      [6, fc.constant('application/json, text/event-stream')],
      [1, fc.constantFrom('text/event-stream', 'application/json', '*/*')],
      [1, garbage],
    ),
    2,
  ),
  mcpMethod: maybe(fc.oneof(fc.constant('tools/call'), garbage), 7),
  mcpName: maybe(fc.oneof(fc.constantFrom(HIDDEN, 'echo'), garbage), 7),
  cookie: fc.boolean(),
  proxyAuthorization: fc.boolean(),
  forgedMark: fc.boolean(),
  twice: fc.array(
    fc.record({
      name: fc.mixedCase(
        weighted(
          [4, fc.constantFrom('x-request-id', 'mcp-session-id', 'accept', 'cookie', 'user-agent')],
          [
            1,
            fc.constantFrom('content-type', 'content-encoding', 'origin', 'mcp-protocol-version'),
          ],
        ),
      ),
      value: garbage,
    }),
    { maxLength: 2 },
  ),
  framing: fc.constantFrom('length', 'chunked', 'gzip-chunked', 'expect-continue'),
  userAgent: maybe(garbage, 5),
});

/** The session id to send for a choice. */
function sessionId(namespace: Namespace, session: NonNullable<Generated['session']>): string {
  const own = sessions[namespace];
  switch (session.choice) {
    case 'own':
      return own;
    case 'other-namespace':
      return sessions[namespace === 'json' ? 'sse' : 'json'];
    case 'tampered': {
      const at = session.flip % own.length;
      const flipped = own[at] === 'A' ? 'B' : 'A';
      return own.slice(0, at) + flipped + own.slice(at + 1);
    }
    case 'garbage':
      return session.garbage;
  }
}

/** The header lines of a generated request, in the client's order and case. */
function linesOf(g: Generated): Line[] {
  const lines: Line[] = [{ name: g.credential.name, value: g.credential.value }];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) lines.push({ name, value });
  };
  add('Content-Type', g.contentType?.value);
  add('Content-Encoding', g.contentEncoding);
  add('Origin', g.origin);
  add('X-Request-Id', g.requestId);
  add('Mcp-Session-Id', g.session && sessionId(g.namespace, g.session));
  add('MCP-Protocol-Version', g.protocolVersion);
  add('Accept', g.accept);
  add('Mcp-Method', g.mcpMethod);
  add('Mcp-Name', g.mcpName);
  add('User-Agent', g.userAgent);
  if (g.cookie) add('Cookie', `session=${COOKIE}`);
  if (g.proxyAuthorization) add('Proxy-Authorization', `Basic ${PROXY_SECRET}`);
  if (g.forgedMark) add('X-Mcp-Gateway-Forwarded', MARK);
  for (const extra of g.twice) {
    // Repeated after the first, as a second line: Node keeps the first Content-Type, joins others.
    const first = lines.find((l) => l.name.toLowerCase() === extra.name.toLowerCase());
    lines.push({
      name: extra.name,
      value: first && extra.value.length % 2 === 0 ? first.value : extra.value,
    });
  }
  return lines;
}

/** What Node makes of the lines: the first Content-Type, every other repeated header joined. */
function seen(lines: Line[], name: string): string | undefined {
  const values = lines.filter((l) => l.name.toLowerCase() === name).map((l) => l.value);
  if (values.length === 0) return undefined;
  if (name === 'content-type' || name === 'user-agent') return values[0];
  return values.join(name === 'cookie' ? '; ' : ', ');
}

function request(g: Generated, lines: Line[], body: Buffer): { head: string; payload: Buffer } {
  const head = [`POST /mcp/${g.namespace} HTTP/1.1`, 'Host: gateway.example', 'Connection: close'];
  for (const line of lines) head.push(`${line.name}: ${line.value}`);
  let payload = body;
  switch (g.framing) {
    case 'length':
      head.push(`Content-Length: ${body.length}`);
      break;
    case 'expect-continue':
      head.push(`Content-Length: ${body.length}`, 'Expect: 100-continue');
      break;
    case 'chunked':
    case 'gzip-chunked':
      head.push(`Transfer-Encoding: ${g.framing === 'chunked' ? 'Chunked' : 'gzip, chunked'}`);
      payload = Buffer.concat([
        Buffer.from(`${body.length.toString(16)}\r\n`),
        body,
        Buffer.from('\r\n0\r\n\r\n'),
      ]);
  }
  return { head: `${head.join('\r\n')}\r\n\r\n`, payload };
}

const SANE_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
let nextId = 1;

/** The JSON-RPC messages of an answer body (JSON or SSE). */
function messagesOf(answer: RawAnswer): Message[] {
  if ((answer.headers['content-type'] ?? '').startsWith('text/event-stream'))
    return sseMessages(answer.body);
  const value = JSON.parse(answer.body) as Message | Message[];
  return Array.isArray(value) ? value : [value];
}

/** Sends one generated request with a tools/call of `tool`, and checks every property. */
async function check(g: Generated, tool: string): Promise<void> {
  const id = nextId++;
  const body = Buffer.from(
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: tool, arguments: {} },
    }),
  );
  const lines = linesOf(g);
  const { head, payload } = request(g, lines, body);
  const receivedBefore = backend.received.length;
  const headersBefore = backend.headers.length;
  const answer = await exchange(head, payload);
  const reached = backend.received.slice(receivedBefore);
  const backendHeaders = backend.headers.slice(headersBefore);
  const context = { head, status: answer.status, body: answer.body.slice(0, 300) };

  // Never a fault of the gateway's, whatever the headers.
  expect({ ...context, serverError: answer.status >= 500 }).toMatchObject({ serverError: false });

  // Every answer names its request with a sane id: the client's own when it sent one sane id.
  const requestId = answer.headers['x-request-id'];
  expect(requestId).toMatch(SANE_ID);
  const sentIds = lines.filter((l) => l.name.toLowerCase() === 'x-request-id');
  if (sentIds.length === 1 && SANE_ID.test(sentIds[0].value))
    expect(requestId).toBe(sentIds[0].value);

  // Which refusal SPEC §4 makes first, where the headers decide it for certain.
  const originSent = seen(lines, 'origin');
  const typeSent = seen(lines, 'content-type');
  const encodingSent = seen(lines, 'content-encoding');
  const sessionSent = seen(lines, 'mcp-session-id');
  let expected: { status: number; code: string } | undefined;
  if (originSent !== undefined && originSent !== ALLOWED_ORIGIN) {
    expected = { status: 403, code: 'forbidden_origin' };
  } else if (
    (encodingSent !== undefined && encodingSent.toLowerCase() !== 'identity') ||
    typeSent === undefined ||
    (typeSent === g.contentType?.value && g.contentType.label === 'bad')
  ) {
    expected = { status: 415, code: 'unsupported_media_type' };
  } else if (
    typeSent === g.contentType?.value &&
    g.contentType.label === 'good' &&
    sessionSent !== undefined &&
    sessionSent !== sessions[g.namespace]
  ) {
    expected = { status: 404, code: 'unknown_session' };
  }
  if (expected)
    expect({ ...context, status: answer.status }).toMatchObject({ status: expected.status });

  if (answer.status >= 400) {
    // A refusal: JSON per SPEC §4, a JSON-RPC error answering the request's id, and nothing of it
    // reached a backend.
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const refusal = JSON.parse(answer.body) as {
      jsonrpc?: string;
      id?: unknown;
      error: { code: unknown; message: unknown; data?: { code: string; requestId: string } };
    };
    expect(refusal.jsonrpc).toBe('2.0');
    expect(refusal.id).toBe(id);
    expect(typeof refusal.error.code).toBe('number');
    expect(typeof refusal.error.message).toBe('string');
    expect(refusal.error.data?.requestId).toBe(requestId);
    if (expected) expect(refusal.error.data?.code).toBe(expected.code);
    expect(reached).toEqual([]);
  } else {
    expect(expected).toBeUndefined();
    const answered = messagesOf(answer).find((m) => m.id === id);
    expect(answered).toBeDefined();
    if (tool === HIDDEN) {
      expect(answered).toMatchObject({ error: { code: -32602 } });
    } else {
      expect(answered).toHaveProperty('result');
      expect(reached.map((m) => (m.params as { name?: string } | undefined)?.name)).toContain(tool);
    }
  }

  // The hidden tool never reaches a backend, in any request so far.
  expect(backend.toolCalls).not.toContain(HIDDEN);

  // What reached a backend: JSON as application/json, none of the client's credentials, the
  // mark or its Host; the configured token where one is configured.
  for (const headers of backendHeaders) {
    const withBody =
      (headers['content-length'] ?? '0') !== '0' || headers['transfer-encoding'] !== undefined;
    if (withBody || headers['content-type'] !== undefined)
      expect(headers['content-type']).toBe('application/json');
    const all = JSON.stringify(headers);
    for (const secret of [key, COOKIE, MARK, PROXY_SECRET]) expect(all).not.toContain(secret);
    expect(headers.cookie).toBeUndefined();
    expect(headers['x-api-key']).toBeUndefined();
    expect(headers['proxy-authorization']).toBeUndefined();
    expect(headers['content-encoding']).toBeUndefined();
    expect(headers.origin).toBeUndefined();
    expect(headers.host).toBe(new URL(backend.url).host);
    if (g.namespace === 'json') expect(headers.authorization).toBe(UPSTREAM_TOKEN);
    else expect(headers.authorization).toBeUndefined();
  }
  if (g.namespace !== 'legacy' && backendHeaders.length > 0)
    expect(backendHeaders.map((h) => h['x-request-id'])).toContain(requestId);
}

describe('request headers, generated, against the whole edge', () => {
  it('never 5xx, always a sane X-Request-Id, refusals per SPEC §4, nothing hidden or secret passes', async () => {
    await fc.assert(
      fc.asyncProperty(generated, async (g) => {
        await check(g, HIDDEN);
        await check(g, 'echo');
      }),
      { numRuns: 600 },
    );
  });
});
