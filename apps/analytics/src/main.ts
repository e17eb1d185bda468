import 'reflect-metadata';
import {
  ConfigError,
  ConfigStore,
  createLogger,
  KvPinStore,
  NatsBus,
  natsNamesAtStart,
  readRuntimeSettings,
} from '#common';
import { startAnalytics } from './bootstrap.js';
import { DatabaseLockedError } from './storage/event-store.js';

/** Distributed mode (SPEC §2): `npm run start:analytics` with NATS_URL set. */
async function main(): Promise<void> {
  const settings = readRuntimeSettings();
  const logger = createLogger('analytics', settings.logLevel);
  if (!settings.natsUrl) {
    console.error(
      'NATS_URL is not set: the analytics service consumes events from NATS JetStream in distributed mode ' +
        '(use `npm start` for standalone mode)',
    );
    process.exit(1);
  }
  const config = ConfigStore.fromFile(settings.configPath, settings.env, logger).watch();
  const names = natsNamesAtStart(config, logger);
  const bus = await NatsBus.connect(settings.natsUrl, 'analytics', names);
  // The pins every edge writes: followed from start, so the pins API answers what they hold
  // (watch() gives up waiting after its bound and keeps trying while JetStream is away).
  const pins = new KvPinStore(
    bus.connection,
    names.pinsBucket,
    logger.child({ component: 'pins' }),
  );
  let analytics;
  try {
    await pins.watch(() => undefined);
    analytics = await startAnalytics({
      port: settings.analyticsPort,
      host: settings.host,
      dbPath: settings.analyticsDb,
      config,
      bus,
      logger,
      events: { kind: 'jetstream', connection: bus.connection, names },
      pins,
    });
  } catch (error) {
    await pins.close();
    await bus.close().catch(() => undefined);
    config.close();
    throw error;
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await analytics.close();
    await pins.close();
    await bus.close().catch(() => undefined);
    config.close();
    logger.flush();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // Known startup refusals are explained in one line; anything else keeps its stack.
  console.error(
    error instanceof ConfigError || error instanceof DatabaseLockedError ? error.message : error,
  );
  process.exit(1);
});
