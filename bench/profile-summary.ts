import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Self time of a V8 .cpuprofile (as written by `node --cpu-prof`), by function and by package or
 * source file, as a share of the busy (non-idle) time.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [top]
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  /** Share of busy time (everything but `(idle)`), percent. */
  busyPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  busyMs: number;
  functions: ProfileRow[];
  byPlace: ProfileRow[];
  /** Busy time charged to the innermost gateway function on the stack (its own code and every library or native call under it). */
  byGatewayFrame: ProfileRow[];
}

export function summariseProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parents.set(child, node.id);
  // The innermost frame of the gateway's own code (apps/, libs/) on a node's stack, if any.
  const gatewayFrame = new Map<number, string>();
  const gatewayFrameOf = (id: number): string => {
    const known = gatewayFrame.get(id);
    if (known !== undefined) return known;
    const frame = nodes.get(id)!.callFrame;
    let result: string;
    if (/\/(apps|libs)\//.test(frame.url) && !frame.url.includes('node_modules/')) {
      result = `${frame.functionName || '(anonymous)'}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    } else {
      const parent = parents.get(id);
      result =
        parent === undefined
          ? '(no gateway frame: event loop, I/O callbacks, GC)'
          : gatewayFrameOf(parent);
    }
    gatewayFrame.set(id, result);
    return result;
  };
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time after it is the next delta.
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta);
  }
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byPlace = new Map<string, number>();
  const byGateway = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id)!.callFrame;
    totalUs += us;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '(native)';
    const name = frame.functionName || '(anonymous)';
    const key = `${name}@${where}`;
    const entry = byFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const place = placeOf(frame.url, name);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    const owner = gatewayFrameOf(id);
    byGateway.set(owner, (byGateway.get(owner) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const row = (name: string, where: string, us: number): ProfileRow => ({
    name,
    where,
    selfMs: Math.round(us / 1000),
    busyPct: busyUs > 0 ? Math.round((us / busyUs) * 1000) / 10 : 0,
  });
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    functions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => row(f.name, f.where, f.us)),
    byPlace: [...byPlace.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([place, us]) => row(place, '', us)),
    byGatewayFrame: [...byGateway.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([owner, us]) => row(owner, '', us)),
  };
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  return path.startsWith('/') ? relative(process.cwd(), path) : path;
}

/** A package, a file of the gateway, Node's internals, or V8's own buckets (GC, program). */
function placeOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native/builtin)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const path = shortUrl(url);
  if (url.includes('node_modules/')) {
    const parts = path.split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  return path;
}

export function formatProfile(summary: ProfileSummary): string {
  const lines = [
    `CPU profile ${summary.file}: ${summary.totalMs} ms sampled, ${summary.busyMs} ms busy (not idle)`,
    '',
    'self time by package / file:',
    ...summary.byPlace.map(
      (r) =>
        `  ${r.busyPct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(6)} ms  ${r.name}`,
    ),
    '',
    'busy time by innermost gateway function on the stack (it and everything it calls):',
    ...summary.byGatewayFrame.map(
      (r) =>
        `  ${r.busyPct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(6)} ms  ${r.name}`,
    ),
    '',
    'top functions by self time:',
    ...summary.functions.map(
      (r) =>
        `  ${r.busyPct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(6)} ms  ${r.name}  ${r.where}`,
    ),
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatProfile(summariseProfile(file, Number(process.argv[3] ?? 25))));
}
