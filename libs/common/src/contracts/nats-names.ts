import type { Logger } from 'pino';
import type { ConfigStore } from '../config/config-store.js';
import type { EventSubject, RequestSubject } from './subjects.js';

/**
 * `events.nats_prefix`: one NATS subject token and part of stream, consumer and bucket names, so
 * no dots, wildcards or spaces; it starts with a letter or digit because NATS keeps names that
 * start with `_` or `$` (`_INBOX`, `$JS`) for itself.
 */
export const NATS_PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** The v1 names, which a deployment without `events.nats_prefix` keeps (SPEC §5, §7). */
const EVENTS_STREAM = 'MCP_EVENTS';
const EVENTS_SUBJECT = 'mcp.events.v1';
const ANALYTICS_DURABLE = 'analytics';
/** No v1 name; chosen so that no prefix makes it (a prefixed bucket is `{prefix}_keys`). */
const KEYS_BUCKET = 'MCP_KEYS';
/** Likewise: a prefixed bucket is `{prefix}_pins`. */
const PINS_BUCKET = 'MCP_PINS';

/**
 * Every name one deployment uses on NATS. Two deployments with different prefixes share no
 * subject, stream, consumer or bucket, so they can share one NATS (SPEC §3 `events.nats_prefix`).
 * Nothing else names things on NATS: the bus maps its contract subjects through `busSubject`,
 * and the events stream, its subjects and the analytics consumer come from here.
 */
export interface NatsNames {
  /** The configured prefix; undefined: the v1 names. */
  readonly prefix: string | undefined;
  /** JetStream stream of analytics events: `MCP_EVENTS` or `{prefix}_MCP_EVENTS`. */
  readonly eventsStream: string;
  /** What the events stream captures: `mcp.events.v1.>` or `{prefix}.mcp.events.v1.>`. */
  readonly eventsSubjects: string;
  /** The analytics service's durable consumer: `analytics` or `{prefix}_analytics`. */
  readonly analyticsDurable: string;
  /** Key-value bucket of keys created at run time (SPEC §5 v2): `MCP_KEYS` or `{prefix}_keys`. */
  readonly keysBucket: string;
  /** Key-value bucket of pinned tool definitions (SPEC §7 v2): `MCP_PINS` or `{prefix}_pins`. */
  readonly pinsBucket: string;
  /** Subject of one namespace's events: `mcp.events.v1.{ns}` or `{prefix}.mcp.events.v1.{ns}`. */
  readonly eventSubject: (namespace: string) => string;
  /** Wire subject of a bus contract: `auth.key.verify.v1` or `{prefix}.auth.key.verify.v1`. */
  readonly busSubject: (subject: RequestSubject | EventSubject) => string;
}

/** The names for `prefix` (the v1 names without one); throws on a prefix NATS cannot carry. */
export function natsNames(prefix?: string): NatsNames {
  if (prefix !== undefined && !NATS_PREFIX.test(prefix)) {
    throw new Error(`invalid NATS prefix "${prefix}"`);
  }
  const dotted = prefix === undefined ? '' : `${prefix}.`;
  const joined = prefix === undefined ? '' : `${prefix}_`;
  const eventsPrefix = `${dotted}${EVENTS_SUBJECT}.`;
  return {
    prefix,
    eventsStream: `${joined}${EVENTS_STREAM}`,
    eventsSubjects: `${eventsPrefix}>`,
    analyticsDurable: `${joined}${ANALYTICS_DURABLE}`,
    keysBucket: prefix === undefined ? KEYS_BUCKET : `${prefix}_keys`,
    pinsBucket: prefix === undefined ? PINS_BUCKET : `${prefix}_pins`,
    // Namespace names are [a-z0-9_-]; an unknown one (404) is recorded under "_unknown".
    eventSubject: (namespace) => `${eventsPrefix}${namespace || '_unknown'}`,
    busSubject: (subject) => `${dotted}${subject}`,
  };
}

/**
 * The names of this deployment, from the config in force at start. Services that share NATS
 * find each other by these names, so one service renaming them under the others would split
 * the deployment: a reload that changes `events.nats_prefix` is logged as ignored until restart.
 */
export function natsNamesAtStart(config: ConfigStore, logger: Logger): NatsNames {
  const names = natsNames(config.current.events.nats_prefix);
  config.onChange((next, previous) => {
    const prefix = next.events.nats_prefix;
    if (prefix === previous.events.nats_prefix || prefix === names.prefix) return;
    logger.warn(
      { in_force: names.prefix ?? null, configured: prefix ?? null },
      'events.nats_prefix changed: ignored until restart (restart every service of the deployment)',
    );
  });
  return names;
}
