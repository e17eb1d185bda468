import 'reflect-metadata';
import {
  ConfigError,
  ConfigStore,
  createLogger,
  NatsBus,
  natsNamesAtStart,
  readRuntimeSettings,
} from '#common';
import { startAuth } from './bootstrap.js';

async function main(): Promise<void> {
  const settings = readRuntimeSettings();
  const logger = createLogger('auth', settings.logLevel);
  if (!settings.natsUrl) {
    logger.fatal(
      'NATS_URL is not set: the auth service answers over NATS (use `npm start` for standalone mode)',
    );
    process.exit(1);
  }
  const config = ConfigStore.fromFile(settings.configPath, settings.env, logger).watch();
  const names = natsNamesAtStart(config, logger);
  const bus = await NatsBus.connect(settings.natsUrl, 'auth', names);
  const auth = await startAuth({
    config,
    logger,
    transport: { kind: 'nats', url: settings.natsUrl, bus },
  });
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await auth.close();
    await bus.close();
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
