import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  ErrorCode,
  type EventOutcome,
  GatewayError,
  type InProcessEventChannel,
  type McpEvent,
  type NatsNames,
  type Principal,
} from '#common';
import type { FastifyRequest } from 'fastify';
import { AUDIT_NAMESPACE } from '../storage/schema.js';
import type { Logger } from 'pino';

const EDGE_ID = 'analytics';
/** Waits between attempts to publish an audit event (the last one repeats), for up to a minute. */
const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000];
const GIVE_UP_AFTER_MS = 60_000;

/** Where audit events go: the events stream, like every edge's events. */
export interface AuditSink {
  publish(event: McpEvent): Promise<void>;
}

/**
 * Distributed mode: the deployment's events stream, under the `_admin` namespace subject, with
 * `Nats-Msg-Id` = event id, so the ingest stores it exactly once like any edge's event.
 */
export function jetStreamAuditSink(connection: NatsConnection, names: NatsNames): AuditSink {
  const js = jetstream(connection);
  return {
    publish: async (event) => {
      await js.publish(names.eventSubject(event.namespace), JSON.stringify(event), {
        msgID: event.id,
        timeout: 5_000,
      });
    },
  };
}

/** Standalone mode: the in-process channel the edge publishes to. */
export function inProcessAuditSink(channel: InProcessEventChannel): AuditSink {
  return {
    publish: (event) =>
      channel.publish(event) ? Promise.resolve() : Promise.reject(new Error('event channel full')),
  };
}

/** Where an admin request came from, for its audit event. */
export interface AdminRequestContext {
  requestId: string;
  userAgent: string | null;
}

export function adminRequestContext(request: FastifyRequest): AdminRequestContext {
  const agent = request.headers['user-agent'];
  return { requestId: request.id, userAgent: agent ? agent.slice(0, 256) : null };
}

export interface AdminAction {
  /** `admin/keys/create`, `admin/keys/revoke` or `admin/pins/approve`. */
  method: string;
  /** The admin who acted. */
  principal: Principal;
  /** What was acted on: a key id (null when a create failed before it had one), `{namespace}/{tool}`. */
  target: string | null;
  requestId: string;
  status: number;
  /** The error code of a refused action; null when it succeeded. */
  errorCode: ErrorCode | null;
  durationMs: number;
  clientName: string | null;
}

/**
 * Every admin action, done or refused, as an analytics event (SPEC §5 v2: who, what, when):
 * namespace `_admin`, `method` the action, `tool` the key acted on, key, user and tenant those of
 * the admin (so a tenant admin sees its own tenant's audit). The analytics service stays the only
 * writer of the DuckDB file: the event goes the way an edge's events go and is ingested with
 * them. Publishing never holds up the admin's answer; it is retried for a minute.
 */
export class AuditLog {
  private readonly pending = new Set<Promise<void>>();
  private closing = false;

  constructor(
    private readonly sink: AuditSink,
    private readonly logger: Logger,
  ) {}

  record(action: AdminAction): void {
    const event = auditEvent(action);
    const delivery = this.deliver(event).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  /**
   * Runs an admin action and records it: done, with `status` and the target it names; refused
   * (a GatewayError, rethrown), with the error's status and code and the target asked for.
   */
  async audited<T>(
    asked: {
      method: string;
      principal: Principal;
      context: AdminRequestContext;
      target: string | null;
      status: number;
    },
    action: () => Promise<{ result: T; target: string }>,
  ): Promise<T> {
    const started = performance.now();
    const record = (status: number, errorCode: ErrorCode | null, target: string | null) =>
      this.record({
        method: asked.method,
        principal: asked.principal,
        target,
        requestId: asked.context.requestId,
        status,
        errorCode,
        durationMs: performance.now() - started,
        clientName: asked.context.userAgent,
      });
    try {
      const done = await action();
      record(asked.status, null, done.target);
      return done.result;
    } catch (error) {
      if (error instanceof GatewayError) record(error.status, error.code, asked.target);
      else record(500, ErrorCode.Internal, asked.target);
      throw error;
    }
  }

  /** Waits (bounded) for the events in flight. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  private async deliver(event: McpEvent): Promise<void> {
    const giveUpAt = Date.now() + GIVE_UP_AFTER_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.sink.publish(event);
        return;
      } catch (error) {
        if (this.closing || Date.now() >= giveUpAt) {
          // The log line is the audit record of last resort.
          this.logger.error(
            { err: String(error), event },
            'audit event lost: could not publish it to the events stream',
          );
          return;
        }
        const wait = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  }
}

function auditEvent(action: AdminAction): McpEvent {
  return {
    id: randomUUID(),
    ts: new Date().toISOString(),
    edge_id: EDGE_ID,
    request_id: action.requestId,
    tenant: action.principal.tenant,
    key_id: action.principal.keyId,
    user: action.principal.user,
    // Left out of every request figure (storage/schema.ts).
    namespace: AUDIT_NAMESPACE,
    transport: 'streamable',
    protocol_version: null,
    session_id: null,
    direction: 'client_to_server',
    kind: 'request',
    jsonrpc_id: null,
    method: action.method,
    tool: action.target,
    outcome: outcomeOf(action.status),
    http_status: action.status,
    error_code: action.errorCode,
    duration_ms: Math.round(action.durationMs * 1000) / 1000,
    upstream_ms: null,
    bytes_in: null,
    bytes_out: null,
    client_name: action.clientName,
    client_version: null,
    server: null,
    auth_method: action.principal.authMethod ?? 'key',
    client_tool: null,
    upstream_protocol_version: null,
    count: 1,
    client_network: null,
    tools_listed: null,
    detail: null,
  };
}

/** As for a gateway request (SPEC §7): refused by policy, by a bad request, or failed. */
function outcomeOf(status: number): EventOutcome {
  if (status < 400) return 'ok';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'rate_limited';
  if (status < 500) return 'bad_request';
  return 'upstream_error';
}
