import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  eventually,
  freePort,
  type NatsHandle,
  type Proc,
  startNats,
  startService,
  tempDir,
  waitForHttp,
} from './processes.js';

export interface Gateway {
  edges: string[];
  edgeProcs: Proc[];
  readonly auth: Proc;
  analyticsUrl?: string;
  analytics?: Proc;
  nats: NatsHandle;
  natsUrl: string;
  env: Record<string, string>;
  /** Starts the analytics service again (after a kill), on the same port and DuckDB file. */
  restartAnalytics(): Promise<void>;
  /** Starts the auth service again (after a kill). */
  restartAuth(): Promise<void>;
  dir: string;
  /** SIGTERMs edge i, waits for its exit, then starts it again on the same port. */
  restartEdge(i: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The distributed topology as processes: a private nats-server, auth, N edges sharing the
 * session secret and Redis (unique prefix), optionally analytics. `config` is the YAML body.
 */
export async function startGateway(options: {
  config: string;
  edges?: number;
  analytics?: boolean;
  env?: Record<string, string>;
}): Promise<Gateway> {
  const dir = tempDir('gw');
  const nats = await startNats();
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, options.config);
  const env: Record<string, string> = {
    GATEWAY_CONFIG: configPath,
    NATS_URL: nats.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `test-${randomUUID()}`,
    GATEWAY_SESSION_SECRET: randomUUID(),
    HOST: '127.0.0.1',
    ANALYTICS_DB: join(dir, 'analytics.duckdb'),
    ...options.env,
  };
  let auth = startService('auth', env);
  const edgeProcs: Proc[] = [];
  const edges: string[] = [];
  for (let i = 0; i < (options.edges ?? 1); i++) {
    const port = await freePort();
    edgeProcs.push(startService('edge', { ...env, EDGE_PORT: String(port), EDGE_ID: `edge-${i}` }));
    edges.push(`http://127.0.0.1:${port}`);
  }
  let analytics: Proc | undefined;
  let analyticsUrl: string | undefined;
  if (options.analytics) {
    const port = await freePort();
    analytics = startService('analytics', { ...env, ANALYTICS_PORT: String(port) });
    analyticsUrl = `http://127.0.0.1:${port}`;
  }
  await Promise.all([
    ...edges.map((url, i) => waitForHttp(`${url}/readyz`, edgeProcs[i])),
    ...(analytics ? [waitForHttp(`${analyticsUrl}/readyz`, analytics)] : []),
  ]);
  return {
    edges,
    edgeProcs,
    analyticsUrl,
    get analytics() {
      return analytics;
    },
    get auth() {
      return auth;
    },
    nats,
    natsUrl: nats.url,
    env,
    dir,
    restartAnalytics: async () => {
      analytics = startService('analytics', {
        ...env,
        ANALYTICS_PORT: new URL(analyticsUrl!).port,
      });
      await waitForHttp(`${analyticsUrl}/readyz`, analytics);
    },
    restartAuth: async () => {
      auth = startService('auth', env);
      await eventually(
        () => auth.output.includes('auth service ready'),
        15_000,
        'auth to be ready',
      );
    },
    restartEdge: async (i: number) => {
      await edgeProcs[i].stop('SIGTERM', 20_000);
      const port = new URL(edges[i]).port;
      edgeProcs[i] = startService('edge', { ...env, EDGE_PORT: port, EDGE_ID: `edge-${i}-r` });
      await waitForHttp(`${edges[i]}/readyz`, edgeProcs[i]);
    },
    stop: async () => {
      await Promise.all(
        [...edgeProcs, auth, ...(analytics ? [analytics] : [])].map((proc) => proc.stop()),
      );
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fetch that sends each request to the next edge in turn: one session, every replica. */
export function roundRobinFetch(
  edges: string[],
  extraHeaders: Record<string, string> = {},
): typeof fetch {
  let next = 0;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const edge = new URL(edges[next++ % edges.length]);
    url.host = edge.host;
    const headers = new Headers(init?.headers);
    for (const [name, value] of Object.entries(extraHeaders)) headers.set(name, value);
    return fetch(url, { ...init, headers });
  };
}
