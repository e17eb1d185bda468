import { Pool } from 'undici';
import { figure, info, percentile, round, type ScenarioResult } from '../support/report.js';
import { startFront } from '../support/stdio-fronts.js';

export interface EraOptions {
  requests: number;
  warmup: number;
  log: (line: string) => void;
}

const ECHO = (id: number, meta?: Record<string, unknown>) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { message: 'a'.repeat(900) }, ...(meta && { _meta: meta }) },
  });

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
};

/**
 * SPEC §10 (v2) "a 2026-07-28 stateless tools/call on a stdio backend (added p50 vs a 2025-era
 * session call ≤ 0.3 ms)": the standalone gateway fronting server-everything over stdio, one
 * client, one call at a time, alternating blocks: a 2025 session's `tools/call` (session id,
 * answered on the POST's stream) and the same call as a 2026-07-28 client sends it (no session,
 * `_meta` envelope and mirrored headers), which the gateway serves on a 2025 session it holds.
 */
export async function era(options: EraOptions): Promise<ScenarioResult> {
  const front = await startFront('gateway', 4);
  const origin = new URL(front.url).origin;
  const path = new URL(front.url).pathname;
  const pool = new Pool(origin, { connections: 1, pipelining: 1 });
  const base = {
    ...front.headers,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  let id = 0;
  const post = async (headers: Record<string, string>, body: string) => {
    const response = await pool.request({ path, method: 'POST', headers, body });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}: ${text}`);
    if (body.includes('"tools/call"') && !text.includes('Echo:'))
      throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
    return response.headers;
  };
  try {
    const opened = await post(
      base,
      JSON.stringify({
        jsonrpc: '2.0',
        id: ++id,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'bench', version: '1' },
        },
      }),
    );
    const session = {
      ...base,
      'mcp-session-id': String(opened['mcp-session-id']),
      'mcp-protocol-version': '2025-11-25',
    };
    await post(session, '{"jsonrpc":"2.0","method":"notifications/initialized"}');
    const modern = {
      ...base,
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    };
    const timed = async (run: () => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      await run();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const sessionCall = () => timed(() => post(session, ECHO(++id)));
    const statelessCall = () => timed(() => post(modern, ECHO(++id, ENVELOPE)));
    options.log(`era: warm-up ${options.warmup} calls each`);
    for (let i = 0; i < options.warmup; i++) {
      await sessionCall();
      await statelessCall();
    }
    const samples = { session: [] as number[], stateless: [] as number[] };
    const block = 100;
    options.log(`era: ${options.requests} calls each, alternating blocks of ${block}`);
    for (let done = 0; done < options.requests; done += block) {
      for (let i = 0; i < block; i++) samples.session.push(await sessionCall());
      for (let i = 0; i < block; i++) samples.stateless.push(await statelessCall());
    }
    const stats = (values: number[]) => ({
      p50: round(percentile(values, 50), 3),
      p99: round(percentile(values, 99), 3),
    });
    const s = stats(samples.session);
    const m = stats(samples.stateless);
    options.log(
      `era: 2025 session ${JSON.stringify(s)} ms; 2026-07-28 stateless ${JSON.stringify(m)} ms`,
    );
    return {
      name: 'era',
      figures: [
        figure(
          'stateless_stdio_call_added_p50_ms',
          '2026-07-28 stateless tools/call on stdio, added p50 vs a 2025 session call',
          round(m.p50 - s.p50, 3),
          'ms',
          '<=',
          0.3,
          `${s.p50} → ${m.p50} ms`,
        ),
        info(
          'stateless_stdio_call_added_p99_ms',
          '2026-07-28 stateless tools/call on stdio, added p99',
          round(m.p99 - s.p99, 3),
          'ms',
          `${s.p99} → ${m.p99} ms`,
        ),
      ],
      details: { requests: options.requests, session: s, stateless: m },
    };
  } finally {
    await pool.close();
    await front.stop();
  }
}
