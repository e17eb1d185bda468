import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostileBackends } from '../../../test/support/hostile-backends.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { OtlpReceiver, type ReceivedSpan } from '../../../test/support/otlp-receiver.js';
import { eventually, ROOT, tempDir } from '../../../test/support/processes.js';
import { type Message, StreamableRawClient } from '../../../test/support/raw-client.js';
import { RecordingBackend } from '../../../test/support/recording-backend.js';

// Traces (SPEC §8): the edge exports spans over OTLP/HTTP following the MCP semantic conventions,
// continues the client's W3C trace context (its `traceparent` header, or `params._meta`) and
// hands its own span to the backend. Checked on the wire: a real OTLP/HTTP receiver decodes what
// the edge sends, and the backends record what reached them. With traces off, the client's
// context passes through unchanged and nothing is invented or sent.

const key = `key-${randomUUID()}`;
const dir = tempDir('traces');
const stdioLog = join(dir, 'stdio.jsonl');
writeFileSync(stdioLog, '');
const receiver = new OtlpReceiver();
const hostile = new HostileBackends();
const recording = new RecordingBackend();
let traced: InProcessGateway;
let untraced: InProcessGateway;

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

const traceId = () => randomBytes(16).toString('hex');
const spanId = () => randomBytes(8).toString('hex');

const call = (name: string, id: number | string, params: Message = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {}, ...params },
});

beforeAll(async () => {
  await Promise.all([receiver.start(), hostile.start(), recording.start()]);
  const stdio = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/hostile-stdio.mjs')}"], env: { HOSTILE_LOG: "${stdioLog}" }`;
  const yaml = `
namespaces:
  json: { upstream: { url: "${hostile.url}/json" } }
  filtered: { upstream: { url: "${hostile.url}/json" }, tools: { deny: ["get-env"] } }
  recording: { upstream: { url: "${new URL('/stateless', recording.url).href}" } }
  stdio: { upstream: { ${stdio} } }
keys:
  - { id: traces, key: "${key}", namespaces: ["*"] }
`;
  traced = await startInProcessGateway(yaml, { traces: { url: `${receiver.url}/v1/traces` } });
  untraced = await startInProcessGateway(yaml);
}, 30_000);

