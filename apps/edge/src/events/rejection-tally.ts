import { randomUUID } from 'node:crypto';
import type { McpEvent } from '#common';
import type { EventPublisher } from './event-publisher.js';

const MINUTE_MS = 60_000;
/** Groups kept per minute; past this, further client networks share one row (`*`). */
const MAX_GROUPS = 10_000;
/** How often the counts so far go out (so analytics shows them within seconds, not a minute). */
const PUBLISH_MS = 5_000;

interface Group {
  /** The group's row: one id for the whole minute, its count and bytes so far. */
  event: McpEvent;
  minute: number;
  /** `event.count` when it last went out (0: not yet). */
  published: number;
}

/**
 * Rejected requests without a valid credential as counts per minute (SPEC §7 v2): one row per
 * minute, namespace, outcome (with its status and error code) and client network, whose `count`
 * says how many requests it stands for, instead of one event each. So a client that knocks
 * thousands of times a second grows the store by a row a minute, not a row a request, and the
 * edge's buffer and NATS carry no more than a message per group every 5 s either.
 *
 * It sits in front of the edge's real publisher: every other event passes straight through. An
 * event is folded when the recorder marked it (`auth_method: 'none'` with its `client_network`
 * set: see ExchangeRecorder.rejected). Every 5 s a group that counted more goes out again, under
 * the same id with its count so far (so analytics shows a minute's knocking within seconds, and
 * keeps the one row with the largest count: see the analytics store's STAGE_GROWN_SQL); a group
 * is forgotten once its minute is over and its last count went out. On flush or close the counts
 * go out too, so nothing counted is lost on shutdown.
 */
export class RejectionTally implements EventPublisher {
  private readonly groups = new Map<string, Group>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly inner: EventPublisher,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.publishCounts(), PUBLISH_MS);
    this.sweeper.unref();
  }

  get depth(): number {
    let waiting = 0;
    for (const group of this.groups.values()) if (group.event.count !== group.published) waiting++;
    return this.inner.depth + waiting;
  }

  publish(event: McpEvent): void {
    if (event.auth_method !== 'none' || event.client_network === null) {
      this.inner.publish(event);
      return;
    }
    const minute = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    let network = event.client_network;
    let key = groupKey(minute, event, network);
    let group = this.groups.get(key);
    if (!group && this.groups.size >= MAX_GROUPS) {
      network = '*';
      key = groupKey(minute, event, network);
      group = this.groups.get(key);
    }
    if (group) {
      group.event.count += event.count;
      if (event.bytes_in !== null)
        group.event.bytes_in = (group.event.bytes_in ?? 0) + event.bytes_in;
      return;
    }
    this.groups.set(key, {
      minute,
      published: 0,
      event: {
        ...event,
        id: randomUUID(),
        ts: new Date(minute).toISOString(),
        client_network: network,
        kind: null,
        jsonrpc_id: null,
        method: null,
        tool: null,
        client_tool: null,
        upstream_protocol_version: null,
        session_id: null,
        client_name: null,
        client_version: null,
        duration_ms: null,
        upstream_ms: null,
        bytes_out: null,
      },
    });
  }

  async flush(timeoutMs?: number): Promise<void> {
    this.publishCounts();
    await this.inner.flush(timeoutMs);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.publishCounts();
    await this.inner.close();
  }

  /**
   * Publishes each group that counted more since it last went out, with its count so far, and
   * forgets the groups of minutes that are over (their last count has just gone out).
   */
  private publishCounts(): void {
    const minute = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    for (const [key, group] of this.groups) {
      if (group.event.count !== group.published) {
        group.published = group.event.count;
        this.inner.publish({ ...group.event });
      }
      if (group.minute < minute) this.groups.delete(key);
    }
  }
}

function groupKey(minute: number, event: McpEvent, network: string): string {
  return `${minute}\n${event.namespace}\n${event.outcome}\n${event.http_status}\n${event.error_code}\n${event.transport}\n${network}`;
}
