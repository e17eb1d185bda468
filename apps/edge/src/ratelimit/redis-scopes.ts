import type { Redis } from 'ioredis';

/** One scope's counter in Redis: its key, limit and fixed window. */
export interface RedisScope {
  key: string;
  limit: number;
  durationSec: number;
}

export type RedisDecision =
  /** Taken from every scope: per scope, the count now in its window and the ms left of it. */
  | { refused: false; used: number[]; msLeft: number[] }
  /** Refused by scopes[scope]; nothing was taken from any scope. */
  | { refused: true; scope: number; msLeft: number };

/**
 * All scopes of a decision in one atomic script, one round trip: first every scope is checked,
 * then, only when each has room, `points` are taken from each. A refused request therefore
 * counts nowhere, with no refund to send afterwards, and N replicas let exactly the limit
 * through. Counters are fixed windows (SET NX EX, then INCRBY), the layout rate-limiter-flexible
 * uses, so a counter holds a plain integer with a TTL. With 0 points nothing is taken; the
 * counts are only read.
 *
 * ARGV: points, then limit and duration (s) of each key in KEYS order.
 * Returns {0, used1, ttl1, used2, ttl2, ...} or {i, ttl} when scope i (1-based) refuses.
 */
const CONSUME_SCRIPT = `
local points = tonumber(ARGV[1])
local n = #KEYS
if points > 0 then
  for i = 1, n do
    local used = tonumber(redis.call('get', KEYS[i]) or '0')
    if used + points > tonumber(ARGV[2 * i]) then
      return {i, redis.call('pttl', KEYS[i])}
    end
  end
end
local out = {0}
for i = 1, n do
  local duration = ARGV[2 * i + 1]
  local used
  if points > 0 then
    redis.call('set', KEYS[i], 0, 'EX', duration, 'NX')
    used = redis.call('incrby', KEYS[i], points)
  else
    used = tonumber(redis.call('get', KEYS[i]) or '0')
  end
  local ttl = redis.call('pttl', KEYS[i])
  if ttl == -1 then
    redis.call('expire', KEYS[i], duration)
    ttl = 1000 * tonumber(duration)
  end
  out[2 * i] = used
  out[2 * i + 1] = ttl
end
return out
`;

const COMMAND = 'mcpgwConsumeScopes';

type ScriptClient = Redis & {
  [COMMAND](numKeys: number, ...keysAndArgs: Array<string | number>): Promise<number[]>;
};

/** Registers the script on the client (ioredis sends EVALSHA, and EVAL once if Redis lacks it). */
export function redisScopes(
  redis: Redis,
): (scopes: RedisScope[], points: number) => Promise<RedisDecision> {
  redis.defineCommand(COMMAND, { lua: CONSUME_SCRIPT });
  const client = redis as ScriptClient;
  return async (scopes, points) => {
    // No offline queue: a command while disconnected fails at once, and so does this.
    if (redis.status !== 'ready') throw new Error('Redis connection is not ready');
    const args: Array<string | number> = [];
    for (const scope of scopes) args.push(scope.key);
    args.push(points);
    for (const scope of scopes) args.push(scope.limit, scope.durationSec);
    const reply = await client[COMMAND](scopes.length, ...args);
    if (reply[0] > 0) {
      const index = reply[0] - 1;
      const ttl = reply[1];
      return {
        refused: true,
        scope: index,
        msLeft: ttl > 0 ? ttl : scopes[index].durationSec * 1000,
      };
    }
    const used: number[] = [];
    const msLeft: number[] = [];
    for (let i = 0; i < scopes.length; i++) {
      used.push(reply[2 * i + 1]);
      msLeft.push(reply[2 * i + 2]);
    }
    return { refused: false, used, msLeft };
  };
}
