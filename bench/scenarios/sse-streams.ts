import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { figure, round, type ScenarioResult } from '../support/report.js';
import { rssBytes, sleep } from '../support/processes.js';
import {
  BENCH_KEY,
  MCP_HEADERS,
  orStop,
  startBackend,
  startGateway,
  toolsCallBody,
} from '../support/topology.js';

export interface SseOptions {
  streams: number;
  /** Backend origins (ports) the streams of the memory run are spread over, one namespace each. */
  origins: number;
  log: (line: string) => void;
}

const MiB = 2 ** 20;

interface StreamsRun {
  origins: number;
  opened: number;
  openMs: number;
  baselineRss: number;
  rss: number;
  backendOpenStreams: number;
  /** A tools/call on the first namespace while the streams are open: its status or what failed. */
  unaryWhileOpen: string;
  failures: string[];
}

/**
 * SPEC §10 "5,000 concurrent idle SSE streams on one edge with RSS ≤ 1 GiB": one `initialize`
 * per namespace gives a gateway session id, then GET /mcp/{ns} streams on it are opened through
 * the edge to a backend that keeps them open and silent; the edge's RSS is read from /proc.
 * Two runs, each on a fresh edge: all streams to one backend (how many it can hold), and the
 * streams spread over several backend origins (the memory figure, whatever the per-origin
 * connection limit of the edge's HTTP client).
 */
export async function sseStreams(options: SseOptions): Promise<ScenarioResult> {
  const single = await openStreams(options.streams, 1, true, options.log);
  const spread =
    single.opened === options.streams
      ? single
      : await openStreams(options.streams, options.origins, false, options.log);
  const complete = spread.opened === options.streams;
  const perStreamKiB = round(
    (spread.rss - spread.baselineRss) / 1024 / Math.max(1, spread.opened),
    1,
  );
  return {
    name: 'sse',
    figures: [
      figure(
        'sse_rss_mib',
        `Edge RSS with ${options.streams.toLocaleString('en-US')} idle SSE streams${spread.origins > 1 ? ` (${spread.origins} backends)` : ''}`,
        complete ? round(spread.rss / MiB, 0) : null,
        'MiB',
        '<=',
        1024,
        complete
          ? `${round(spread.baselineRss / MiB, 0)} MiB before, ${perStreamKiB} KiB/stream`
          : `only ${spread.opened} of ${options.streams} streams opened: ${spread.failures[0] ?? ''}`,
      ),
      figure(
        'sse_streams_one_backend',
        'Idle SSE streams one edge holds to ONE backend',
        single.opened,
        'streams',
        '>=',
        options.streams,
        single.opened < options.streams
          ? `then requests hang; tools/call while open: ${single.unaryWhileOpen}`
          : `tools/call while open: ${single.unaryWhileOpen}`,
      ),
    ],
    details: {
      streams: options.streams,
      oneBackend: summary(single),
      ...(spread !== single ? { spread: summary(spread) } : {}),
    },
  };
}

function summary(run: StreamsRun): Record<string, unknown> {
  return {
    origins: run.origins,
    opened: run.opened,
    openMs: run.openMs,
    baselineRssMiB: round(run.baselineRss / MiB, 1),
    rssMiB: round(run.rss / MiB, 1),
    perStreamKiB: round((run.rss - run.baselineRss) / 1024 / Math.max(1, run.opened), 2),
    backendOpenStreams: run.backendOpenStreams,
    unaryWhileOpen: run.unaryWhileOpen,
    failures: run.failures,
  };
}

