import type { NatsConnection } from '@nats-io/transport-node';
import type { Bus, ConfigStore, InProcessEventChannel, NatsNames, PinStore } from '#common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TraceOptions } from './tracing/tracing.js';

export interface EdgeOptions {
  port: number;
  host: string;
  edgeId: string;
  sessionSecret: string;
  config: ConfigStore;
  logger: Logger;
  bus: Bus;
  events:
    /** `names`: the deployment's stream and subjects (the same as its NatsBus's). */
    | { kind: 'jetstream'; connection: NatsConnection; names: NatsNames }
    | { kind: 'in-process'; channel: InProcessEventChannel };
  /** Shared counters for rate limits across replicas; in-memory limits without it. */
  redis?: Redis;
  redisPrefix?: string;
  /** How other edges reach this one (EDGE_ADVERTISE_URL); derived from the host and port otherwise. */
  advertiseUrl?: string;
  /** On close, how long to keep accepting while /readyz answers 503 (EDGE_SHUTDOWN_DELAY_MS). */
  shutdownDelayMs?: number;
  /**
   * The pin store (SPEC §7 v2), owned by the caller (standalone: the file store it shares with
   * the analytics service). Without it, a JetStream edge follows the deployment's pins bucket
   * itself, and an in-process edge pins nothing.
   */
  pins?: PinStore;
  /** OpenTelemetry traces (the OTEL_* variables, see tracing/tracing.ts); off without. */
  traces?: TraceOptions;
}

/** Injection tokens of the edge module. */
export const EDGE_OPTIONS = Symbol('EDGE_OPTIONS');
export const EVENT_PUBLISHER = Symbol('EVENT_PUBLISHER');
/** The edge's `Tracing`, or null when traces are off. */
export const TRACING = Symbol('TRACING');
