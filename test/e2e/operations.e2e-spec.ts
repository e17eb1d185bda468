import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { type Gateway, startGateway } from '../support/gateway.js';
import { connectClient, summary } from '../support/mcp.js';
import { eventually, sleep } from '../support/processes.js';
import { RecordingBackend } from '../support/recording-backend.js';

const key = `key-${randomUUID()}`;
const adminKey = `admin-${randomUUID()}`;

/** How often the test's balancer reads each edge's /readyz, and how long edges drain first. */
const READINESS_INTERVAL_MS = 20;
const SHUTDOWN_DELAY_MS = 1_000;

/**
 * The test's own load balancer: round-robin over the edges whose /readyz answered 200 at the
 * last check (every 20 ms, as a Kubernetes Service or HAProxy checks readiness), a fresh
 * connection per request, and a retry on the next edge only when the connection was refused
 * (nothing was sent), as nginx's `proxy_next_upstream error` does.
 */
function roundRobinBalancer(
  edges: string[],
): Promise<{ url: string; server: Server; close: () => void }> {
  let next = 0;
  const ready = edges.map(() => true);
  const checks = setInterval(() => {
    edges.forEach((edge, i) => {
      fetch(`${edge}/readyz`, { signal: AbortSignal.timeout(READINESS_INTERVAL_MS * 5) }).then(
        async (answer) => {
          await answer.arrayBuffer();
          ready[i] = answer.status === 200;
        },
        () => (ready[i] = false),
      );
    });
  }, READINESS_INTERVAL_MS);
  const pick = (from: number): number => {
    for (let i = 0; i < edges.length; i++) if (ready[(from + i) % edges.length]) return from + i;
    return from; // none ready: try anyway, refusals are retried
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const first = pick(next++);
      // A retry goes to the next edge after the one that refused, as nginx's next upstream.
      const attempt = (tries: number) => {
        const target = new URL(edges[(first + tries) % edges.length]);
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent: false,
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          if (error.code === 'ECONNREFUSED' && tries < edges.length * 4)
            setTimeout(() => attempt(tries + 1), 10);
          else if (!res.headersSent) res.writeHead(502).end(`balancer: ${error.code}`);
        });
        upstream.end(body);
      };
      attempt(0);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
        server,
        close: () => {
          clearInterval(checks);
          server.close();
        },
      });
    }),
  );
}

