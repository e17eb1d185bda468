import { writeFileSync } from 'node:fs';
import { Pool } from 'undici';
import { InspectorSession } from '../support/inspector.js';
import { figure, info, percentile, round, type ScenarioResult } from '../support/report.js';
import { BENCH_KEY, MCP_HEADERS, orStop, startBackend, startGateway } from '../support/topology.js';

export interface VirtualOptions {
  requests: number;
  warmup: number;
  log: (line: string) => void;
  /** Write the edge's CPU profile of the merged lists here (bench --profile). */
  profileTo?: string;
}

const MEMBERS = ['m0', 'm1', 'm2'];
const LIST = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"tools/list","params":{}}`;

/**
 * SPEC §10 (v2) "tools/list on a virtual server of three members (added p50 over the slowest
 * member ≤ 1 ms)": one client, one request at a time. The reference is the three members asked
 * directly and at once, timed until the slowest answered (what a merge cannot beat); the gateway
 * figure is the virtual server's merged `tools/list` on an open session, read to the end of its
 * answer stream. Blocks alternate so drift on a shared machine hits both the same.
 */
export async function virtualServer(options: VirtualOptions): Promise<ScenarioResult> {
  const backend = await startBackend(3);
  const gateway = await orStop(
    startGateway({
      namespaces: Object.fromEntries(MEMBERS.map((name, i) => [name, backend.urls[i]])),
      servers: { trio: MEMBERS },
      edge: true,
      edgeNodeArgs: options.profileTo ? ['--inspect=127.0.0.1:0'] : [],
    }),
    backend,
  );
  const inspector =
    options.profileTo && gateway.edge
      ? await orStop(InspectorSession.attach(gateway.edge), gateway, backend)
      : undefined;
  const members = backend.ports.map(
    (port) => new Pool(`http://127.0.0.1:${port}`, { connections: 1, pipelining: 1 }),
  );
  const edge = new Pool(gateway.edgeUrl!, { connections: 1, pipelining: 1 });
  let id = 0;
  const post = async (pool: Pool, path: string, headers: Record<string, string>, body: string) => {
    const response = await pool.request({ path, method: 'POST', headers, body });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`${path}: HTTP ${response.statusCode} ${text}`);
    return { headers: response.headers, text };
  };
  try {
    const auth = { ...MCP_HEADERS, authorization: `Bearer ${BENCH_KEY}` };
    const opened = await post(
      edge,
      '/mcp/trio',
      auth,
      JSON.stringify({
        jsonrpc: '2.0',
        id: ++id,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'bench', version: '1' },
        },
      }),
    );
    const session = String(opened.headers['mcp-session-id']);
    const inSession = { ...auth, 'mcp-session-id': session };
    await post(
      edge,
      '/mcp/trio',
      inSession,
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    );
    const timed = async (run: () => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      await run();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const direct = () =>
      timed(() => Promise.all(members.map((pool) => post(pool, '/mcp', MCP_HEADERS, LIST(++id)))));
    const merged = () =>
      timed(async () => {
        const { text } = await post(edge, '/mcp/trio', inSession, LIST(++id));
        if (!text.includes('m2__tool_9'))
          throw new Error(`merged list incomplete: ${text.slice(0, 200)}`);
      });
    options.log(`virtual: warm-up ${options.warmup} lists each`);
    for (let i = 0; i < options.warmup; i++) {
      await direct();
      await merged();
    }
    const samples = { direct: [] as number[], merged: [] as number[] };
    const block = 100;
    options.log(`virtual: ${options.requests} lists each, alternating blocks of ${block}`);
    await inspector?.startProfiling();
    for (let done = 0; done < options.requests; done += block) {
      for (let i = 0; i < block; i++) samples.direct.push(await direct());
      for (let i = 0; i < block; i++) samples.merged.push(await merged());
    }
    if (inspector && options.profileTo) {
      writeFileSync(options.profileTo, JSON.stringify(await inspector.stopProfiling()));
      options.log(`virtual: edge CPU profile written to ${options.profileTo}`);
    }
    const stats = (values: number[]) => ({
      p50: round(percentile(values, 50), 3),
      p99: round(percentile(values, 99), 3),
    });
    const d = stats(samples.direct);
    const m = stats(samples.merged);
    options.log(
      `virtual: three members at once ${JSON.stringify(d)} ms; merged ${JSON.stringify(m)} ms`,
    );
    return {
      name: 'virtual',
      figures: [
        figure(
          'virtual_tools_list_added_p50_ms',
          'Virtual server tools/list (3 members), added p50 over the slowest member',
          round(m.p50 - d.p50, 3),
          'ms',
          '<=',
          1,
          `${d.p50} → ${m.p50} ms`,
        ),
        info(
          'virtual_tools_list_added_p99_ms',
          'Virtual server tools/list (3 members), added p99',
          round(m.p99 - d.p99, 3),
          'ms',
          `${d.p99} → ${m.p99} ms`,
        ),
      ],
      details: { requests: options.requests, direct: d, merged: m },
    };
  } finally {
    inspector?.close();
    await Promise.all([edge, ...members].map((pool) => pool.close()));
    await gateway.stop();
    await backend.stop();
  }
}
