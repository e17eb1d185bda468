import 'reflect-metadata';
import {
  ConfigError,
  ConfigStore,
  createLogger,
  NatsBus,
  natsNamesAtStart,
  readRuntimeSettings,
  TokenCounter,
} from '#common';
import { startEdge } from './bootstrap.js';
import { createRedisClient } from './ratelimit/redis-client.js';
import { traceOptionsFromEnv } from './tracing/tracing.js';

async function main(): Promise<void> {
  // The tokenizer's tables (context budget) load while the services connect and start.
  void TokenCounter.load();
  const settings = readRuntimeSettings();
  const logger = createLogger('edge', settings.logLevel).child({ edge_id: settings.edgeId });
  if (!settings.natsUrl) {
    logger.fatal(
      'NATS_URL is not set: a distributed edge needs NATS (use `npm start` for standalone mode)',
    );
    process.exit(1);
  }
  if (settings.sessionSecretGenerated) {
    logger.warn(
      'GATEWAY_SESSION_SECRET is not set: sessions are bound to this replica only; set the same secret on every edge',
    );
  }
  const config = ConfigStore.fromFile(settings.configPath, settings.env, logger).watch();
  const names = natsNamesAtStart(config, logger);
  const bus = await NatsBus.connect(settings.natsUrl, `edge-${settings.edgeId}`, names);
  // Fail fast: a request never waits on an absent Redis (SPEC §9).
  const redis = settings.redisUrl ? createRedisClient(settings.redisUrl) : undefined;
  // Transitions at warn/info, the retry noise in between at debug.
  let redisReady = false;
  redis?.on('ready', () => {
    redisReady = true;
    logger.info('redis connected: rate limits shared by every edge replica');
  });
  redis?.on('close', () => {
    if (!redisReady) return;
    redisReady = false;
    logger.warn(
      'redis connection lost: rate limits follow rate_limits.on_store_error until it is back',
    );
  });
  redis?.on('error', (error: Error) => logger.debug({ err: error.message }, 'redis error'));
  const edge = await startEdge({
    port: settings.edgePort,
    host: settings.host,
    edgeId: settings.edgeId,
    sessionSecret: settings.sessionSecret,
    config,
    logger,
    bus,
    events: { kind: 'jetstream', connection: bus.connection, names },
    redis,
    redisPrefix: settings.redisPrefix,
    advertiseUrl: settings.advertiseUrl,
    shutdownDelayMs: settings.shutdownDelayMs,
    traces: traceOptionsFromEnv(settings.env),
  });
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await edge.close();
    await bus.close();
    redis?.disconnect();
    config.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
