import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM, EVENTS_SUBJECT_WILDCARD } from './mcp-event.js';

/** Window in which JetStream drops a re-published event with the same Nats-Msg-Id. */
export const EVENTS_DUPLICATE_WINDOW_MS = 10 * 60_000;

/**
 * Creates the MCP_EVENTS stream if it is missing (idempotent; edges and analytics both call
 * it at start, whichever comes first). Limits retention: events stay until their age limit,
 * so an analytics outage of up to a week loses nothing.
 */
export async function ensureEventsStream(connection: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(connection);
  try {
    await jsm.streams.info(EVENTS_STREAM);
  } catch {
    try {
      await jsm.streams.add({
        name: EVENTS_STREAM,
        subjects: [EVENTS_SUBJECT_WILDCARD],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: 7 * 24 * 3600 * 1_000_000_000,
        duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
      });
    } catch (error) {
      // Another service created it between our info() and add(): fine.
      await jsm.streams.info(EVENTS_STREAM).catch(() => {
        throw error;
      });
    }
  }
}
