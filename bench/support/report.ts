import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseStat } from './proc-stats.js';

export type Comparison = '>=' | '<=';

/** One figure of SPEC §10 next to its target. */
export interface Figure {
  id: string;
  label: string;
  value: number | null;
  unit: string;
  /** null: shown for context only, not a SPEC target. */
  target: { op: Comparison; value: number } | null;
  /** null for a figure without target. */
  pass: boolean | null;
  /** Why there is no value, or what the value needs said next to it. */
  note?: string;
}

export interface ScenarioResult {
  name: string;
  figures: Figure[];
  /** Raw measurements, written to latest.json. */
  details: Record<string, unknown>;
  /** A table of its own, printed after the figures (the peer comparison side by side). */
  summary?: string;
}

export function figure(
  id: string,
  label: string,
  value: number | null,
  unit: string,
  op: Comparison,
  target: number,
  note?: string,
): Figure {
  const pass =
    value !== null && Number.isFinite(value) && (op === '>=' ? value >= target : value <= target);
  return { id, label, value, unit, target: { op, value: target }, pass, ...(note ? { note } : {}) };
}

/** A figure shown next to the targets for context, without a target of its own. */
export function info(
  id: string,
  label: string,
  value: number | null,
  unit: string,
  note?: string,
): Figure {
  return { id, label, value, unit, target: null, pass: null, ...(note ? { note } : {}) };
}

/** Linear-interpolated percentile of an unsorted sample (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export interface Machine {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** The commit measured, and whether the working tree differed from it. */
  commit: string;
  dirty: boolean;
}

export function describeMachine(): Machine {
  let nproc = cpus().length;
  let kernel = '';
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        encoding: 'utf8',
      }).trim() !== '';
  } catch {
    // Not a git checkout (e.g. a Docker build context).
  }
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
    kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  } catch {
    // Not Linux coreutils: os.cpus() is close enough.
  }
  return {
    date: new Date().toISOString(),
    nproc,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    kernel,
    commit,
    dirty,
  };
}

function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 3;
  const text = value.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  });
  return unit ? `${text} ${unit}` : text;
}

/** The figures as a Markdown table: readable in a terminal and pasteable into the README. */
export function table(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    f.label,
    formatValue(f.value, f.unit) + (f.note ? ` (${f.note})` : ''),
    f.target ? `${f.target.op === '>=' ? '≥' : '≤'} ${formatValue(f.target.value, f.unit)}` : '—',
    f.pass === null ? 'info' : f.pass ? 'PASS' : 'MISS',
  ]);
  const header = ['measure', 'result', 'target (SPEC §10)', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(header),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.map(line),
  ].join('\n');
}

/** CPU seconds a process has used so far (utime + stime from /proc), or NaN when gone. */
export function cpuSeconds(pid: number): number {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuSeconds;
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine spent busy so far (all cores, from /proc/stat), or NaN. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return NaN;
  }
}

/** The 1-minute load average, to show how busy the machine was when the bench started. */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}
