import { BENCH_PUBLIC_URL } from './jwt-issuer.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  freePort,
  type Nats,
  type Proc,
  ROOT,
  startNats,
  startProcess,
  startService,
  tempDir,
  waitForHttp,
} from './processes.js';

/** The bench client's API key: a tenant's key on every namespace, limits never reached. */
export const BENCH_KEY = `bench-${randomBytes(16).toString('hex')}`;
export const BENCH_KEY_ID = 'bench';
/** An admin key without tenant, which reads every tenant's analytics. */
export const ADMIN_KEY = `bench-admin-${randomBytes(16).toString('hex')}`;
const HUGE = 1_000_000_000;

export interface Backend {
  ports: number[];
  urls: string[];
  proc: Proc;
  stop(): Promise<void>;
}

/** The minimal fast backend in its own process, on `count` loopback ports. */
export async function startBackend(count = 1): Promise<Backend> {
  const proc = startProcess('backend', process.execPath, [
    join(ROOT, 'dist/bench/support/fast-backend.js'),
    String(count),
  ]);
  const line = await proc.announced(/BENCH_BACKEND (.*)/, 10_000);
  const { ports } = JSON.parse(line) as { ports: number[] };
  return {
    ports,
    urls: ports.map((port) => `http://127.0.0.1:${port}/mcp`),
    proc,
    stop: () => proc.stop(),
  };
}

/** bench/support/bare-proxy.ts in front of `backendUrl`: the single-process Node proxy floor. */
export async function startBareProxy(
  backendUrl: string,
): Promise<{ url: string; proc: Proc; stop: () => Promise<void> }> {
  const proc = startProcess('bare proxy', process.execPath, [
    join(ROOT, 'dist/bench/support/bare-proxy.js'),
    backendUrl,
  ]);
  const line = await proc.announced(/BENCH_BARE_PROXY (.*)/, 10_000);
  const { port } = JSON.parse(line) as { port: number };
  return { url: `http://127.0.0.1:${port}/mcp`, proc, stop: () => proc.stop() };
}

/**
 * The gateway config of the bench (SPEC §10 "key cached, Redis limits on, events on, filtering
 * on"): every namespace has a deny filter and a key × namespace limit, the key has its own limit
 * and a tenant with one, so a request takes all three Redis scopes. Limits are far out of reach.
 * JSON is YAML, so the file is written with JSON.stringify.
 */
export function benchConfig(
  namespaces: Record<string, string>,
  oauthIssuer?: string,
  servers?: Record<string, string[]>,
): string {
  return JSON.stringify(
    {
      ...(oauthIssuer && { server: { public_url: BENCH_PUBLIC_URL } }),
      namespaces: Object.fromEntries(
        Object.entries(namespaces).map(([name, url]) => [
          name,
          {
            upstream: { url },
            tools: { allow: ['*'], deny: ['secret_*'] },
            rate_limit: { requests: HUGE, per: '1m' },
          },
        ]),
      ),
      ...(servers && {
        servers: Object.fromEntries(
          Object.entries(servers).map(([name, members]) => [name, { namespaces: members }]),
        ),
      }),
      tenants: { benchco: { rate_limit: { requests: HUGE, per: '1m' } } },
      keys: [
        {
          id: BENCH_KEY_ID,
          user: 'bench@example.test',
          tenant: 'benchco',
          key: BENCH_KEY,
          namespaces: ['*'],
          rate_limit: { requests: HUGE, per: '1m' },
        },
        {
          id: 'bench-admin',
          user: 'ops@example.test',
          key: ADMIN_KEY,
          role: 'admin',
          namespaces: ['*'],
        },
      ],
      rate_limits: { default: { requests: HUGE, per: '1m' }, on_store_error: 'allow' },
      ...(oauthIssuer && {
        auth: { oauth: { issuers: [{ issuer: oauthIssuer, required_scopes: ['mcp'] }] } },
      }),
      // The query bench spans 30 days of events: keep all of them.
      analytics: { retention_days: 31 },
    },
    null,
    2,
  );
}