describe('operations: metrics, graceful shutdown, rolling restarts (SPEC §8)', () => {
  const recording = new RecordingBackend();
  let gateway: Gateway;

  beforeAll(async () => {
    await recording.start();
    gateway = await startGateway({
      edges: 2,
      analytics: true,
      env: { EDGE_SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS) },
      config: `
namespaces:
  rec: { upstream: { url: "${recording.url}" }, tools: { deny: ["secret_*"] } }
  stateless: { upstream: { url: "${recording.url.replace(/\/mcp$/, '/stateless')}" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"], rate_limit: { requests: 100000, per: 1m } }
  - { id: admin, key: "${adminKey}", role: admin, namespaces: ["*"] }
`,
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    await recording.stop();
  });

  it('exposes the SPEC §8 series on /metrics with figures matching known traffic', async () => {
    const edge = gateway.edges[0];
    const { client } = await connectClient(`${edge}/mcp/rec`, key);
    for (let i = 0; i < 3; i++)
      await client.callTool({ name: 'echo', arguments: { message: 'x' } });
    await expect(client.callTool({ name: 'secret_delete', arguments: {} })).rejects.toThrow();
    await client.close();
    await fetch(`${edge}/mcp/rec`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    // A namespace the config does not hold, chosen by an unauthenticated client: one label.
    await fetch(`${edge}/mcp/made-up-name`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    const metrics = await (await fetch(`${edge}/metrics`)).text();
    const value = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    // initialize + 3 tools/call
    expect(value('mcp_gateway_requests_total{namespace="rec",outcome="ok"}')).toBe(4);
    expect(value('mcp_gateway_requests_total{namespace="rec",outcome="denied_tool"}')).toBe(1);
    expect(value('mcp_gateway_requests_total{namespace="rec",outcome="unauthorized"}')).toBe(1);
    expect(value('mcp_gateway_request_duration_seconds_count{namespace="rec"}')).toBe(4);
    expect(value('mcp_gateway_requests_total{namespace="_unknown",outcome="unauthorized"}')).toBe(
      1,
    );
    expect(metrics).not.toContain('made-up-name');
    expect(value('mcp_gateway_auth_cache_total{result="miss"}')).toBeGreaterThanOrEqual(1);
    expect(value('mcp_gateway_auth_cache_total{result="hit"}')).toBeGreaterThanOrEqual(4);
    expect(metrics).toMatch(/^mcp_gateway_event_buffer_depth \d+$/m);
    expect(metrics).toMatch(/^mcp_gateway_events_dropped_total 0$/m);
    expect(metrics).toContain('mcp_gateway_rate_limited_total');
    expect(metrics).toContain('mcp_gateway_upstream_errors_total');
  });

  it('loses no unary request during a rolling restart of both edges', async () => {
    const balancer = await roundRobinBalancer(gateway.edges);
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const worker = async () => {
      let id = 0;
      while (running) {
        const response = await fetch(`${balancer.url}/mcp/stateless`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: ++id,
            method: 'tools/call',
            params: { name: 'wait', arguments: { ms: 50 } },
          }),
        }).catch((error: Error) => ({ status: 0, text: () => Promise.resolve(error.message) }));
        const text = await response.text();
        if (response.status === 200 && text.includes('waited 50')) ok++;
        else failures.push(`${response.status}: ${text.slice(0, 200)}`);
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    await eventually(() => ok > 50, 10_000, 'traffic to flow');
    await gateway.restartEdge(0);
    await gateway.restartEdge(1);
    const afterRestart = ok;
    await eventually(() => ok > afterRestart + 50, 10_000, 'traffic to flow after the restart');
    running = false;
    await Promise.all(workers);
    balancer.close();
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(100);
  }, 90_000);

  it('on SIGTERM ends open SSE streams cleanly and flushes its events', async () => {
    const edge = gateway.edges[0];
    const before = await summary(gateway.analyticsUrl!, adminKey, '?namespace=rec');
    const headers = {
      Authorization: `Bearer ${key}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': '2025-06-18',
    };
    const post = (body: unknown, extra: Record<string, string> = {}) =>
      fetch(`${edge}/mcp/rec`, {
        method: 'POST',
        headers: { ...headers, ...extra },
        body: JSON.stringify(body),
      });
    const initialized = await post({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'raw', version: '1' },
      },
    });
    await initialized.text();
    const session = { 'mcp-session-id': initialized.headers.get('mcp-session-id')! };
    await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)).text();
    for (let i = 1; i <= 5; i++) {
      await (
        await post(
          {
            jsonrpc: '2.0',
            id: i,
            method: 'tools/call',
            params: { name: 'echo', arguments: { message: 'x' } },
          },
          session,
        )
      ).text();
    }
    const init = await fetch(`${edge}/mcp/rec`, {
      headers: { ...headers, accept: 'text/event-stream', ...session },
    });
    expect(init.status).toBe(200);
    const ended = init.text().then(
      () => 'clean end',
      (error: Error) => `error: ${error.message}`,
    );
    const exit = gateway.edgeProcs[0].exited;
    gateway.edgeProcs[0].child.kill('SIGTERM');
    expect(await ended).toBe('clean end');
    expect(await exit).toBe(0);
    // initialize + 5 calls made on this edge before it stopped are all recorded.
    const after = await eventually(
      async () => {
        const current = await summary(gateway.analyticsUrl!, adminKey, '?namespace=rec');
        return current.requests >= before.requests + 6 ? current : undefined;
      },
      10_000,
      'the stopped edge events to be stored',
    );
    expect(after.requests).toBe(before.requests + 6);
    await gateway.restartEdge(0);
  });

  it('after SIGTERM keeps serving for EDGE_SHUTDOWN_DELAY_MS with /readyz 503, then stops accepting', async () => {
    const edge = new URL(gateway.edges[1]);
    // Each on a new connection (no keep-alive pool): what a load balancer opens to the edge.
    const fresh = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: edge.hostname,
            port: edge.port,
            method,
            path,
            agent: false,
            headers: body
              ? {
                  Authorization: `Bearer ${key}`,
                  'content-type': 'application/json',
                  accept: 'application/json, text/event-stream',
                }
              : {},
          },
          (answer) => {
            let text = '';
            answer.setEncoding('utf8');
            answer.on('data', (chunk: string) => (text += chunk));
            answer.on('end', () => resolve({ status: answer.statusCode ?? 0, text }));
            answer.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const call = (id: number) =>
      fresh(
        'POST',
        '/mcp/stateless',
        JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'wait', arguments: { ms: 1 } },
        }),
      );
    expect((await fresh('GET', '/readyz')).status).toBe(200);
    const exit = gateway.edgeProcs[1].exited;
    const signalled = performance.now();
    gateway.edgeProcs[1].child.kill('SIGTERM');
    // Within the delay: not ready, yet new connections are accepted and their requests served.
    const readiness = await eventually(
      async () => {
        const answer = await fresh('GET', '/readyz');
        return answer.status === 503 ? answer : undefined;
      },
      SHUTDOWN_DELAY_MS,
      '/readyz to answer 503',
      5,
    );
    expect(JSON.parse(readiness.text)).toMatchObject({ checks: { shutdown: { ok: false } } });
    const during = await call(1);
    expect(during.status).toBe(200);
    expect(during.text).toContain('waited 1');
    expect(performance.now() - signalled).toBeLessThan(SHUTDOWN_DELAY_MS);
    // After it: the listener is closed, a new connection is refused, and the edge exits cleanly.
    await sleep(SHUTDOWN_DELAY_MS);
    await expect(call(2)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await exit).toBe(0);
    await gateway.restartEdge(1);
  });
});