afterAll(async () => {
  await traced?.stop();
  await untraced?.stop();
  await Promise.all([receiver.stop(), hostile.stop(), recording.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** The spans of one trace once the edge exported them: `count` of them, or fails. */
async function spansOf(trace: string, count: number): Promise<ReceivedSpan[]> {
  return eventually(
    async () => {
      await traced.flush();
      const spans = receiver.trace(trace);
      return spans.length >= count ? spans : undefined;
    },
    5_000,
    `${count} spans of trace ${trace}`,
    20,
  );
}

function one(spans: ReceivedSpan[], kind: number): ReceivedSpan {
  const found = spans.filter((span) => span.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
}

/** The headers of the backend request the edge sent for one client request (by its request id). */
function backendHeaders(requestId: string) {
  const found = hostile.headers.filter((headers) => headers['x-request-id'] === requestId);
  expect(found).toHaveLength(1);
  return found[0];
}

function received(id: string): Message {
  const found = hostile.received.filter((message) => message.id === id);
  expect(found).toHaveLength(1);
  return found[0];
}

function metaOf(message: Message): Record<string, unknown> | undefined {
  return (message.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
}

describe('traces on', () => {
  it("continues the client's traceparent header in a `tools/call echo` server span, and hands the backend its client span", async () => {
    const [trace, parent] = [traceId(), spanId()];
    const client = new StreamableRawClient([traced.edges[0].url], 'json', key);
    await client.initialize('2025-06-18');
    const answer = await client.post(call('echo', 'call-1'), {
      'mcp-protocol-version': '2025-06-18',
      traceparent: `00-${trace}-${parent}-01`,
      tracestate: 'vendor=opaque',
      'x-request-id': 'trace-header-1',
    });
    expect(answer.status).toBe(200);

    const spans = await spansOf(trace, 2);
    expect(spans).toHaveLength(2);
    const server = one(spans, SERVER);
    expect(server.name).toBe('tools/call echo');
    expect(server.parentSpanId).toBe(parent);
    expect(server.attributes).toEqual({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'gen_ai.operation.name': 'execute_tool',
      'jsonrpc.request.id': 'call-1',
      'mcp.session.id': client.sessionId,
      'mcp.protocol.version': '2025-06-18',
      'network.transport': 'tcp',
      'network.protocol.name': 'http',
      'network.protocol.version': '1.1',
      'client.address': '127.0.0.1',
      'mcp_gateway.namespace': 'json',
      'mcp_gateway.request_id': 'trace-header-1',
    });
    expect(server.status.code).not.toBe(ERROR);
    expect(server.resource).toMatchObject({ 'service.name': 'mcp-gateway-edge' });
    expect(String(server.resource['service.instance.id'])).toMatch(/^edge-0-/);

    const backendCall = one(spans, CLIENT);
    expect(backendCall.name).toBe('tools/call echo');
    expect(backendCall.parentSpanId).toBe(server.spanId);
    expect(backendCall.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'jsonrpc.request.id': 'call-1',
      'network.transport': 'tcp',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(hostile.url).port),
    });

    // The backend's parent is the gateway's client span, in the same trace; the vendor's state
    // travels with it. The body went as the client sent it (no re-serialisation for a header).
    const headers = backendHeaders('trace-header-1');
    expect(headers.traceparent).toBe(`00-${trace}-${backendCall.spanId}-01`);
    expect(headers.tracestate).toBe('vendor=opaque');
    expect(metaOf(received('call-1'))).toBeUndefined();
  });

  it('continues a trace context carried in `params._meta`, linking the HTTP one, and puts the gateway span in its place', async () => {
    const [trace, parent] = [traceId(), spanId()];
    const [httpTrace, httpParent] = [traceId(), spanId()];
    const client = new StreamableRawClient([traced.edges[0].url], 'json', key);
    const meta = { traceparent: `00-${trace}-${parent}-01`, progressToken: 'p-1' };
    await client.post(call('echo', 'call-2', { _meta: meta }), {
      traceparent: `00-${httpTrace}-${httpParent}-01`,
      'x-request-id': 'trace-meta-1',
    });

    const spans = await spansOf(trace, 2);
    const server = one(spans, SERVER);
    expect(server.parentSpanId).toBe(parent);
    expect(server.links).toEqual([{ traceId: httpTrace, spanId: httpParent }]);
    const backendCall = one(spans, CLIENT);
    expect(backendCall.parentSpanId).toBe(server.spanId);

    // The client's own `_meta.traceparent` would name its span to the backend: replaced by the
    // gateway's, the rest of `_meta` untouched; the header says the same.
    const gatewaySpan = `00-${trace}-${backendCall.spanId}-01`;
    expect(metaOf(received('call-2'))).toEqual({ traceparent: gatewaySpan, progressToken: 'p-1' });
    expect(backendHeaders('trace-meta-1').traceparent).toBe(gatewaySpan);
  });

  it('gives each request of a re-serialised batch its own span, in its `_meta`, and answers a hidden tool with `error.type`', async () => {
    const [trace, parent] = [traceId(), spanId()];
    const client = new StreamableRawClient([traced.edges[0].url], 'filtered', key);
    await client.post(
      [call('echo', 'batch-1'), call('echo', 'batch-2'), call('get-env', 'batch-3')],
      {
        'mcp-protocol-version': '2025-03-26',
        traceparent: `00-${trace}-${parent}-01`,
        'x-request-id': 'trace-batch-1',
      },
    );

    const spans = await spansOf(trace, 5);
    expect(spans).toHaveLength(5);
    const servers = spans.filter((span) => span.kind === SERVER);
    expect(servers.map((span) => span.attributes['jsonrpc.request.id']).sort()).toEqual([
      'batch-1',
      'batch-2',
      'batch-3',
    ]);
    for (const server of servers) expect(server.parentSpanId).toBe(parent);
    const hidden = servers.find((span) => span.attributes['jsonrpc.request.id'] === 'batch-3')!;
    expect(hidden.name).toBe('tools/call get-env');
    expect(hidden.attributes).toMatchObject({
      'error.type': 'denied_tool',
      'rpc.response.status_code': '-32602',
    });
    expect(hidden.status.code).toBe(ERROR);

    for (const id of ['batch-1', 'batch-2']) {
      const server = servers.find((span) => span.attributes['jsonrpc.request.id'] === id)!;
      const backendCall = spans.find(
        (span) => span.kind === CLIENT && span.parentSpanId === server.spanId,
      )!;
      expect(metaOf(received(id))).toEqual({ traceparent: `00-${trace}-${backendCall.spanId}-01` });
    }
    expect(spans.filter((span) => span.kind === CLIENT)).toHaveLength(2);
    expect(backendHeaders('trace-batch-1').traceparent).toMatch(new RegExp(`^00-${trace}-`));
  });

  it('marks a tool result with `isError` as `error.type` tool_error', async () => {
    const [trace, parent] = [traceId(), spanId()];
    const client = new StreamableRawClient([traced.edges[0].url], 'recording', key);
    const answer = await client.post(call('fail', 'fail-1'), {
      'mcp-protocol-version': '2025-06-18',
      traceparent: `00-${trace}-${parent}-01`,
    });
    expect(answer.messages[0]).toMatchObject({ result: { isError: true } });

    const spans = await spansOf(trace, 2);
    for (const span of [one(spans, SERVER), one(spans, CLIENT)]) {
      expect(span.name).toBe('tools/call fail');
      expect(span.attributes['error.type']).toBe('tool_error');
      expect(span.status.code).toBe(ERROR);
    }
    expect(recording.headers.at(-1)!.traceparent).toBe(
      `00-${trace}-${one(spans, CLIENT).spanId}-01`,
    );
  });

  it('traces a bridged stdio session: the session on the span, the gateway span in the child’s `_meta`', async () => {
    const [trace, parent] = [traceId(), spanId()];
    const client = new StreamableRawClient([traced.edges[0].url], 'stdio', key);
    await client.initialize('2025-03-26');
    const answer = await client.post(call('echo', 'stdio-1'), {
      'mcp-protocol-version': '2025-03-26',
      traceparent: `00-${trace}-${parent}-01`,
    });
    expect(answer.status).toBe(200);

    const spans = await spansOf(trace, 2);
    const server = one(spans, SERVER);
    expect(server.parentSpanId).toBe(parent);
    expect(server.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'mcp.session.id': client.sessionId,
      'mcp.protocol.version': '2025-03-26',
    });
    const backendCall = one(spans, CLIENT);
    expect(backendCall.parentSpanId).toBe(server.spanId);
    expect(backendCall.attributes['network.transport']).toBe('pipe');
    expect(backendCall.attributes['server.address']).toBeUndefined();

    const child = readFileSync(stdioLog, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Message)
      .find((message) => message.id === 'stdio-1')!;
    expect(metaOf(child)).toEqual({ traceparent: `00-${trace}-${backendCall.spanId}-01` });
  });

  it('makes no span for a request refused before its body is read (401), and one with `error.type` after (unknown session)', async () => {
    const [refusedTrace, unknownTrace] = [traceId(), traceId()];
    const stranger = new StreamableRawClient([traced.edges[0].url], 'json', 'not-a-key');
    const refused = await stranger.post(call('echo', 'refused-1'), {
      traceparent: `00-${refusedTrace}-${spanId()}-01`,
    });
    expect(refused.status).toBe(401);

    const lost = new StreamableRawClient([traced.edges[0].url], 'json', key);
    lost.sessionId = 'not-a-session';
    const unknown = await lost.post(call('echo', 'unknown-1'), {
      traceparent: `00-${unknownTrace}-${spanId()}-01`,
    });
    expect(unknown.status).toBe(404);

    const [server] = await spansOf(unknownTrace, 1);
    expect(server.name).toBe('tools/call echo');
    expect(server.attributes).toMatchObject({
      'error.type': 'unknown_session',
      'rpc.response.status_code': '-32001',
    });
    // Every span the edge ended is exported by now: none for the 401.
    expect(receiver.trace(refusedTrace)).toEqual([]);
  });
});

describe('traces off', () => {
  it("passes the client's trace context to the backend unchanged, invents none, and exports nothing", async () => {
    const [trace, parent] = [traceId(), spanId()];
    const client = new StreamableRawClient([untraced.edges[0].url], 'json', key);
    await client.post(call('echo', 'off-1'), {
      traceparent: `00-${trace}-${parent}-01`,
      tracestate: 'vendor=opaque',
      'x-request-id': 'trace-off-1',
    });
    await client.post(
      call('echo', 'off-2', { _meta: { traceparent: `00-${trace}-${parent}-01` } }),
      {
        'x-request-id': 'trace-off-2',
      },
    );
    await client.post(call('echo', 'off-3'), { 'x-request-id': 'trace-off-3' });

    expect(backendHeaders('trace-off-1')).toMatchObject({
      traceparent: `00-${trace}-${parent}-01`,
      tracestate: 'vendor=opaque',
    });
    expect(metaOf(received('off-2'))).toEqual({ traceparent: `00-${trace}-${parent}-01` });
    expect(backendHeaders('trace-off-2').traceparent).toBeUndefined();
    expect(backendHeaders('trace-off-3').traceparent).toBeUndefined();
    await untraced.flush();
    await traced.flush();
    expect(receiver.trace(trace)).toEqual([]);
    expect(receiver.refused).toEqual([]);
  });
});
