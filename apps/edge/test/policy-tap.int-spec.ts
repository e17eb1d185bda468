import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT, tempDir } from '../../../test/support/processes.js';
import {
  LegacyRawClient,
  type Message,
  StreamableRawClient,
} from '../../../test/support/raw-client.js';

// The one policy tap (SPEC §4 behaviours 8 and 11), in process against hostile wire-level
// backends of every kind: each leak class an attacker tried, on every delivery path. The
// backends list `get-env`, which every namespace hides, answer every request with the whole
// tools array, and answer requests nobody made; the hidden tool must never be listed, called,
// or even seen in any byte a client receives.

const HIDDEN = 'get-env';
const key = `key-${randomUUID()}`;
const dir = tempDir('tap');
const stdioLog = join(dir, 'stdio.jsonl');
writeFileSync(stdioLog, '');
const backends = new HostileBackends();
let gateway: InProcessGateway;

/** How a test client reaches a namespace: its transport, and which edge serves it. */
interface Kind {
  ns: string;
  client: 'streamable' | 'legacy';
  /** Requests after initialize go to the second edge, which forwards them to the first. */
  forwarded?: boolean;
  /** A pass-through kind: GET streams reach the backend (and may be resumed). */
  passthrough?: boolean;
}

const KINDS: Array<[string, Kind]> = [
  ['HTTP pass-through, JSON answers', { ns: 'http_json', client: 'streamable', passthrough: true }],
  ['HTTP pass-through, SSE answers', { ns: 'http_sse', client: 'streamable', passthrough: true }],
  [
    'HTTP pass-through, SSE starting with a BOM',
    { ns: 'http_bom', client: 'streamable', passthrough: true },
  ],
  ['stdio', { ns: 'stdio', client: 'streamable' }],
  ['legacy SSE backend', { ns: 'legacy', client: 'streamable' }],
  ['legacy SSE backend, stream starting with a BOM', { ns: 'legacy_bom', client: 'streamable' }],
  ['legacy SSE client (on an HTTP backend)', { ns: 'http_sse', client: 'legacy' }],
  ['legacy SSE client on stdio', { ns: 'stdio', client: 'legacy' }],
  [
    'a stdio session forwarded from another edge',
    { ns: 'stdio', client: 'streamable', forwarded: true },
  ],
];

/**
 * What every kind's client can do: send one body, and see every byte and message it got back
 * (a legacy client: the POST's answer and what its stream carried meanwhile).
 */
interface Conversation {
  send(
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; text: string; messages: Message[] }>;
  close(): void;
}

async function converse(kind: Kind): Promise<Conversation> {
  const edges = gateway.edges.map((edge) => edge.url);
  if (kind.client === 'legacy') {
    const client = new LegacyRawClient(edges[0], kind.ns, key);
    await client.initialize();
    return {
      send: async (body, headers) => {
        const from = client.text.length;
        const { status, text } = await client.post(body, headers);
        const ids = requestIds(body);
        if (status === 202 && ids.length > 0) await client.answersTo(ids);
        if (status === 202) await settle();
        const streamed = client.text.slice(from);
        // A refused POST is answered in its own body; accepted ones on the stream.
        const messages = status === 202 ? parseStream(streamed) : [JSON.parse(text) as Message];
        return { status, text: text + streamed, messages };
      },
      close: () => client.close(),
    };
  }
  const client = new StreamableRawClient(edges, kind.ns, key);
  await client.initialize('2025-03-26');
  const route = kind.forwarded ? [edges[1]] : edges.slice(0, 1);
  const onRoute = new StreamableRawClient(route, kind.ns, key);
  onRoute.sessionId = client.sessionId;
  return {
    send: (body, headers) =>
      onRoute.post(body, { 'mcp-protocol-version': '2025-03-26', ...headers }),
    close: () => undefined,
  };
}

function requestIds(body: unknown): Array<string | number> {
  const messages = (Array.isArray(body) ? body : [body]) as Message[];
  return messages
    .filter((m) => m.id !== undefined && m.method !== undefined)
    .map((m) => m.id as string | number);
}

function parseStream(text: string): Message[] {
  return text
    .split('\n\n')
    .map((event) => /^data: (.*)$/m.exec(event)?.[1])
    .filter((data): data is string => data !== undefined && data.startsWith('{'))
    .map((data) => JSON.parse(data) as Message);
}

/** What the client learnt, less the gateway's own echo of the name it sent (`Tool not found: …`). */
function unseen(text: string): string {
  return text.replaceAll(`Tool not found: ${HIDDEN}`, '');
}

/** Lets whatever the gateway would still send arrive (a legacy client's answers are streamed). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

/** tools/call names that reached a backend of any kind. */
function backendToolCalls(): string[] {
  const stdio = readFileSync(stdioLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Message)
    .filter((m) => m.method === 'tools/call')
    .map((m) => String((m.params as { name?: unknown }).name));
  return [...stdio, ...backends.toolCalls];
}

const call = (name: string, id?: number | string, args: Message = {}) => ({
  jsonrpc: '2.0',
  ...(id === undefined ? {} : { id }),
  method: 'tools/call',
  params: { name, arguments: args },
});

