import type { Medians, Metric } from '../scenarios/peers.js';

/** A number as the peer table prints it (thousands separated), 'n/a' when not finite. */
export function fmt(value: number, digits = 0): string {
  return Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
    : 'n/a';
}

/**
 * The peer comparison as the README shows it: each front's medians in a column, each peer's
 * with gateway ÷ peer beside it (and, for mcp-proxy, the shared gateway ÷ mcp-proxy too).
 */
export function sideBySide(
  m: Medians,
  run: { rounds: number; sessions: number; held: number },
  versions: Record<string, string>,
): string {
  const rows: Array<[string, Metric, string, number]> = [
    [`${run.sessions} sessions, calls/s`, 'callsPerSec', '', 0],
    ['one session, p50 per call', 'p50Ms', ' ms', 2],
    ['one session, p99 per call', 'p99Ms', ' ms', 2],
    ['new session (connect, list, call, close) p50', 'newSessionP50Ms', ' ms', 1],
    [`front's CPU per call (${run.sessions} sessions)`, 'cpuMsPerCall', ' ms', 3],
    [`RSS with ${run.held} sessions open (front + children)`, 'rssMiB', ' MiB', 0],
    [`(client's CPU per call, ${run.sessions} sessions)`, 'clientCpuMsPerCall', ' ms', 3],
  ];
  const ratio = (a: number, b: number) => (b > 0 ? fmt(a / b, 2) : 'n/a');
  const header = [
    `stdio server-everything, median of ${run.rounds} rounds`,
    'gateway (standalone)',
    'gateway, `shared: true`',
    `supergateway ${versions.supergateway} \`--stateful\` (gateway ÷)`,
    `mcp-proxy ${versions['mcp-proxy']} (gateway ÷; shared ÷)`,
  ];
  const cells = rows.map(([label, metric, unit, digits]) => {
    const value = (name: keyof Medians) => `${fmt(m[name][metric], digits)}${unit}`;
    const sg = m.supergateway[metric];
    const mp = m['mcp-proxy'][metric];
    return [
      label,
      value('gateway'),
      value('gateway-shared'),
      `${value('supergateway')} (${ratio(m.gateway[metric], sg)}×)`,
      `${value('mcp-proxy')} (${ratio(m.gateway[metric], mp)}×; ${ratio(m['gateway-shared'][metric], mp)}×)`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(header),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.map(line),
  ].join('\n');
}
