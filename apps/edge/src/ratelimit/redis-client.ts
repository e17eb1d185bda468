import { Redis } from 'ioredis';

/** How long one Redis command may take before the limiter decides without it (SPEC §9). */
export const REDIS_COMMAND_TIMEOUT_MS = 200;

/**
 * The edge's Redis client for shared limits. It fails fast rather than waiting: no offline
 * queue (a command while disconnected fails at once), no retries of a command, a short command
 * timeout (a stalled server); the limiters then fall back or deny per `on_store_error`.
 * Auto-pipelining sends the commands of one tick together, so the scopes of one rate-limit
 * decision share one round trip.
 */
export function createRedisClient(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 1_000,
    enableAutoPipelining: true,
    lazyConnect: false,
  });
}