export interface Gateway {
  nats: Nats;
  auth: Proc;
  edge?: Proc;
  edgeUrl?: string;
  analytics?: Proc;
  analyticsUrl?: string;
  env: Record<string, string>;
  dir: string;
  /** (Re)starts the analytics service on `dbPath` (default: a file in this run's temp dir). */
  startAnalytics(dbPath?: string, nodeArgs?: string[]): Promise<void>;
  stopAnalytics(): Promise<void>;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** namespace → backend URL; an edge is started when given. */
  namespaces?: Record<string, string>;
  edge?: boolean;
  analytics?: boolean;
  /** Node flags of the edge process (e.g. --cpu-prof). */
  edgeNodeArgs?: string[];
  /** An OAuth issuer whose JWT access tokens the edge accepts beside keys. */
  oauthIssuer?: string;
  /** Virtual servers: name → member namespaces. */
  servers?: Record<string, string[]>;
}

/** Distributed mode (SPEC §2) as processes: private NATS with JetStream, auth, one edge, analytics. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const dir = tempDir('gw');
  const nats = await startNats();
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(
    configPath,
    benchConfig(options.namespaces ?? {}, options.oauthIssuer, options.servers),
  );
  const env: Record<string, string> = {
    GATEWAY_CONFIG: configPath,
    NATS_URL: nats.url,
    REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench-${randomUUID()}`,
    GATEWAY_SESSION_SECRET: randomBytes(32).toString('hex'),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ANALYTICS_DB: join(dir, 'analytics.duckdb'),
  };
  const auth = startService('auth', env);
  const gateway: Gateway = {
    nats,
    auth,
    env,
    dir,
    startAnalytics: async (dbPath, nodeArgs = []) => {
      const port = await freePort();
      const proc = startService(
        'analytics',
        { ...env, ANALYTICS_PORT: String(port), ...(dbPath ? { ANALYTICS_DB: dbPath } : {}) },
        nodeArgs,
      );
      gateway.analytics = proc;
      gateway.analyticsUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${gateway.analyticsUrl}/readyz`, proc, 120_000);
    },
    stopAnalytics: async () => {
      await gateway.analytics?.stop('SIGTERM', 60_000);
      gateway.analytics = undefined;
    },
    stop: async () => {
      const procs = [gateway.edge, gateway.analytics, auth].filter((p) => p !== undefined);
      await Promise.all(procs.map((proc) => proc.stop('SIGTERM', 30_000)));
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    if (options.edge) {
      const port = await freePort();
      gateway.edge = startService(
        'edge',
        { ...env, EDGE_PORT: String(port), EDGE_ID: 'bench-edge' },
        options.edgeNodeArgs,
      );
      gateway.edgeUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${gateway.edgeUrl}/readyz`, gateway.edge);
    }
    if (options.analytics) await gateway.startAnalytics();
  } catch (error) {
    await gateway.stop();
    throw error;
  }
  return gateway;
}

/**
 * What `starting` resolves to; when it fails, the processes already started are stopped first,
 * so a scenario whose gateway cannot start fails (and the bench goes on) instead of leaving a
 * backend running that keeps the bench alive forever.
 */
export async function orStop<T>(
  starting: Promise<T>,
  ...started: Array<{ stop(): Promise<void> }>
): Promise<T> {
  try {
    return await starting;
  } catch (error) {
    await Promise.all(started.map((proc) => proc.stop().catch(() => undefined)));
    throw error;
  }
}

export const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

/** A 1 KiB `tools/call` (SPEC §10). */
export function toolsCallBody(id: number | string): string {
  const head = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"echo","arguments":{"text":"`;
  const tail = '"}}}';
  return head + 'a'.repeat(Math.max(0, 1024 - head.length - tail.length)) + tail;
}

/** One call through the edge so the key's verify answer is cached before anything is timed. */
export async function warmKey(edgeUrl: string, namespace: string): Promise<void> {
  const response = await fetch(`${edgeUrl}/mcp/${namespace}`, {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${BENCH_KEY}` },
    body: toolsCallBody(0),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`warm-up call failed: ${response.status} ${text}`);
}
