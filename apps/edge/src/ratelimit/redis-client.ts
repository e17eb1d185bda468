import { Redis } from 'ioredis';

/** How long one Redis command may take before the limiter decides without it (SPEC §9). */
export const REDIS_COMMAND_TIMEOUT_MS = 200;

/**
 * The edge's Redis client for shared limits. It fails fast rather than waiting: no offline
 * queue (a command while disconnected fails at once), no retries of a command, a short command
 * timeout (a stalled server); the limiters then fall back or deny per `on_store_error`.
 * No auto-pipelining: a rate-limit decision is one command already, and the decisions of one
 * turn of the event loop share one script run (redis-scopes.ts); ioredis' per-turn pipeline
 * object cost ~8 KB of garbage and its own CPU per request.
 */
export function createRedisClient(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 1_000,
    enableAutoPipelining: false,
    lazyConnect: false,
  });
}
