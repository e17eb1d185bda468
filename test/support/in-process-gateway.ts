import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  ConfigStore,
  InProcessBus,
  InProcessEventChannel,
  type McpEvent,
  parseConfig,
} from '#common';
import pino from 'pino';
import { startAuth } from '../../apps/auth/src/bootstrap.js';
import { type EdgeHandle, type EdgeOptions, startEdge } from '../../apps/edge/src/bootstrap.js';

export interface InProcessGateway {
  /** Edges sharing the session secret and the bus: a session held by one is forwarded by the other. */
  edges: EdgeHandle[];
  /** The edges' shared session secret (what forwarding marks are made with). */
  sessionSecret: string;
  /** The config in force: with `configFile`, `config.reload()` applies what the file says now. */
  config: ConfigStore;
  /** Every event the edges published, in order. */
  events: McpEvent[];
  /** Resolves once every event published so far is in `events` (and every ended span exported). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The edge core in this process against wire-level backends: the auth service and `edges`
 * edges on port 0, in-process bus and events (standalone mode's transports), no Redis, no
 * child processes but the backends' own. Starts in well under a second.
 */
export async function startInProcessGateway(
  yaml: string,
  options: {
    edges?: number;
    /** The first edge's port (default: any free one). */ port?: number;
    /** OpenTelemetry traces, on every edge (off without). */
    traces?: EdgeOptions['traces'];
    /** `yaml` is written here and the config read from it, so a test can change it and reload. */
    configFile?: string;
  } = {},
): Promise<InProcessGateway> {
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  let config: ConfigStore;
  if (options.configFile) {
    writeFileSync(options.configFile, yaml);
    config = ConfigStore.fromFile(options.configFile, process.env);
  } else {
    config = new ConfigStore(parseConfig(yaml, process.env, 'test config'));
  }
  const bus = new InProcessBus();
  const channel = new InProcessEventChannel();
  const events: McpEvent[] = [];
  channel.consume((batch) => {
    events.push(...batch);
    return Promise.resolve();
  });
  const auth = await startAuth({ config, logger, transport: { kind: 'in-process', bus } });
  const sessionSecret = randomUUID();
  const edges: EdgeHandle[] = [];
  for (let i = 0; i < (options.edges ?? 1); i++) {
    edges.push(
      await startEdge({
        port: i === 0 ? (options.port ?? 0) : 0,
        host: '127.0.0.1',
        edgeId: `edge-${i}-${randomUUID().slice(0, 8)}`,
        sessionSecret,
        config,
        logger,
        bus,
        events: { kind: 'in-process', channel },
        traces: options.traces,
      }),
    );
  }
  return {
    edges,
    sessionSecret,
    config,
    events,
    flush: async () => {
      for (const edge of edges) await edge.publisher.flush();
      await channel.flush();
      for (const edge of edges) await edge.flushTraces();
    },
    stop: async () => {
      await Promise.all(edges.map((edge) => edge.close(1_000)));
      await auth.close();
    },
  };
}
