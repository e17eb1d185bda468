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

/** Decisions asked for in one turn of the event loop that share one script run, at most. */
export const MAX_DECISIONS_PER_SCRIPT = 128;

/**
 * Rate-limit decisions in one atomic script, one round trip. Each decision is judged on its own,
 * in the order asked, as if it ran alone: first every scope of it is checked, then, only when
 * each has room, its points are taken from each. A refused request therefore counts nowhere,
 * with no refund to send afterwards, and N replicas let exactly the limit through. Counters are
 * fixed windows, the layout rate-limiter-flexible uses: a counter holds a plain integer whose TTL
 * is what is left of its window, set by the request that created it. The checks of a decision
 * are one MGET; taking is an INCRBY per scope (and the TTL read, or set on a new window): about
 * half the Redis calls of GET, SET NX EX, INCRBY and PTTL per scope. With 0 points nothing is
 * taken; the counts are only read.
 *
 * The decisions of one turn of the event loop go in one run (many requests arrive per socket
 * read under load): one command, one reply to decode, one script call on the Redis server,
 * instead of one of each per request.
 *
 * KEYS: the scope keys of every decision, in order.
 * ARGV: per decision: its number of scopes n, its points, then limit and duration (s) of each of
 * its n keys.
 * Returns, per decision: {0, used1, ttl1, ..., usedN, ttlN} when taken, {i, ttl} when scope i
 * (1-based) refuses.
 */
const CONSUME_SCRIPT = `
local out = {}
local k = 0
local a = 1
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local points = tonumber(ARGV[a + 1])
  local refused = 0
  if points > 0 then
    local counts = redis.call('mget', unpack(KEYS, k + 1, k + n))
    for i = 1, n do
      if tonumber(counts[i] or '0') + points > tonumber(ARGV[a + 2 * i]) then
        refused = i
        break
      end
    end
  end
  if refused > 0 then
    out[#out + 1] = refused
    out[#out + 1] = redis.call('pttl', KEYS[k + refused])
  else
    out[#out + 1] = 0
    for i = 1, n do
      local key = KEYS[k + i]
      local duration = tonumber(ARGV[a + 2 * i + 1])
      local used
      local ttl
      if points > 0 then
        used = redis.call('incrby', key, points)
        -- The first request of a window created the counter: the window starts now.
        if used == points then
          redis.call('expire', key, duration)
          ttl = 1000 * duration
        end
      else
        used = tonumber(redis.call('get', key) or '0')
      end
      if not ttl then
        ttl = redis.call('pttl', key)
        if ttl == -1 then
          redis.call('expire', key, duration)
          ttl = 1000 * duration
        end
      end
      out[#out + 1] = used
      out[#out + 1] = ttl
    end
  end
  k = k + n
  a = a + 2 + 2 * n
end
return out
`;

const COMMAND = 'mcpgwConsumeScopes';

type ScriptClient = Redis & {
  [COMMAND](numKeys: number, ...keysAndArgs: Array<string | number>): Promise<number[]>;
};

interface Pending {
  scopes: RedisScope[];
  points: number;
  resolve: (decision: RedisDecision) => void;
  reject: (error: unknown) => void;
}

/**
 * Registers the script on the client (ioredis sends EVALSHA, and EVAL once if Redis lacks it)
 * and returns the decision function. Decisions asked for in the same turn of the event loop are
 * sent together at its end (setImmediate: after every socket read of that turn), up to
 * MAX_DECISIONS_PER_SCRIPT per script run; when the run fails (Redis down, command timeout),
 * every decision of it fails and each request falls back per `on_store_error`.
 */
export function redisScopes(
  redis: Redis,
): (scopes: RedisScope[], points: number) => Promise<RedisDecision> {
  redis.defineCommand(COMMAND, { lua: CONSUME_SCRIPT });
  const client = redis as ScriptClient;
  let pending: Pending[] = [];

  const run = (batch: Pending[]): void => {
    const keys: string[] = [];
    const args: Array<string | number> = [];
    for (const { scopes, points } of batch) {
      args.push(scopes.length, points);
      for (const scope of scopes) {
        keys.push(scope.key);
        args.push(scope.limit, scope.durationSec);
      }
    }
    client[COMMAND](keys.length, ...keys, ...args).then(
      (reply) => settle(batch, reply),
      (error: unknown) => {
        for (const decision of batch) decision.reject(error);
      },
    );
  };

  const flush = (): void => {
    const all = pending;
    pending = [];
    for (let i = 0; i < all.length; i += MAX_DECISIONS_PER_SCRIPT)
      run(all.slice(i, i + MAX_DECISIONS_PER_SCRIPT));
  };

  return (scopes, points) => {
    // No offline queue: a decision while disconnected fails at once.
    if (redis.status !== 'ready') return Promise.reject(new Error('Redis connection is not ready'));
    return new Promise<RedisDecision>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ scopes, points, resolve, reject });
    });
  };
}

function settle(batch: Pending[], reply: number[]): void {
  let at = 0;
  for (const { scopes, resolve } of batch) {
    const status = reply[at];
    if (status > 0) {
      const index = status - 1;
      const ttl = reply[at + 1];
      at += 2;
      resolve({
        refused: true,
        scope: index,
        msLeft: ttl > 0 ? ttl : scopes[index].durationSec * 1000,
      });
      continue;
    }
    const used: number[] = [];
    const msLeft: number[] = [];
    for (let i = 0; i < scopes.length; i++) {
      used.push(reply[at + 1 + 2 * i]);
      msLeft.push(reply[at + 2 + 2 * i]);
    }
    at += 1 + 2 * scopes.length;
    resolve({ refused: false, used, msLeft });
  }
}
