import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ConfigError,
  ConfigStore,
  PinsFileError,
  createLogger,
  FilePinStore,
  InProcessBus,
  InProcessEventChannel,
  readRuntimeSettings,
  STANDALONE_DEFAULTS,
  TokenCounter,
} from '#common';
// Standalone mode is the composition root: the one place that runs all three services in one
// process. The services themselves never import each other.
import { KeysFileError, startAuth } from '../../auth/src/bootstrap.js';
import { startEdge, traceOptionsFromEnv } from '../../edge/src/bootstrap.js';
import { startAnalyticsThread } from './analytics-thread.js';

async function main(): Promise<void> {
  // The tokenizer's tables (context budget) load while the services connect and start.
  void TokenCounter.load();
  const settings = readRuntimeSettings(process.env, STANDALONE_DEFAULTS);
  const logger = createLogger('gateway', settings.logLevel);
  const config = ConfigStore.fromFile(settings.configPath, settings.env, logger).watch();
  const bus = new InProcessBus();
  // Up to 1,000 events a batch, or what came in 250 ms: each batch costs DuckDB a fixed few
  // statements on the analytics thread, so batches of a few events would cost more CPU than the
  // calls they record; an event is still queryable well within SPEC's 2 s.
  const events = new InProcessEventChannel(100_000, 1_000, 250);
  mkdirSync(dirname(settings.analyticsDb), { recursive: true });

  const auth = await startAuth({
    config,
    logger: createLogger('auth', settings.logLevel),
    transport: { kind: 'in-process', bus },
    // Keys created through the admin API (SPEC §5 v2): beside the DuckDB file.
    keysFile: join(dirname(settings.analyticsDb), 'keys.json'),
  });
  // Pinned tool definitions (SPEC §7 v2), beside the DuckDB file: one store for the edge, which
  // pins and checks, and the analytics service, which lists and approves.
  const pins = new FilePinStore(join(dirname(settings.analyticsDb), 'pins.json'));
  // Analytics on its own thread: DuckDB never runs on the edge's event loop.
  const analytics = await startAnalyticsThread({ bus, events, pins, config, logger });
  const edge = await startEdge({
    port: settings.edgePort,
    host: settings.host,
    edgeId: settings.edgeId,
    sessionSecret: settings.sessionSecret,
    config,
    logger: createLogger('edge', settings.logLevel),
    bus,
    events: { kind: 'in-process', channel: events },
    shutdownDelayMs: settings.shutdownDelayMs,
    traces: traceOptionsFromEnv(settings.env),
    pins,
  });

  printBanner(config, settings.host, edge.port, analytics.port);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await edge.close();
    await events.flush();
    await analytics.close();
    await auth.close();
    config.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

function printBanner(
  config: ConfigStore,
  host: string,
  edgePort: number,
  analyticsPort: number,
): void {
  const { namespaces, servers, keys } = config.current;
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(host);
  const lines = [
    '',
    'MCP Gateway is running (standalone mode: edge + auth + analytics in one process)',
    '',
    '  MCP endpoints (Streamable HTTP):',
    ...[...Object.keys(namespaces), ...Object.keys(servers)].map(
      (name) => `    http://localhost:${edgePort}/mcp/${name}`,
    ),
    '',
    `  Analytics:   http://localhost:${analyticsPort}/   (API: http://localhost:${analyticsPort}/api/v1/summary)`,
    `  Operations:  http://localhost:${edgePort}/healthz  /readyz  /metrics`,
    loopback
      ? `  Listening on ${host} only: set HOST=0.0.0.0 to accept other machines.`
      : `  Listening on ${host}: reachable from other machines (the analytics port too).`,
    '',
  ];
  // Only a placeholder secret written in the config in clear (`change-me`) is shown: a key set
  // through an environment variable (DEMO_KEY) or hashed (`key_sha256`) never is.
  const demoKeys = keys.filter((key) => key.key !== undefined && key.id.startsWith('demo'));
  for (const key of demoKeys) {
    const shown = key.key!.includes('change-me');
    lines.push(
      `  Demo key (${key.id}, role ${key.role}): ${shown ? key.key : 'set by you (not shown)'}`,
    );
  }
  const example = demoKeys.find((key) => key.key!.includes('change-me'));
  if (example) {
    lines.push(
      '',
      `  Try: curl -s -H "Authorization: Bearer ${example.key}" http://localhost:${analyticsPort}/api/v1/summary`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError || error instanceof KeysFileError || error instanceof PinsFileError
      ? error.message
      : error,
  );
  process.exit(1);
});
