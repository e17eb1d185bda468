import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  callLoop,
  closeAll,
  closeSession,
  openMany,
  openSession,
  timedCalls,
  timedNewSession,
} from '../support/mcp-sessions.js';
import { InspectorSession } from '../support/inspector.js';
import { eventually, ROOT, sleep } from '../support/processes.js';
import { commandLine, cpuSecondsOf, processTree, treeRss } from '../support/proc-stats.js';
import { fmt, sideBySide } from '../support/peer-table.js';
import { figure, info, percentile, round, type ScenarioResult } from '../support/report.js';
import { FRONTS, type FrontName, startFront } from '../support/stdio-fronts.js';

export interface PeersOptions {
  rounds: number;
  /** Seconds of the 16-session call loop (after a warm-up of a third of it). */
  durationSec: number;
  log: (line: string) => void;
  /** Writes CPU profiles of the gateway fronts' 16-session loop (first round) here: `{front}` is replaced. */
  profileTo?: string;
}

const LOAD_SESSIONS = 16;
const HELD_SESSIONS = 50;
const ONE_SESSION_WARMUP = 300;
const ONE_SESSION_CALLS = 1_000;
const NEW_SESSIONS = 10;
// New sessions arrive this far apart, as from a host that opens one now and then: back to back,
// each would find the gateway's one warm child still starting (SPEC: "with a warm child").
const NEW_SESSION_GAP_MS = 1_000;

/** One front's figures in one round. */
export interface Measured {
  callsPerSec: number;
  errors: number;
  /** CPU of the front's own process per call (not its backend children), 16-session loop. */
  cpuMsPerCall: number;
  /** The bench process's CPU per call in the same loop: the client's share of the cores. */
  clientCpuMsPerCall: number;
  p50Ms: number;
  p99Ms: number;
  newSessionP50Ms: number;
  /** RSS of the front and all its descendants with 50 sessions open. */
  rssMiB: number;
  rssProcesses: number;
}
export type Metric = Exclude<keyof Measured, 'errors' | 'rssProcesses'>;
/** Each front's median of each metric over the rounds. */
export type Medians = Record<FrontName, Record<Metric, number>>;

/**
 * SPEC §10 (v2) peers: the gateway in standalone mode (a child per session, and with
 * `shared: true`), supergateway `--stateful` and mcp-proxy, each fronting the same stdio
 * server-everything, driven by the same SDK client. Rounds are interleaved (each front in turn,
 * then again) so drift on a shared machine hits all of them; each front is started for its turn
 * and stopped after it, so only one runs at a time. Figures are medians over the rounds,
 * compared as gateway ÷ peer.
 */
export async function peers(options: PeersOptions): Promise<ScenarioResult> {
  const rounds = Object.fromEntries(FRONTS.map((name) => [name, [] as Measured[]])) as Record<
    FrontName,
    Measured[]
  >;
  for (let round = 1; round <= options.rounds; round++) {
    for (const name of FRONTS) {
      const profileTo =
        round === 1 && name.startsWith('gateway')
          ? options.profileTo?.replace('{front}', name)
          : undefined;
      const measured = await measureFront(
        name,
        options,
        (line) => options.log(`peers: round ${round}/${options.rounds}: ${name}: ${line}`),
        profileTo,
      );
      rounds[name].push(measured);
    }
  }
  const m = Object.fromEntries(
    FRONTS.map((name) => [
      name,
      Object.fromEntries(
        (Object.keys(rounds[name][0]) as Metric[]).map((metric) => [
          metric,
          percentile(
            rounds[name].map((r) => r[metric]),
            50,
          ),
        ]),
      ),
    ]),
  ) as Medians;
  const ratio = (metric: Metric, peer: FrontName, of: FrontName = 'gateway') =>
    m[peer][metric] > 0 ? round(m[of][metric] / m[peer][metric], 2) : NaN;
  const failed = FRONTS.filter((name) => rounds[name].some((r) => r.errors > 0)).map(
    (name) => `; ${name}: ${rounds[name].map((r) => r.errors).join('/')} failed calls`,
  );
  // Every front's median of one metric, for a figure's note.
  const all = (metric: Metric, unit: string, digits = 0) =>
    `${FRONTS.map((name) => `${name} ${fmt(m[name][metric], digits)}`).join(', ')} ${unit}`;
  return {
    name: 'peers',
    figures: [
      figure(
        'peers_calls_vs_supergateway',
        `Stdio, ${LOAD_SESSIONS} sessions calls/s: gateway ÷ supergateway --stateful`,
        ratio('callsPerSec', 'supergateway'),
        '',
        '>=',
        1.2,
        all('callsPerSec', 'calls/s') + failed.join(''),
      ),
      figure(
        'peers_calls_vs_mcp_proxy',
        `Stdio, ${LOAD_SESSIONS} sessions calls/s: gateway ÷ mcp-proxy`,
        ratio('callsPerSec', 'mcp-proxy'),
        '',
        '>=',
        1.0,
        `with shared: true ${ratio('callsPerSec', 'mcp-proxy', 'gateway-shared')}`,
      ),
      figure(
        'peers_p50_vs_supergateway',
        'Stdio, one session p50 per call: gateway ÷ supergateway',
        ratio('p50Ms', 'supergateway'),
        '',
        '<=',
        1.0,
        all('p50Ms', 'ms', 2),
      ),
      info(
        'peers_p99_vs_supergateway',
        'Stdio, one session p99 per call: gateway ÷ supergateway',
        ratio('p99Ms', 'supergateway'),
        '',
        all('p99Ms', 'ms', 2),
      ),
      figure(
        'peers_new_session_p50_ms',
        'Stdio, new session p50 (connect, list tools, call, close), gateway',
        round(m.gateway.newSessionP50Ms, 1),
        'ms',
        '<=',
        50,
        all('newSessionP50Ms', 'ms', 1),
      ),
      info(
        'peers_cpu_vs_supergateway',
        `Stdio, front's CPU per call (${LOAD_SESSIONS} sessions): gateway ÷ supergateway`,
        ratio('cpuMsPerCall', 'supergateway'),
        '',
        all('cpuMsPerCall', 'ms', 3),
      ),
      info(
        'peers_rss_vs_mcp_proxy',
        `Stdio, RSS with ${HELD_SESSIONS} sessions open (front + children): gateway ÷ mcp-proxy`,
        ratio('rssMiB', 'mcp-proxy'),
        '',
        all('rssMiB', 'MiB'),
      ),
      figure(
        'peers_shared_rss_vs_mcp_proxy',
        `Stdio, RSS with ${HELD_SESSIONS} sessions open: gateway with shared: true ÷ mcp-proxy`,
        ratio('rssMiB', 'mcp-proxy', 'gateway-shared'),
        '',
        '<=',
        2,
      ),
    ],
    summary: sideBySide(
      m,
      { rounds: options.rounds, sessions: LOAD_SESSIONS, held: HELD_SESSIONS },
      versions(),
    ),
    details: {
      rounds: options.rounds,
      durationSec: options.durationSec,
      sessions: LOAD_SESSIONS,
      heldSessions: HELD_SESSIONS,
      versions: versions(),
      medians: m,
      perRound: rounds,
    },
  };
}