async function openStreams(
  streams: number,
  origins: number,
  stopAtFirstFailure: boolean,
  log: (line: string) => void,
): Promise<StreamsRun> {
  const backend = await startBackend(origins);
  const namespaces = Object.fromEntries(backend.urls.map((url, i) => [`sse${i}`, url]));
  const gateway = await orStop(startGateway({ namespaces, edge: true }), backend);
  const edge = new URL(gateway.edgeUrl!);
  const open: Array<{ req: ClientRequest; res?: IncomingMessage }> = [];
  try {
    const sessions: string[] = [];
    for (const ns of Object.keys(namespaces)) sessions.push(await initialize(gateway.edgeUrl!, ns));
    const edgePid = gateway.edge!.pid;
    await sleep(500);
    const baselineRss = rssBytes(edgePid);
    log(
      `sse: edge RSS before streams ${round(baselineRss / MiB, 1)} MiB; opening ${streams} GET streams over ${origins} backend origin(s)`,
    );

    const openOne = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const ns = i % origins;
        const req = httpRequest({
          host: edge.hostname,
          port: edge.port,
          path: `/mcp/sse${ns}`,
          method: 'GET',
          agent: false,
          headers: {
            accept: 'text/event-stream',
            authorization: `Bearer ${BENCH_KEY}`,
            'mcp-protocol-version': MCP_HEADERS['mcp-protocol-version'],
            'mcp-session-id': sessions[ns],
          },
        });
        const entry: { req: ClientRequest; res?: IncomingMessage } = { req };
        open.push(entry);
        const timer = setTimeout(
          () => reject(new Error('no response headers within 10 s')),
          10_000,
        );
        req.once('response', (res) => {
          clearTimeout(timer);
          entry.res = res;
          res.resume(); // heartbeats are read and dropped
          if (
            res.statusCode === 200 &&
            String(res.headers['content-type']).startsWith('text/event-stream')
          )
            resolve();
          else reject(new Error(`HTTP ${res.statusCode}`));
        });
        req.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        req.end();
      });

    const started = Date.now();
    let opened = 0;
    const failures: string[] = [];
    const batch = 250;
    for (let i = 0; i < streams; i += batch) {
      const results = await Promise.allSettled(
        Array.from({ length: Math.min(batch, streams - i) }, (_, j) => openOne(i + j)),
      );
      for (const result of results) {
        if (result.status === 'fulfilled') opened++;
        else failures.push(String(result.reason));
      }
      if (failures.length > 0 && (stopAtFirstFailure || opened === 0)) break;
    }
    const openMs = Date.now() - started;
    const unaryWhileOpen = await unaryCall(gateway.edgeUrl!, 'sse0', sessions[0]);
    await sleep(2_000);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      samples.push(rssBytes(edgePid));
      await sleep(500);
    }
    const rss = Math.max(...samples);
    const backendOpenStreams = await fetch(`http://127.0.0.1:${backend.ports[0]}/streams`)
      .then((r) => r.json() as Promise<{ openStreams: number }>)
      .then((b) => b.openStreams)
      .catch(() => -1);
    const uniqueFailures = [...new Set(failures)].slice(0, 5);
    log(
      `sse: ${opened}/${streams} streams open over ${origins} origin(s) in ${openMs} ms (backend holds ${backendOpenStreams}); edge RSS ${round(rss / MiB, 1)} MiB; tools/call meanwhile: ${unaryWhileOpen}${uniqueFailures.length ? `; failures: ${uniqueFailures.join('; ')}` : ''}`,
    );
    return {
      origins,
      opened,
      openMs,
      baselineRss,
      rss,
      backendOpenStreams,
      unaryWhileOpen,
      failures: uniqueFailures,
    };
  } finally {
    for (const { req, res } of open) {
      res?.destroy();
      req.destroy();
    }
    await gateway.stop();
    await backend.stop();
  }
}

/** One tools/call on the session's namespace, 5 s at most: does the edge still serve requests? */
async function unaryCall(edgeUrl: string, namespace: string, session: string): Promise<string> {
  try {
    const response = await fetch(`${edgeUrl}/mcp/${namespace}`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${BENCH_KEY}`, 'mcp-session-id': session },
      body: toolsCallBody(1),
      signal: AbortSignal.timeout(5_000),
    });
    await response.arrayBuffer();
    return `HTTP ${response.status}`;
  } catch (error) {
    return error instanceof Error && error.name === 'TimeoutError'
      ? 'no answer within 5 s'
      : String(error);
  }
}

/** An `initialize` through the edge; returns the gateway's session id. */
async function initialize(edgeUrl: string, namespace: string): Promise<string> {
  const response = await fetch(`${edgeUrl}/mcp/${namespace}`, {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${BENCH_KEY}` },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'mcp-gateway-bench', version: '1.0.0' },
      },
    }),
  });
  await response.arrayBuffer();
  const session = response.headers.get('mcp-session-id');
  if (response.status !== 200 || !session)
    throw new Error(`initialize on ${namespace}: HTTP ${response.status}, no session id`);
  return session;
}
