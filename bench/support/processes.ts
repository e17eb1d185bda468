import { readFileSync } from 'node:fs';
import * as shared from '../../test/support/processes.js';
import { parseVmRssBytes } from './proc-stats.js';

// The bench uses the test suite's process helpers (one implementation), with its own defaults:
// quieter services, bounded output for long runs, its own temp-dir prefix.
export {
  eventually,
  freePort,
  Proc,
  ROOT,
  sleep,
  startNats,
} from '../../test/support/processes.js';
export type { NatsHandle as Nats } from '../../test/support/processes.js';

const BENCH_OUTPUT = 20_000;

export function tempDir(prefix: string): string {
  return shared.tempDir(`bench-${prefix}`);
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): shared.Proc {
  return shared.startProcess(name, command, args, { LOG_LEVEL: 'warn', ...env }, BENCH_OUTPUT);
}

export function startService(
  service: 'edge' | 'auth' | 'analytics' | 'standalone',
  env: Record<string, string>,
  nodeArgs: string[] = [],
): shared.Proc {
  return shared.startService(service, { LOG_LEVEL: 'warn', ...env }, nodeArgs, BENCH_OUTPUT);
}

export function waitForHttp(url: string, proc?: shared.Proc, timeoutMs = 30_000): Promise<void> {
  return shared.waitForHttp(url, proc, timeoutMs);
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const bytes = parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (bytes === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return bytes;
}
