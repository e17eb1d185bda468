import { randomUUID } from 'node:crypto';
import { type Gateway, startGateway } from '../support/gateway.js';
import { summary } from '../support/mcp.js';
import { eventually, freePort } from '../support/processes.js';
import { FaultyBackend } from '../support/faulty-backend.js';
import { RecordingBackend } from '../support/recording-backend.js';

const key = `key-${randomUUID()}`;
const spareKey = `spare-${randomUUID()}`;
const adminKey = `admin-${randomUUID()}`;

// SPEC §9, one row per test, with processes really killed and restarted: what the client sees,
// what the edge reports on /readyz and /metrics, and that no event is lost or doubled.
describe('failure behaviour (SPEC §9)', () => {
  const recording = new RecordingBackend();
  const faulty = new FaultyBackend();
  let gateway: Gateway;
  let edge = '';
  let calls = 0;

  beforeAll(async () => {
    await Promise.all([recording.start(), faulty.start()]);
    const closedPort = await freePort();
    gateway = await startGateway({
      analytics: true,
      config: `
namespaces:
  svc: { upstream: { url: "${recording.url.replace(/\/mcp$/, '/stateless')}" } }
  down: { upstream: { url: "http://127.0.0.1:${closedPort}/mcp" } }
  dies: { upstream: { url: "${faulty.url}/die" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"], rate_limit: { requests: 100000, per: 1m } }
  - { id: spare, key: "${spareKey}", namespaces: ["*"] }
  - { id: admin, key: "${adminKey}", role: admin, namespaces: ["*"] }
auth:
  stale_max: 5m
`,
    });
    edge = gateway.edges[0];
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([recording.stop(), faulty.stop()]);
  });

  async function callTool(
    ns = 'svc',
    apiKey = key,
  ): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
    const started = Date.now();
    const response = await fetch(`${edge}/mcp/${ns}`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'x' } },
      }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (ns === 'svc' && apiKey === key && response.status === 200) calls++;
    return { status: response.status, body, ms: Date.now() - started };
  }

  const readyz = async () =>
    (await (await fetch(`${edge}/readyz`)).json()) as {
      ready: boolean;
      checks: Record<string, { ok: boolean }>;
    };
  const metric = async (series: string) => {
    const text = await (await fetch(`${edge}/metrics`)).text();
    return Number(
      new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0,
    );
  };
  const storedCalls = async () =>
    (await summary(gateway.analyticsUrl!, adminKey, '?namespace=svc&key_id=main')).requests;

  it('backend down before reply: 502 JSON-RPC error with the request id, counted, edge healthy', async () => {
    const before = await metric(
      'mcp_gateway_upstream_errors_total{namespace="down",kind="connect"}',
    );
    const { status, body } = await callTool('down');
    expect(status).toBe(502);
    expect(body).toMatchObject({
      jsonrpc: '2.0',
      id: 1,
      error: { data: { code: 'upstream_error' } },
    });
    expect(await metric('mcp_gateway_upstream_errors_total{namespace="down",kind="connect"}')).toBe(
      before + 1,
    );
    expect((await readyz()).ready).toBe(true);
  });

  it('backend dies mid-stream: the client stream closes promptly and the event says upstream_error', async () => {
    const response = await fetch(`${edge}/mcp/dies`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'x' } }),
    });
    await response.text();
    const figures = await eventually(
      async () => {
        const current = await summary(gateway.analyticsUrl!, adminKey, '?namespace=dies');
        return current.requests === 1 ? current : undefined;
      },
      10_000,
      'the failed call to be recorded',
    );
    expect(figures.errors).toBe(1);
    expect(figures.rejected).toBe(0);
    const events = (await (
      await fetch(`${gateway.analyticsUrl}/api/v1/events?namespace=dies&limit=10`, {
        headers: { Authorization: `Bearer ${adminKey}` },
      })
    ).json()) as
      | Array<{ outcome: string; direction: string; kind: string }>
      | { events: Array<{ outcome: string; direction: string; kind: string }> };
    const list = Array.isArray(events) ? events : events.events;
    expect(
      list.some((event) => event.kind === 'request' && event.outcome === 'upstream_error'),
    ).toBe(true);
    expect((await fetch(`${edge}/healthz`)).status).toBe(200);
  });

  it('analytics down or restarted: proxying unaffected, events wait in JetStream, none lost or doubled', async () => {
    await callTool();
    await eventually(async () => (await storedCalls()) === calls, 10_000, 'baseline to be stored');
    await gateway.analytics!.stop('SIGKILL');
    for (let i = 0; i < 20; i++) expect((await callTool()).status).toBe(200);
    expect((await readyz()).ready).toBe(true); // the edge does not depend on analytics
    await gateway.restartAnalytics();
    await eventually(
      async () => (await storedCalls()) === calls,
      15_000,
      `all ${calls} calls to be stored`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a late duplicate would show up here
    expect(await storedCalls()).toBe(calls);
  });

  it('auth service down, NATS up: cached keys work, uncached get 503 at once (no responders), readyz says so', async () => {
    await callTool(); // main key cached
    await gateway.auth.stop('SIGKILL');
    expect((await callTool()).status).toBe(200);
    const uncached = await callTool('svc', spareKey);
    expect(uncached.status).toBe(503);
    expect(uncached.body).toMatchObject({ error: { data: { code: 'auth_unavailable' } } });
    expect(uncached.ms).toBeLessThan(1_000); // the bus timeout is 2 s: this is "no responders"
    const unknown = await callTool('svc', `unknown-${randomUUID()}`);
    expect(unknown.status).toBe(503); // never let through
    await eventually(
      async () => (await readyz()).checks.auth?.ok === false,
      5_000,
      'readyz to report auth down',
    );
    await gateway.restartAuth();
    await eventually(
      async () => (await callTool('svc', spareKey)).status === 200,
      10_000,
      'uncached keys to work again',
    );
    await eventually(async () => (await readyz()).ready, 5_000, 'readyz to recover');
  });

  it('NATS down: cached keys keep working, uncached 503, events buffered then delivered exactly once', async () => {
    await callTool();
    await eventually(async () => (await storedCalls()) === calls, 10_000, 'baseline to be stored');
    await gateway.nats.kill();
    await eventually(
      async () => (await readyz()).checks.nats?.ok === false,
      5_000,
      'readyz to report NATS down',
    );
    for (let i = 0; i < 20; i++) expect((await callTool()).status).toBe(200);
    const uncached = await callTool('svc', `fresh-${randomUUID()}`);
    expect(uncached.status).toBe(503);
    expect(uncached.ms).toBeLessThan(1_000);
    expect(await metric('mcp_gateway_event_buffer_depth')).toBeGreaterThan(0);
    await gateway.nats.restart();
    await eventually(async () => (await readyz()).ready, 15_000, 'readyz to recover');
    await eventually(
      async () => (await storedCalls()) === calls,
      30_000,
      `all ${calls} calls to be stored`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await storedCalls()).toBe(calls);
    expect(await metric('mcp_gateway_events_dropped_total')).toBe(0);
  }, 90_000);
});
