import { InProcessEventChannel, type McpEvent } from '#common';
import { InProcessEventPublisher } from '../../apps/edge/src/events/event-publisher.js';
import { ExchangeRecorder } from '../../apps/edge/src/events/exchange-recorder.js';
import { EdgeMetrics } from '../../apps/edge/src/metrics/edge-metrics.js';

/**
 * An edge exchange recorder for unit specs, publishing to a real in-process channel whose events
 * land in `events` (after a turn of the event loop). No I/O.
 */
export function recordedExchange(): { recorder: ExchangeRecorder; events: McpEvent[] } {
  const channel = new InProcessEventChannel();
  const events: McpEvent[] = [];
  channel.consume((batch) => {
    events.push(...batch);
    return Promise.resolve();
  });
  const metrics = new EdgeMetrics();
  const recorder = new ExchangeRecorder(
    {
      edge_id: 'e',
      request_id: 'r',
      namespace: 'ns',
      transport: 'streamable',
      tenant: null,
      key_id: null,
      user: null,
      protocol_version: null,
      session_id: null,
      client_name: null,
      client_version: null,
      auth_method: 'none',
      server: null,
    },
    new InProcessEventPublisher(channel, metrics),
    metrics,
    'ns',
  );
  return { recorder, events };
}
