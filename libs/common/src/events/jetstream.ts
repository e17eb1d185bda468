import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsNames } from '../contracts/nats-names.js';

/** Window in which JetStream drops a re-published event with the same Nats-Msg-Id. */
export const EVENTS_DUPLICATE_WINDOW_MS = 10 * 60_000;

/**
 * Creates the events stream of the deployment named by `names` if it is missing (idempotent;
 * edges and analytics both call it at start, whichever comes first). Limits retention: events
 * stay until their age limit, so an analytics outage of up to a week loses nothing.
 */
export async function ensureEventsStream(
  connection: NatsConnection,
  names: NatsNames,
): Promise<void> {
  const name = names.eventsStream;
  const subjects = [names.eventsSubjects];
  const jsm = await jetstreamManager(connection);
  try {
    await jsm.streams.info(name);
  } catch {
    try {
      await jsm.streams.add({
        name,
        subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: 7 * 24 * 3600 * 1_000_000_000,
        duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
      });
    } catch (error) {
      // Another service created it between our info() and add(): fine.
      await jsm.streams.info(name).catch(() => {
        throw error;
      });
    }
  }
}
