import type { Server } from 'node:http';
import net from 'node:net';
import type { BridgeSessions } from '../bridge/bridge-sessions.js';
import type { EraBridge } from '../era/era-bridge.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Readiness } from '../health/readiness.js';
import type { Tracing } from '../tracing/tracing.js';
import type { ForwardedUpstream } from '../upstream/forwarded.js';
import type { HttpPassthrough } from '../upstream/http-passthrough.js';
import type { InFlight } from './in-flight.js';

/** Time for requests on already-accepted connections to arrive once accepting has stopped. */
const SETTLE_MS = 250;

export interface DrainParts {
  server: Server;
  readiness: Readiness;
  inflight: InFlight;
  http: HttpPassthrough;
  bridges: BridgeSessions;
  /** Backend sessions held for 2026-07-28 clients. */
  era?: EraBridge;
  forwarded: ForwardedUpstream;
  publisher: EventPublisher;
  /** Traces, when on: exported before the edge is gone. */
  tracing: Tracing | null;
  /** How long to keep accepting while /readyz answers 503 (EDGE_SHUTDOWN_DELAY_MS). */
  delayMs: number;
  /** How long to wait for in-flight unary requests. */
  graceMs: number;
}

/**
 * Graceful shutdown (SPEC §8): stop accepting, close SSE streams cleanly, finish in-flight unary
 * requests (bounded by `graceMs` in all), then end the backend sessions they were waiting on,
 * and flush events (and spans). Bridged sessions (stdio children, legacy SSE backends, a
 * 2026-07-28 client's backend sessions) stay up while their calls finish, as the pass-through's
 * backends do: closing them first answered those calls -32052 or cut them off.
 */
export async function drain(parts: DrainParts): Promise<void> {
  const { server, inflight } = parts;
  parts.readiness.draining = true;
  // Load balancers that check /readyz take this edge out of rotation while it still serves what
  // they send meanwhile. Closing the listener at once would reset the connections still in its
  // accept backlog: requests a client cannot tell were never seen.
  if (parts.delayMs) await new Promise((resolve) => setTimeout(resolve, parts.delayMs));
  // Stop accepting at the socket level only: http.Server#close() would also drop accepted
  // connections whose request has not been read yet, a reset the client cannot retry.
  net.Server.prototype.close.call(server);
  const deadline = Date.now() + parts.graceMs;
  const left = () => Math.max(0, deadline - Date.now());
  // Streams that answer no request end now: GET streams, 2026-07-28 listeners.
  parts.http.endStreams();
  parts.bridges.endStreams();
  parts.era?.endListeners();
  await inflight.idle(left());
  // Let requests already on accepted connections arrive and finish, then close the rest.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  await inflight.idle(left());
  // Answers written after their request's handler returned: a legacy SSE client's (on its
  // stream, not on the POST that sent them) and a 2026-07-28 client's bridged calls.
  while ((parts.bridges.answering || parts.era?.answering) && left() > 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await parts.bridges.closeAll();
  await parts.era?.closeAll();
  server.closeIdleConnections();
  server.closeAllConnections();
  await parts.http.close();
  await parts.forwarded.close();
  await parts.publisher.close();
  await parts.tracing?.shutdown();
}