beforeAll(async () => {
  await backends.start();
  const stdio = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/hostile-stdio.mjs')}"], env: { HOSTILE_LOG: "${stdioLog}" }`;
  const hide = `tools: { deny: ["${HIDDEN}"] }, timeout_ms: 1000`;
  gateway = await startInProcessGateway(
    `
namespaces:
  http_json: { upstream: { url: "${backends.url}/json" }, ${hide} }
  http_sse: { upstream: { url: "${backends.url}/sse" }, ${hide} }
  http_bom: { upstream: { url: "${backends.url}/sse-bom" }, ${hide} }
  stdio: { upstream: { ${stdio} }, ${hide} }
  legacy: { upstream: { url: "${backends.url}/legacy/sse", transport: sse }, ${hide} }
  legacy_bom: { upstream: { url: "${backends.url}/legacy-bom/sse", transport: sse }, ${hide} }
keys:
  - { id: tap, key: "${key}", namespaces: ["*"] }
`,
    { edges: 2 },
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await backends.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(KINDS)('the policy tap on %s', (_name, kind) => {
  let conversation: Conversation;
  beforeAll(async () => {
    conversation = await converse(kind);
  });
  afterAll(() => conversation?.close());

  // Each case: what the client sends, and what it must (not) see. In every case the hidden
  // tool's name appears in no byte the client receives, and its call never reaches a backend.
  it.each<
    [
      string,
      unknown,
      (answer: { status: number; messages: Message[] }) => void,
      Record<string, string>?,
    ]
  >([
    [
      'tools/list is filtered, its nextCursor kept',
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      ({ messages }) => {
        const list = messages.find((m) => m.id === 1)?.result as Message & { tools: Message[] };
        expect(list.tools.map((tool) => tool.name)).toEqual(['echo']);
        expect(list.nextCursor).toBe('page-2');
      },
    ],
    [
      'a later tools/list page is filtered too',
      { jsonrpc: '2.0', id: 11, method: 'tools/list', params: { cursor: 'page-2' } },
      ({ messages }) => {
        const list = messages.find((m) => m.id === 11)?.result as { tools: Message[] };
        expect(list.tools.map((tool) => tool.name)).toEqual(['echo']);
      },
    ],
    [
      'a 2026-07-28 call whose Mcp-Name disagrees with its body is refused (400, -32020)',
      {
        ...call(HIDDEN, 12),
        params: {
          name: HIDDEN,
          arguments: {},
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': {},
          },
        },
      },
      ({ status, messages }) => {
        expect(status).toBe(400);
        expect(messages[0]).toMatchObject({ error: { code: -32020 } });
      },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    ],
    [
      'a hidden tools/call gets -32602 and never reaches the backend',
      call(HIDDEN, 2),
      ({ messages }) => {
        expect(messages.find((m) => m.id === 2)).toMatchObject({
          error: { code: -32602, message: `Tool not found: ${HIDDEN}` },
        });
      },
    ],
    [
      'a hidden tools/call sent as a notification is never forwarded',
      call(HIDDEN),
      () => undefined,
    ],
    [
      'a batch: the hidden call answered here, the visible one forwarded',
      [call(HIDDEN, 3), call('echo', 4)],
      ({ messages }) => {
        expect(messages.find((m) => m.id === 3)).toMatchObject({ error: { code: -32602 } });
        expect(messages.find((m) => m.id === 4)).toHaveProperty('result');
      },
    ],
    [
      'two requests with one id in a batch are refused whole (400, -32600)',
      [
        { jsonrpc: '2.0', id: 7, method: 'tools/list' },
        { jsonrpc: '2.0', id: 7, method: 'ping' },
      ],
      ({ status, messages }) => {
        expect(status).toBe(400);
        expect(messages[0]).toMatchObject({ error: { code: -32600 } });
      },
    ],
    [
      'a ping whose answer carries the tools array is filtered by what it is',
      { jsonrpc: '2.0', id: 8, method: 'ping' },
      ({ messages }) => {
        const result = messages.find((m) => m.id === 8)?.result as { tools: Message[] };
        expect(result.tools.map((tool) => tool.name)).toEqual(['echo']);
      },
    ],
    [
      'an answer to a request nobody made, carrying tools, never shows the hidden tool',
      call('echo', 9, { stray: true }),
      ({ messages }) => {
        expect(messages.find((m) => m.id === 9)).toHaveProperty('result');
      },
    ],
    // (headers as a rest parameter: a fourth named one would make jest pass `done` in it)
  ])('%s', async (_case, body, check, ...[headers]) => {
    const before = backendToolCalls().length;
    const answer = await conversation.send(body, headers);
    check(answer);
    expect(unseen(answer.text)).not.toContain(HIDDEN);
    expect(backendToolCalls().slice(before)).not.toContain(HIDDEN);
  });

  if (kind.passthrough) {
    it('a GET stream resumed with Last-Event-ID replays a tools/list answer, filtered', async () => {
      const client = new StreamableRawClient([gateway.edges[0].url], kind.ns, key);
      await client.initialize();
      const answer = await client.get({ 'last-event-id': '7' });
      expect(answer.status).toBe(200);
      const replayed = answer.messages.find((m) => m.id === 7)?.result as { tools: Message[] };
      expect(replayed.tools.map((tool) => tool.name)).toEqual(['echo']);
      expect(answer.text).not.toContain(HIDDEN);
    });
  }

  it('answers a backend that never answers with 504 / -32054, as every kind does', async () => {
    const answer = await conversation.send(call('slow', 'slow-1'));
    expect(answer.messages.find((m) => m.id === 'slow-1')).toMatchObject({
      error: { code: -32054, data: { code: 'upstream_timeout' } },
    });
    if (kind.passthrough) expect(answer.status).toBe(504);
  });
});
