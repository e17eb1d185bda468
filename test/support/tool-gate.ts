import { pino } from 'pino';
import { ConfigStore, parseConfig, type PinStore, TokenCounter } from '#common';
import { ToolFilter } from '../../apps/edge/src/filtering/tool-filter.js';
import { EdgeMetrics } from '../../apps/edge/src/metrics/edge-metrics.js';
import { ToolCatalog, type ToolGate } from '../../apps/edge/src/pins/tool-catalog.js';

/** A config with one namespace `ns` and the given pinning mode (nothing is started). */
export function pinningConfig(mode: 'off' | 'alert' | 'block'): ConfigStore {
  const yaml = `
keys: [{ id: k, key: k-secret-000000000000, user: u, namespaces: [ns] }]
tool_pinning: { mode: ${mode} }
namespaces:
  ns: { upstream: { url: http://127.0.0.1:9/mcp } }
`;
  return new ConfigStore(parseConfig(yaml, {}, 'test'));
}

/**
 * The edge's catalog as the edge builds it, over `store` (none: pinning off), for the tap's
 * unit specs; `gate(rules)` gives the gate of namespace `ns` for a filter of those rules.
 */
export async function testCatalog(
  options: { store?: PinStore; config?: ConfigStore; edgeId?: string } = {},
): Promise<{ catalog: ToolCatalog; metrics: EdgeMetrics; gate: (deny?: string[]) => ToolGate }> {
  const metrics = new EdgeMetrics();
  const catalog = new ToolCatalog(
    options.config ?? pinningConfig(options.store ? 'alert' : 'off'),
    options.store,
    await TokenCounter.load(),
    metrics,
    pino({ level: 'silent' }),
    options.edgeId ?? 'e1',
  );
  await catalog.start();
  return {
    catalog,
    metrics,
    gate: (deny = []) => catalog.gate('ns', new ToolFilter({ allow: ['*'], deny })),
  };
}
