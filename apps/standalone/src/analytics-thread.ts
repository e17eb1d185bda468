import { Worker } from 'node:worker_threads';
import type { Bus, ConfigStore, InProcessEventChannel, PinStore } from '#common';
import type { Logger } from 'pino';
import { PortLink } from './port-link.js';
import { serveBus, servePins } from './thread-bridges.js';

export interface AnalyticsThread {
  port: number;
  close(): Promise<void>;
}

/**
 * Starts standalone mode's analytics service on a worker thread (analytics-worker.ts), so that
 * DuckDB's ingest and queries run beside the edge rather than on its event loop (`npm start`
 * then costs the edge no more per call than a distributed edge pays to publish). The edge's
 * events reach it in batches over the thread's port; a batch is taken off the channel only once
 * stored, so a thread that fails or restarts loses nothing the channel still holds. The thread
 * reaches the auth service over the in-process bus and the edge's pin store through this one.
 */
export async function startAnalyticsThread(deps: {
  bus: Bus;
  events: InProcessEventChannel;
  pins: PinStore;
  config: ConfigStore;
  logger: Logger;
}): Promise<AnalyticsThread> {
  // The thread shares the process's V8 flags (a worker may not be given its own).
  const worker = new Worker(new URL('./analytics-worker.js', import.meta.url));
  const link = new PortLink(worker);
  const unsubscribe = serveBus(link, deps.bus);
  let exited = false;
  const ready = new Promise<number>((resolve, reject) => {
    link.handle('ready', (payload) => resolve((payload as { port: number }).port));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the analytics thread exited (${code})`)));
  });
  worker.on('exit', () => {
    exited = true;
    link.close();
  });
  worker.on('error', (error) =>
    deps.logger.error({ err: error }, 'the analytics thread failed; events wait for it'),
  );
  await servePins(link, deps.pins);
  const port = await ready;
  deps.events.consume((batch) => link.request('events', batch).then(() => undefined));
  const stopReloads = deps.config.onChange(() => link.notify('config.reload'));
  return {
    port,
    close: async () => {
      stopReloads();
      unsubscribe();
      if (exited) return;
      await deps.events.flush();
      await link.request('close');
      await new Promise<void>((resolve) =>
        exited ? resolve() : worker.once('exit', () => resolve()),
      );
    },
  };
}
