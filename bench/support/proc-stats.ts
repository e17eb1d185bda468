import { readdirSync, readFileSync } from 'node:fs';

/**
 * What the bench reads of a process from Linux /proc: CPU time and parent from
 * /proc/<pid>/stat, resident memory from /proc/<pid>/status. The parsers are pure (tested on
 * fixed text in test/bench-proc-stats.spec.ts); the readers return what they could read, since
 * a process may exit between listing /proc and reading it.
 */

/** Clock ticks per second of utime/stime: USER_HZ, 100 on Linux. */
const TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime: CPU time of every thread of the process so far. */
  cpuSeconds: number;
}

/**
 * One /proc/<pid>/stat line. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields are counted from its last `)`.
 */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const fields = text.slice(close + 2).split(' ');
  // After the name: state (3), ppid (4), …, utime (14), stime (15).
  const ppid = Number(fields[1]);
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (close < 0 || !Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isFinite(ticks))
    throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  return { pid, ppid, cpuSeconds: ticks / TICKS_PER_SECOND };
}

/** VmRSS of a /proc/<pid>/status text in bytes; undefined for a zombie or kernel thread. */
export function parseVmRssBytes(status: string): number | undefined {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** Every descendant of `root` (children, their children, …) in a pid → parent pid table. */
export function descendantsOf(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const found: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // exited meanwhile
  }
}

/** `root` and all its live descendants, read from /proc. */
export function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) parents.set(stat.pid, stat.ppid);
  }
  return [root, ...descendantsOf(root, parents)];
}

/** CPU seconds used so far by the given processes together; NaN once one of them is gone. */
export function cpuSecondsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.cpuSeconds ?? NaN), 0);
}

/** Resident memory of `root` and every descendant, summed, and how many processes that is. */
export function treeRss(root: number): { bytes: number; processes: number } {
  let bytes = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    let rss: number | undefined;
    try {
      rss = parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      rss = undefined; // exited meanwhile
    }
    if (rss === undefined) continue;
    bytes += rss;
    processes++;
  }
  return { bytes, processes };
}

/** The command line of a process (arguments joined by spaces), or undefined once it is gone. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}
