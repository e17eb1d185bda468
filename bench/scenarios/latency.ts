import { Pool } from 'undici';
import { startNginx } from '../support/nginx.js';
import { figure, info, percentile, round, type ScenarioResult } from '../support/report.js';
import {
  BENCH_KEY,
  MCP_HEADERS,
  orStop,
  startBackend,
  startBareProxy,
  startGateway,
  toolsCallBody,
  warmKey,
} from '../support/topology.js';

export interface LatencyOptions {
  requests: number;
  warmup: number;
  log: (line: string) => void;
}

/**
 * SPEC §10 "added latency at 1 concurrent client": one keep-alive connection, one request at a
 * time, timed with hrtime (autocannon's percentiles are whole milliseconds). Direct and gateway
 * requests alternate in blocks so drift on a shared machine hits both the same.
 */
export async function latency(options: LatencyOptions): Promise<ScenarioResult> {
  const backend = await startBackend();
  const bare = await orStop(startBareProxy(backend.urls[0]), backend);
  const nginx = await orStop(startNginx(backend.urls[0]), bare, backend);
  const gateway = await orStop(
    startGateway({ namespaces: { bench: backend.urls[0] }, edge: true }),
    ...(nginx ? [nginx] : []),
    bare,
    backend,
  );
  const direct = new Pool(`http://127.0.0.1:${backend.ports[0]}`, {
    connections: 1,
    pipelining: 1,
  });
  const viaEdge = new Pool(gateway.edgeUrl!, { connections: 1, pipelining: 1 });
  const viaBare = new Pool(new URL(bare.url).origin, { connections: 1, pipelining: 1 });
  const viaNginx = nginx
    ? new Pool(new URL(nginx.url).origin, { connections: 1, pipelining: 1 })
    : undefined;
  let id = 0;
  const once = async (
    pool: Pool,
    path: string,
    headers: Record<string, string>,
    method: 'GET' | 'POST' = 'POST',
  ): Promise<number> => {
    const body = method === 'POST' ? toolsCallBody(++id) : undefined;
    const start = process.hrtime.bigint();
    const response = await pool.request({ path, method, headers, body });
    await response.body.arrayBuffer();
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (response.statusCode !== 200) throw new Error(`${path}: HTTP ${response.statusCode}`);
    return elapsed;
  };
  const targets = [
    { name: 'direct', run: () => once(direct, '/mcp', MCP_HEADERS) },
    {
      name: 'gateway',
      run: () =>
        once(viaEdge, '/mcp/bench', { ...MCP_HEADERS, authorization: `Bearer ${BENCH_KEY}` }),
    },
    // Not a figure: a request to the edge that proxies nothing (GET /healthz), which splits the
    // added latency into the edge's HTTP stack and the MCP pipeline behind it.
    { name: 'edgeHealthz', run: () => once(viaEdge, '/healthz', {}, 'GET') },
    // Not a figure either: the same call through bench/support/bare-proxy.ts, what one Node
    // process relaying without any gateway work adds on this machine.
    { name: 'bareProxy', run: () => once(viaBare, '/mcp', MCP_HEADERS) },
    // And nginx relaying, when installed.
    ...(viaNginx ? [{ name: 'nginx', run: () => once(viaNginx, '/mcp', MCP_HEADERS) }] : []),
  ];
  try {
    await warmKey(gateway.edgeUrl!, 'bench');
    options.log(`latency: warm-up ${options.warmup} requests each`);
    for (const target of targets) for (let i = 0; i < options.warmup; i++) await target.run();
    const samples: Record<string, number[]> = {
      direct: [],
      gateway: [],
      edgeHealthz: [],
      bareProxy: [],
      nginx: [],
    };
    const block = 250;
    options.log(
      `latency: ${options.requests} sequential requests each, alternating blocks of ${block}`,
    );
    for (let done = 0; done < options.requests; done += block) {
      for (const target of targets) {
        for (let i = 0; i < Math.min(block, options.requests - done); i++)
          samples[target.name].push(await target.run());
      }
    }
    const stats = (values: number[]) => ({
      p50: round(percentile(values, 50), 3),
      p90: round(percentile(values, 90), 3),
      p99: round(percentile(values, 99), 3),
      max: round(Math.max(...values), 3),
      mean: round(values.reduce((a, b) => a + b, 0) / values.length, 3),
    });
    const d = stats(samples.direct);
    const g = stats(samples.gateway);
    const addedP50 = round(g.p50 - d.p50, 3);
    const addedP99 = round(g.p99 - d.p99, 3);
    const b = stats(samples.bareProxy);
    const n = viaNginx ? stats(samples.nginx) : undefined;
    options.log(
      `latency: direct ${JSON.stringify(d)} ms; gateway ${JSON.stringify(g)} ms; edge GET /healthz ${JSON.stringify(stats(samples.edgeHealthz))} ms; bare proxy ${JSON.stringify(b)} ms${n ? `; nginx ${JSON.stringify(n)} ms` : ''}`,
    );
    return {
      name: 'latency',
      figures: [
        figure(
          'added_latency_p50_ms',
          'Added latency p50, 1 client',
          addedP50,
          'ms',
          '<=',
          // SPEC §10: 0.5 ms, and 0.3 ms since v2 (the peers' section): the stricter one.
          0.3,
          `${d.p50} → ${g.p50} ms`,
        ),
        figure(
          'added_latency_p99_ms',
          'Added latency p99, 1 client',
          addedP99,
          'ms',
          '<=',
          // SPEC §10: 2 ms, and 1.5 ms since v2.
          1.5,
          `${d.p99} → ${g.p99} ms`,
        ),
        info(
          'bare_proxy_added_latency_p50_ms',
          'Reference: bare Node proxy added latency p50 (p99), 1 client',
          round(b.p50 - d.p50, 3),
          'ms',
          `p99 ${round(b.p99 - d.p99, 3)} ms; ${b.p50} ms p50, ${b.p99} ms p99`,
        ),
        info(
          'nginx_added_latency_p50_ms',
          'Reference: nginx added latency p50 (p99), 1 client',
          n ? round(n.p50 - d.p50, 3) : null,
          'ms',
          n
            ? `p99 ${round(n.p99 - d.p99, 3)} ms; ${n.p50} ms p50, ${n.p99} ms p99`
            : 'nginx not installed (apt-get install nginx)',
        ),
      ],
      details: {
        requests: options.requests,
        direct: d,
        gateway: g,
        edgeHealthz: stats(samples.edgeHealthz),
        bareProxy: b,
        nginx: n ?? null,
      },
    };
  } finally {
    await Promise.all([direct.close(), viaEdge.close(), viaBare.close(), viaNginx?.close()]);
    await gateway.stop();
    await nginx?.stop();
    await bare.stop();
    await backend.stop();
  }
}
