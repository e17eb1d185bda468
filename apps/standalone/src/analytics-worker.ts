import 'reflect-metadata';
import { parentPort } from 'node:worker_threads';
import {
  ConfigStore,
  createLogger,
  InProcessEventChannel,
  type McpEvent,
  readRuntimeSettings,
  STANDALONE_DEFAULTS,
} from '#common';
import { startAnalytics } from '../../analytics/src/bootstrap.js';
import { PortLink } from './port-link.js';
import { LinkedBus, LinkedPinStore } from './thread-bridges.js';

// Standalone mode's analytics service, on its own thread (analytics-thread.ts starts it): DuckDB
// ingest, queries and the dashboard never take time from the edge's event loop. It reads the
// same settings and config file as the main thread; the bus (auth) and the pin store (the edge's)
// are the main thread's, reached over the link; events arrive in the edge's batches.

async function main(): Promise<void> {
  const link = new PortLink(parentPort!);
  const settings = readRuntimeSettings(process.env, STANDALONE_DEFAULTS);
  const logger = createLogger('analytics', settings.logLevel);
  const config = ConfigStore.fromFile(settings.configPath, settings.env, logger).watch();
  // Signals reach the main thread only: its reloads (SIGHUP) are forwarded.
  link.handle('config.reload', () => config.reload('the gateway reloaded its config'));
  const events = new InProcessEventChannel();
  // Answered once the batch is stored, so the main thread's channel keeps what is not (and
  // retries it), exactly as when the analytics service consumed it directly.
  link.handle('events', async (batch) => {
    for (const event of batch as McpEvent[]) events.publish(event);
    await events.flush();
  });
  const pins = new LinkedPinStore(link);
  await pins.watch(() => undefined);
  const bus = new LinkedBus(link);
  const analytics = await startAnalytics({
    port: settings.analyticsPort,
    host: settings.host,
    dbPath: settings.analyticsDb,
    config,
    bus,
    logger,
    events: { kind: 'in-process', channel: events },
    pins,
  });
  link.handle('close', async () => {
    await events.flush();
    await analytics.close();
    await bus.close();
    config.close();
    // Nothing keeps the thread alive once the link stops listening.
    setImmediate(() => link.close());
  });
  link.notify('ready', { port: analytics.port });
}

main().catch((error: unknown) => {
  // The main thread sees the thread exit with this error.
  throw error;
});