async function measureFront(
  name: FrontName,
  options: PeersOptions,
  log: (line: string) => void,
  profileTo?: string,
): Promise<Measured> {
  const front = await startFront(
    name,
    HELD_SESSIONS + LOAD_SESSIONS,
    profileTo ? ['--inspect=127.0.0.1:0'] : [],
  );
  const inspector = profileTo
    ? await InspectorSession.attach(front.proc).catch(async (error: unknown) => {
        await front.stop();
        throw error;
      })
    : undefined;
  const pid = front.proc.pid;
  const baseline = processTree(pid).length;
  // Children of closed sessions exit in the background: wait for them before the next phase,
  // so one phase's teardown is not measured in the next (a warm pool may keep a few).
  const settle = () =>
    eventually(() => processTree(pid).length <= baseline + 4, 20_000, 'children to exit').catch(
      () => undefined,
    );
  try {
    const load = await openMany(front, LOAD_SESSIONS, 4);
    await callLoop(load, (options.durationSec * 1000) / 3);
    await inspector?.startProfiling();
    const cpuBefore = cpuSecondsOf([pid]);
    const clientBefore = process.cpuUsage();
    const loop = await callLoop(load, options.durationSec * 1000);
    const client = process.cpuUsage(clientBefore);
    const cpu = cpuSecondsOf([pid]) - cpuBefore;
    if (inspector && profileTo) {
      writeFileSync(profileTo, JSON.stringify(await inspector.stopProfiling()));
      inspector.close();
      log(`CPU profile of the ${LOAD_SESSIONS}-session loop written to ${profileTo}`);
    }
    await closeAll(load);
    const calls = Math.max(1, loop.calls);
    log(
      `${round(loop.calls / loop.seconds, 0)} calls/s over ${LOAD_SESSIONS} sessions (${loop.errors} failed${loop.firstError ? `: ${loop.firstError}` : ''}); front ${round((cpu * 1000) / calls, 3)} ms CPU/call`,
    );
    await settle();

    const one = await openSession(front);
    let times: number[];
    try {
      await timedCalls(one, ONE_SESSION_WARMUP);
      times = await timedCalls(one, ONE_SESSION_CALLS);
    } finally {
      await closeSession(one);
    }
    await settle();

    await timedNewSession(front); // the first one also loads what later ones find loaded
    const newSessions: number[] = [];
    for (let i = 0; i < NEW_SESSIONS; i++) {
      await sleep(NEW_SESSION_GAP_MS);
      newSessions.push(await timedNewSession(front));
    }
    await settle();

    const held = await openMany(front, HELD_SESSIONS, 8);
    const rss = treeRss(pid);
    await closeAll(held);

    const measured: Measured = {
      callsPerSec: round(loop.calls / loop.seconds, 0),
      errors: loop.errors,
      cpuMsPerCall: round((cpu * 1000) / calls, 3),
      clientCpuMsPerCall: round((client.user + client.system) / 1000 / calls, 3),
      p50Ms: round(percentile(times, 50), 3),
      p99Ms: round(percentile(times, 99), 3),
      newSessionP50Ms: round(percentile(newSessions, 50), 1),
      rssMiB: round(rss.bytes / 2 ** 20, 0),
      rssProcesses: rss.processes,
    };
    log(
      `one session p50 ${measured.p50Ms} ms, p99 ${measured.p99Ms} ms; new session p50 ${measured.newSessionP50Ms} ms; ${measured.rssMiB} MiB in ${rss.processes} processes with ${HELD_SESSIONS} sessions open`,
    );
    return measured;
  } finally {
    const children = processTree(pid)
      .slice(1)
      .map((child) => ({ pid: child, command: commandLine(child) }));
    await front.stop();
    // A front that leaves a child behind must not leave it running for the next one (the same
    // command line: the pid was not handed to another process meanwhile).
    for (const child of children) {
      if (child.command === undefined || commandLine(child.pid) !== child.command) continue;
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

function versions(): Record<string, string> {
  const version = (pkg: string) =>
    (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  return Object.fromEntries(
    [
      'supergateway',
      'mcp-proxy',
      '@modelcontextprotocol/server-everything',
      '@modelcontextprotocol/sdk',
    ].map((pkg) => [pkg, version(pkg)]),
  );
}
