import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  freePort,
  type Proc,
  ROOT,
  startProcess,
  startService,
  tempDir,
  waitForHttp,
} from './processes.js';

/**
 * The four ways of putting one stdio MCP server on Streamable HTTP that the peer scenario
 * compares, each fronting the same `@modelcontextprotocol/server-everything` over stdio:
 *
 * - the gateway in standalone mode (`npm start`: edge, auth and analytics in one process), one
 *   stdio namespace, one key; a child per session (warm children as configured by default);
 * - the same with `shared: true`: one child for every session, as mcp-proxy does;
 * - supergateway 4 `--stateful` (devDependency): a child per session, spawned through a shell;
 * - mcp-proxy 6 (devDependency): its CLI spawns ONE child at start and serves every session
 *   from it (an SDK client to the child, an SDK server per session), so its new sessions wait
 *   for no spawn and its memory does not grow with a child per session.
 *
 * Each runs as the user would start it, with its own logging at its quietest (supergateway
 * logs every message at its default level).
 */
export type FrontName = 'gateway' | 'gateway-shared' | 'supergateway' | 'mcp-proxy';
export const FRONTS: readonly FrontName[] = [
  'gateway',
  'gateway-shared',
  'supergateway',
  'mcp-proxy',
];

export interface StdioFront {
  name: FrontName;
  url: string;
  /** Sent with every request (the gateway's key). */
  headers: Record<string, string>;
  /** The front's own process: CPU is read from it alone, RSS from it and its descendants. */
  proc: Proc;
  stop(): Promise<void>;
}

export const EVERYTHING = join(
  ROOT,
  'node_modules/@modelcontextprotocol/server-everything/dist/index.js',
);
const SUPERGATEWAY = join(ROOT, 'node_modules/supergateway/dist/index.js');
const MCP_PROXY = join(ROOT, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');
const HUGE = 1_000_000_000;

/** `nodeArgs` go to the gateway's process (the bench profiles it through `--inspect`). */
export function startFront(
  name: FrontName,
  maxSessions: number,
  nodeArgs: string[] = [],
): Promise<StdioFront> {
  switch (name) {
    case 'gateway':
      return startStandaloneGateway(name, maxSessions, false, nodeArgs);
    case 'gateway-shared':
      return startStandaloneGateway(name, maxSessions, true, nodeArgs);
    case 'supergateway':
      return startSupergateway();
    case 'mcp-proxy':
      return startMcpProxy();
  }
}

/**
 * The bench config of the stdio path: one namespace, one key. Limits out of reach (the
 * default of 600 a minute per key would stop the load) and room for `maxSessions` children.
 */
export function stdioBenchConfig(key: string, maxSessions: number, shared: boolean): string {
  return JSON.stringify(
    {
      server: { max_sessions_per_key: maxSessions },
      namespaces: {
        everything: {
          upstream: {
            command: process.execPath,
            args: [EVERYTHING, 'stdio'],
            max_children: maxSessions,
            ...(shared && { shared: true }),
          },
        },
      },
      keys: [
        {
          id: 'bench',
          user: 'bench@example.test',
          key,
          namespaces: ['*'],
          rate_limit: { requests: HUGE, per: '1m' },
        },
      ],
      rate_limits: { default: { requests: HUGE, per: '1m' } },
    },
    null,
    2,
  );
}

async function startStandaloneGateway(
  name: FrontName,
  maxSessions: number,
  shared: boolean,
  nodeArgs: string[],
): Promise<StdioFront> {
  const dir = tempDir('stdio-gw');
  const key = `bench-${randomBytes(16).toString('hex')}`;
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, stdioBenchConfig(key, maxSessions, shared));
  const [edgePort, analyticsPort] = await Promise.all([freePort(), freePort()]);
  // Standalone as `npm start` runs it: no NATS, no Redis (in-process bus, local limiter).
  const proc = startService(
    'standalone',
    {
      GATEWAY_CONFIG: configPath,
      EDGE_PORT: String(edgePort),
      ANALYTICS_PORT: String(analyticsPort),
      ANALYTICS_DB: join(dir, 'data', 'analytics.duckdb'),
      GATEWAY_SESSION_SECRET: randomBytes(32).toString('hex'),
      HOST: '127.0.0.1',
      NATS_URL: '',
      REDIS_URL: '',
    },
    nodeArgs,
  );
  const stop = async () => {
    await proc.stop('SIGTERM', 30_000);
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${edgePort}`;
  await ready(waitForHttp(`${base}/readyz`, proc, 60_000), stop);
  return {
    name,
    url: `${base}/mcp/everything`,
    headers: { authorization: `Bearer ${key}` },
    proc,
    stop,
  };
}

async function startSupergateway(): Promise<StdioFront> {
  const port = await freePort();
  // supergateway hands the command to a shell; the paths hold no characters a shell changes.
  const proc = startProcess('supergateway', process.execPath, [
    SUPERGATEWAY,
    '--stdio',
    `${process.execPath} ${EVERYTHING} stdio`,
    '--outputTransport',
    'streamableHttp',
    '--stateful',
    '--port',
    String(port),
    '--healthEndpoint',
    '/healthz',
    '--logLevel',
    'none',
  ]);
  const base = `http://127.0.0.1:${port}`;
  await ready(waitForHttp(`${base}/healthz`, proc), () => proc.stop());
  return { name: 'supergateway', url: `${base}/mcp`, headers: {}, proc, stop: () => proc.stop() };
}

async function startMcpProxy(): Promise<StdioFront> {
  const port = await freePort();
  const proc = startProcess('mcp-proxy', process.execPath, [
    MCP_PROXY,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--server',
    'stream',
    '--',
    process.execPath,
    EVERYTHING,
    'stdio',
  ]);
  const base = `http://127.0.0.1:${port}`;
  // Its one child is connected before it listens; /ping answers once it does.
  await ready(waitForHttp(`${base}/ping`, proc), () => proc.stop());
  return { name: 'mcp-proxy', url: `${base}/mcp`, headers: {}, proc, stop: () => proc.stop() };
}

/** Waits for `starting`; on failure stops what was started, so no front outlives the bench. */
async function ready(starting: Promise<void>, stop: () => Promise<void>): Promise<void> {
  try {
    await starting;
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
