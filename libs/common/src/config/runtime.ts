import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from './load.js';

/** pino's levels: what LOG_LEVEL may name. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Process-level settings from the environment (SPEC §2). This module and load.ts are the only
 * places that read process.env.
 */
export interface RuntimeSettings {
  configPath: string;
  edgePort: number;
  analyticsPort: number;
  natsUrl?: string;
  redisUrl?: string;
  sessionSecret: string;
  /** True when GATEWAY_SESSION_SECRET was not set and a random per-process secret is used. */
  sessionSecretGenerated: boolean;
  analyticsDb: string;
  logLevel: string;
  edgeId: string;
  /** How other edges reach this one (forwarding requests of sessions bound to this edge). */
  advertiseUrl?: string;
  /** Prefix of every Redis key the gateway writes (several gateways may share one Redis). */
  redisPrefix: string;
  /**
   * After SIGTERM, how long an edge keeps accepting and serving, with /readyz answering 503,
   * before it stops accepting (EDGE_SHUTDOWN_DELAY_MS, default 0): time for load balancers that
   * check readiness to take it out of rotation first.
   */
  shutdownDelayMs: number;
  host: string;
  /** Extra variables handed to config expansion. */
  env: Record<string, string | undefined>;
}

/** Standalone mode listens on loopback unless HOST says otherwise (see readRuntimeSettings). */
export const STANDALONE_DEFAULTS = { host: '127.0.0.1' } as const;

/**
 * The settings of this process. `defaults.host`: where it listens when HOST is unset (standalone
 * mode, a single process whose demo key is in the README, listens on loopback only; the
 * services of distributed mode on every interface, as other hosts reach them).
 * A malformed variable is a ConfigError naming it: the service stops with one line saying so.
 */
export function readRuntimeSettings(
  env: Record<string, string | undefined> = process.env,
  defaults: { host?: string } = {},
): RuntimeSettings {
  const secret = env.GATEWAY_SESSION_SECRET;
  return {
    configPath: env.GATEWAY_CONFIG || 'gateway.yaml',
    edgePort: port(env.EDGE_PORT, 8080, 'EDGE_PORT'),
    analyticsPort: port(env.ANALYTICS_PORT, 8081, 'ANALYTICS_PORT'),
    natsUrl: env.NATS_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    sessionSecret: secret || randomBytes(32).toString('hex'),
    sessionSecretGenerated: !secret,
    analyticsDb: env.ANALYTICS_DB || './data/analytics.duckdb',
    logLevel: logLevel(env.LOG_LEVEL),
    edgeId: env.EDGE_ID || `${hostname()}-${process.pid}`,
    redisPrefix: env.REDIS_PREFIX || 'mcpgw',
    advertiseUrl: env.EDGE_ADVERTISE_URL || undefined,
    shutdownDelayMs: milliseconds(env.EDGE_SHUTDOWN_DELAY_MS, 0, 'EDGE_SHUTDOWN_DELAY_MS'),
    host: env.HOST || defaults.host || '0.0.0.0',
    env,
  };
}

function logLevel(value: string | undefined): string {
  if (value === undefined || value === '') return 'info';
  if (!LOG_LEVELS.includes(value))
    invalid('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`, value);
  return value;
}

function invalid(name: string, rule: string, value: string): never {
  throw new ConfigError('the environment', [{ path: name, message: `${rule}, got "${value}"` }]);
}

function milliseconds(value: string | undefined, fallback: number, name: string): number {
  return wholeNumber(value, fallback, name, 600_000, 'a whole number of milliseconds');
}

function port(value: string | undefined, fallback: number, name: string): number {
  return wholeNumber(value, fallback, name, 65535, 'a port number');
}

/** An integer setting from 0 to `max`; unset or empty is `fallback`; anything else throws. */
function wholeNumber(
  value: string | undefined,
  fallback: number,
  name: string,
  max: number,
  what: string,
): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > max) {
    invalid(name, `must be ${what} (0-${max})`, value);
  }
  return parsed;
}
