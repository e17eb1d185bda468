import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatProfile, type ProfileSummary, summariseProfile } from './profile-summary.js';
import { era } from './scenarios/era.js';
import { ingest } from './scenarios/ingest.js';
import { latency } from './scenarios/latency.js';
import { peers } from './scenarios/peers.js';
import { queries } from './scenarios/queries.js';
import { sseStreams } from './scenarios/sse-streams.js';
import { throughput } from './scenarios/throughput.js';
import { virtualServer } from './scenarios/virtual.js';
import { ROOT } from './support/processes.js';
import {
  describeMachine,
  figure,
  type Figure,
  loadAverage,
  type ScenarioResult,
  table,
} from './support/report.js';

/**
 * `npm run bench`: every figure of SPEC §10 in one run on this machine, printed as a table next
 * to its target and written to bench/results/latest.json. See README "Performance".
 *
 *   npm run bench -- --only=throughput,latency [--profile] [--connections=100] [--duration=10]
 *                    [--streams=5000] [--events=500000] [--rows=10000000] [--queries=50]
 *                    [--peer-rounds=3] [--peer-duration=6]
 */
const SCENARIOS = [
  'throughput',
  'latency',
  'virtual',
  'era',
  'sse',
  'ingest',
  'queries',
  'peers',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    connections: { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    requests: { type: 'string', default: '5000' },
    streams: { type: 'string', default: '5000' },
    origins: { type: 'string', default: '20' },
    events: { type: 'string', default: '500000' },
    rows: { type: 'string', default: '10000000' },
    queries: { type: 'string', default: '50' },
    'peer-rounds': { type: 'string', default: '3' },
    'peer-duration': { type: 'string', default: '6' },
    out: { type: 'string', default: join(ROOT, 'bench/results/latest.json') },
  },
});

const selected = (
  args.only ? args.only.split(',').map((s) => s.trim()) : [...SCENARIOS]
) as Scenario[];
const unknown = selected.filter((s) => !SCENARIOS.includes(s));
if (unknown.length > 0) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  process.exit(2);
}

const started = Date.now();
const log = (line: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);
const machine = { ...describeMachine(), loadAverageAtStart: loadAverage() };
const note =
  `one machine, ${machine.nproc} cores shared by the load generator, the backend, the edge, auth, ` +
  'NATS, Redis and analytics: figures are relative to this box, not a capacity plan';
console.log(`MCP Gateway bench — ${machine.date}`);
console.log(
  `machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.kernel}; Node ${machine.node}`,
);
console.log(
  `commit: ${machine.commit}${machine.dirty ? ' + uncommitted changes in the working tree' : ''}`,
);
console.log(`note: ${note}`);
console.log(
  `load average at start: ${machine.loadAverageAtStart} (anything well above 0 is other work competing for the cores)\n`,
);

const profileFile = join(ROOT, 'bench/results/edge-throughput.cpuprofile');
const analyticsProfileFile = join(ROOT, 'bench/results/analytics-ingest.cpuprofile');
const virtualProfileFile = join(ROOT, 'bench/results/edge-virtual.cpuprofile');
const peersProfileFile = join(ROOT, 'bench/results/standalone-{front}.cpuprofile');
const peersProfileFiles = ['gateway', 'gateway-shared'].map((front) =>
  peersProfileFile.replace('{front}', front),
);
if (args.profile) {
  mkdirSync(join(profileFile, '..'), { recursive: true });
  rmSync(profileFile, { force: true });
  rmSync(analyticsProfileFile, { force: true });
  rmSync(virtualProfileFile, { force: true });
  for (const file of peersProfileFiles) rmSync(file, { force: true });
}
const runs: Record<Scenario, () => Promise<ScenarioResult>> = {
  throughput: () =>
    throughput({
      connections: Number(args.connections),
      durationSec: Number(args.duration),
      warmupSec: Number(args.warmup),
      profileTo: args.profile ? profileFile : undefined,
      log,
    }),
  // 6,000 warm-up requests per target: after 1,000, V8 was still optimising in the three Node
  // processes on the path (client, edge, backend) and most slow requests of the measured run
  // came in its first second; the figure is the gateway's steady state, not its tier-up.
  latency: () => latency({ requests: Number(args.requests), warmup: 6_000, log }),
  virtual: () =>
    virtualServer({
      requests: 1_000,
      warmup: 500,
      profileTo: args.profile ? virtualProfileFile : undefined,
      log,
    }),
  era: () => era({ requests: 1_000, warmup: 300, log }),
  sse: () => sseStreams({ streams: Number(args.streams), origins: Number(args.origins), log }),
  ingest: () =>
    ingest({
      events: Number(args.events),
      lagProbes: 10,
      profileTo: args.profile ? analyticsProfileFile : undefined,
      log,
    }),
  queries: () =>
    queries({ rows: Number(args.rows), queriesPerEndpoint: Number(args.queries), log }),
  peers: () =>
    peers({
      rounds: Number(args['peer-rounds']),
      durationSec: Number(args['peer-duration']),
      profileTo: args.profile ? peersProfileFile : undefined,
      log,
    }),
};

const results: ScenarioResult[] = [];
for (const name of SCENARIOS.filter((s) => selected.includes(s))) {
  log(`— ${name}`);
  try {
    results.push(await runs[name]());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`${name} FAILED: ${message}`);
    results.push({
      name,
      figures: [
        figure(
          `${name}_failed`,
          `${name} (failed)`,
          null,
          '',
          '>=',
          0,
          message.split('\n')[0].slice(0, 120),
        ),
      ],
      details: { error: message },
    });
  }
}

const profiles: Record<string, ProfileSummary> = {};
for (const [name, file] of [
  ['edge (throughput run)', profileFile],
  ['analytics (backlog drain)', analyticsProfileFile],
  ['edge (virtual server lists)', virtualProfileFile],
  ['standalone, stdio, a child per session (16-session loop)', peersProfileFiles[0]],
  ['standalone, stdio, shared: true (16-session loop)', peersProfileFiles[1]],
] as const) {
  if (!args.profile || !existsSync(file)) continue;
  profiles[name] = summariseProfile(file, 30);
  console.log(`\n${name}: ${formatProfile(profiles[name])}`);
}

const figures: Figure[] = results.flatMap((r) => r.figures);
console.log(
  `\nMCP Gateway bench — ${machine.date.slice(0, 10)} — ${machine.nproc} cores (${machine.cpuModel}), Node ${machine.node}\n`,
);
console.log(table(figures));
for (const { summary } of results) if (summary) console.log(`\n${summary}`);
console.log(
  `\n${note}; load average ${machine.loadAverageAtStart} at start, ${loadAverage()} at end`,
);
const targets = figures.filter((f) => f.pass !== null);
const missed = targets.filter((f) => !f.pass);
console.log(
  missed.length === 0
    ? 'all targets met'
    : `${missed.length} of ${targets.length} targets missed: ${missed.map((f) => f.id).join(', ')}`,
);

mkdirSync(join(args.out, '..'), { recursive: true });
writeFileSync(
  args.out,
  `${JSON.stringify({ machine, note, durationSec: Math.round((Date.now() - started) / 1000), figures, scenarios: Object.fromEntries(results.map((r) => [r.name, r.details])), ...(Object.keys(profiles).length ? { profiles } : {}) }, null, 2)}\n`,
);
log(`written ${args.out}`);
