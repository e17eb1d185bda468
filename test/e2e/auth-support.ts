import { randomUUID } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  eventually,
  freePort,
  type Proc,
  startEverything,
  startNats,
  startService,
  tempDir,
  waitForHttp,
} from '../support/processes.js';

// Shared by the auth-*.e2e-spec.ts files: the distributed topology as real processes (a private
// nats-server, auth, N edges, a real MCP backend), with handles to kill and restart each part.

export interface EdgeSpec {
  /** A config file of its own (YAML body); default: the cluster's file. */
  config?: string;
  env?: Record<string, string>;
}

export interface Cluster {
  backendUrl: string;
  natsUrl: string;
  configPath: string;
  dir: string;
  env: Record<string, string>;
  auth: Proc;
  edges: Proc[];
  urls: string[];
  /** Kills the private nats-server (SIGKILL: a crash). */
  killNats(): Promise<void>;
  /** Starts another auth service process (after the first was stopped). */
  restartAuth(): Proc;
  /** Replaces the config file atomically, as editors and config management do. */
  writeConfig(yaml: string): void;
  /** Every process's output so far, for log assertions. */
  output(): string;
  stop(): Promise<void>;
}

export async function startCluster(options: {
  /** The YAML body; `BACKEND` is the backend's URL. */
  config: (backend: string) => string;
  edges: EdgeSpec[] | number;
  env?: Record<string, string>;
}): Promise<Cluster> {
  const dir = tempDir('auth');
  const [nats, backend] = await Promise.all([startNats(), startEverything('streamableHttp')]);
  const configPath = join(dir, 'gateway.yaml');
  const writeConfig = (yaml: string) => {
    const next = `${configPath}.next`;
    writeFileSync(next, yaml);
    renameSync(next, configPath);
  };
  writeFileSync(configPath, options.config(backend.url));
  const env: Record<string, string> = {
    GATEWAY_CONFIG: configPath,
    NATS_URL: nats.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `test-${randomUUID()}`,
    GATEWAY_SESSION_SECRET: randomUUID(),
    HOST: '127.0.0.1',
    ...options.env,
  };
  const procs: Proc[] = [];
  let auth = startService('auth', env);
  procs.push(auth);
  const specs: EdgeSpec[] =
    typeof options.edges === 'number'
      ? Array.from({ length: options.edges }, () => ({}))
      : options.edges;
  const edges: Proc[] = [];
  const urls: string[] = [];
  for (const [i, spec] of specs.entries()) {
    const port = await freePort();
    const edgeEnv: Record<string, string> = {
      ...env,
      EDGE_PORT: String(port),
      EDGE_ID: `edge-${i}`,
      ...spec.env,
    };
    if (spec.config) {
      edgeEnv.GATEWAY_CONFIG = join(dir, `edge-${i}.yaml`);
      writeFileSync(edgeEnv.GATEWAY_CONFIG, spec.config.replaceAll('BACKEND', backend.url));
    }
    const edge = startService('edge', edgeEnv);
    edges.push(edge);
    procs.push(edge);
    urls.push(`http://127.0.0.1:${port}`);
  }
  // Ready = NATS, Redis and the auth service reachable from every edge.
  await Promise.all(urls.map((url, i) => waitForHttp(`${url}/readyz`, edges[i], 30_000)));
  return {
    backendUrl: backend.url,
    natsUrl: nats.url,
    configPath,
    dir,
    env,
    get auth() {
      return auth;
    },
    edges,
    urls,
    killNats: () => nats.proc.stop('SIGKILL'),
    restartAuth: () => {
      auth = startService('auth', env);
      procs.push(auth);
      return auth;
    },
    writeConfig,
    output: () => [...procs, backend.proc, nats.proc].map((proc) => proc.output).join('\n'),
    stop: async () => {
      await Promise.all([...procs, backend.proc].map((proc) => proc.stop()));
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const INITIALIZE = (id: number | string) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'auth-e2e', version: '1.0.0' },
  },
});

/** A plain MCP POST; answers with the status, headers, parsed JSON body (if JSON) and its duration. */
export async function mcpPost(
  url: string,
  headers: Record<string, string>,
  body: unknown = INITIALIZE(1),
): Promise<{ status: number; headers: Headers; json?: RpcErrorBody; ms: number }> {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  let json: RpcErrorBody | undefined;
  if (response.headers.get('content-type')?.includes('application/json'))
    json = JSON.parse(text) as RpcErrorBody;
  return { status: response.status, headers: response.headers, json, ms };
}

export interface RpcErrorBody {
  jsonrpc?: string;
  id?: number | string | null;
  error?: { code: number; message: string; data?: { code: string; requestId: string } };
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** The value of one Prometheus series of an edge (0 when absent). */
export async function metric(edgeUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${edgeUrl}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** How many times a log line with this message was written by a process so far. */
export function logCount(proc: Proc, message: string): number {
  return proc.output.split('\n').filter((line) => line.includes(`"msg":"${message}"`)).length;
}

export async function waitForLog(
  proc: Proc,
  message: string,
  atLeast = 1,
  timeoutMs = 10_000,
): Promise<void> {
  await eventually(
    () => Promise.resolve(logCount(proc, message) >= atLeast),
    timeoutMs,
    `${proc.name} to log "${message}"`,
  );
}
