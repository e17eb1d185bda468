import autocannon from 'autocannon';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { InspectorSession } from '../support/inspector.js';
import { startJwtIssuer } from '../support/jwt-issuer.js';
import { startNginx } from '../support/nginx.js';
import { cpuSecondsOf, processTree } from '../support/proc-stats.js';
import { figure, info, machineBusySeconds, round, type ScenarioResult } from '../support/report.js';
import {
  BENCH_KEY,
  MCP_HEADERS,
  orStop,
  startBareProxy,
  startBackend,
  startGateway,
  toolsCallBody,
  warmKey,
} from '../support/topology.js';

export interface ThroughputOptions {
  connections: number;
  durationSec: number;
  warmupSec: number;
  /** Where to write a CPU profile of the edge over the measured gateway run (none if unset). */
  profileTo?: string;
  log: (line: string) => void;
}

interface Run {
  target: string;
  requestsPerSec: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** CPU seconds per process during the run (cores busy = seconds / duration). */
  cpu: Record<string, number>;
  /** CPU seconds of everything else on the machine (other users' work) during the run. */
  foreignCpu: number;
  /** CPU seconds of the whole machine during the run. */
  machineCpu: number;
}

/**
 * SPEC §10 "throughput through the gateway ≥ 0.40 × direct at saturation (1 KiB tools/call)":
 * the same autocannon load (same connections, same body, unique JSON-RPC ids) against the
 * backend directly and through one edge, each after a warm-up.
 */
export async function throughput(options: ThroughputOptions): Promise<ScenarioResult> {
  const backend = await startBackend();
  const issuer = await orStop(startJwtIssuer(), backend);
  const bare = await orStop(startBareProxy(backend.urls[0]), issuer, backend);
  const nginx = await orStop(startNginx(backend.urls[0]), bare, issuer, backend);
  const gateway = await orStop(
    startGateway({
      namespaces: { bench: backend.urls[0] },
      edge: true,
      edgeNodeArgs: options.profileTo ? ['--inspect=127.0.0.1:0'] : [],
      oauthIssuer: issuer.url,
    }),
    ...(nginx ? [nginx] : []),
    bare,
    issuer,
    backend,
  );
  const inspector =
    options.profileTo && gateway.edge
      ? await orStop(
          InspectorSession.attach(gateway.edge),
          gateway,
          ...(nginx ? [nginx] : []),
          bare,
          backend,
        )
      : undefined;
  try {
    const edgeUrl = gateway.edgeUrl!;
    await warmKey(edgeUrl, 'bench');
    const procs: Record<string, number[]> = {
      backend: [backend.proc.pid],
      'bare proxy': [bare.proc.pid],
      edge: [gateway.edge!.pid],
      nats: [gateway.nats.proc.pid],
      auth: [gateway.auth.pid],
      // nginx's master and its worker (which does the relaying).
      ...(nginx && { nginx: processTree(nginx.proc.pid) }),
    };
    const load = async (
      target: string,
      url: string,
      headers: Record<string, string>,
      profile = false,
    ) => {
      options.log(`throughput: ${target}: warm-up ${options.warmupSec}s`);
      await cannon(url, headers, options.connections, options.warmupSec);
      options.log(
        `throughput: ${target}: ${options.durationSec}s at ${options.connections} connections`,
      );
      if (profile) await inspector?.startProfiling();
      const before = snapshot(procs);
      const machineBefore = machineBusySeconds();
      const result = await cannon(url, headers, options.connections, options.durationSec);
      const machineBusy = machineBusySeconds() - machineBefore;
      const after = snapshot(procs);
      if (profile && inspector && options.profileTo) {
        writeFileSync(options.profileTo, JSON.stringify(await inspector.stopProfiling()));
        options.log(`throughput: edge CPU profile written to ${options.profileTo}`);
      }
      const cpu = Object.fromEntries(
        Object.keys(after).map((name) => [name, round(after[name] - before[name], 2)]),
      );
      const ours = Object.values(cpu).reduce((a, b) => a + b, 0);
      const run: Run = {
        target,
        requestsPerSec: round(result['2xx'] / result.duration, 0),
        total: result.requests.total,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        latencyP50Ms: result.latency.p50,
        latencyP99Ms: result.latency.p99,
        cpu,
        foreignCpu: round(Math.max(0, machineBusy - ours), 2),
        machineCpu: round(machineBusy, 2),
      };
      options.log(
        `throughput: ${target}: ${run.requestsPerSec} req/s (non-2xx ${run.non2xx}, errors ${run.errors}); CPU s: ${JSON.stringify(cpu)}, other processes ${run.foreignCpu}`,
      );
      return run;
    };
    const direct = await load('direct', backend.urls[0], {});
    const viaGateway = await load(
      'gateway',
      `${edgeUrl}/mcp/bench`,
      { authorization: `Bearer ${BENCH_KEY}` },
      true,
    );
    // The floor of any single-process Node proxy on this box, under the same load: see
    // bench/support/bare-proxy.ts. Measured after the gateway so both follow the direct run.
    const viaBare = await load('bare proxy', bare.url, {});
    // SPEC §10 (v2): nginx beside them, when this machine has it.
    const viaNginx = nginx ? await load('nginx', nginx.url, {}) : undefined;
    // SPEC §10 (v2): the same load with an OAuth access token instead of the key.
    const viaOAuth = await load('gateway (OAuth JWT)', `${edgeUrl}/mcp/bench`, {
      authorization: `Bearer ${await issuer.token('bench')}`,
    });
    const oauthRatio =
      viaGateway.requestsPerSec > 0 ? viaOAuth.requestsPerSec / viaGateway.requestsPerSec : 0;
    const ratio = direct.requestsPerSec > 0 ? viaGateway.requestsPerSec / direct.requestsPerSec : 0;
    const bareRatio =
      direct.requestsPerSec > 0 ? viaBare.requestsPerSec / direct.requestsPerSec : 0;
    const bareCpuMsPerRequest = round(
      (viaBare.cpu['bare proxy'] * 1000) / Math.max(1, viaBare.total),
      3,
    );
    const versus = (run: Run | undefined) =>
      run && run.requestsPerSec > 0
        ? round(viaGateway.requestsPerSec / run.requestsPerSec, 3)
        : null;
    const failed = viaGateway.non2xx + viaGateway.errors + direct.non2xx + direct.errors;
    const oauthFailed = viaOAuth.non2xx + viaOAuth.errors;
    // What one proxied request costs the edge: the figure a hot-path fix has to move.
    const edgeCpuMsPerRequest = round(
      (viaGateway.cpu.edge * 1000) / Math.max(1, viaGateway.total),
      3,
    );
    // The whole machine's CPU per request (every process of the run): once the cores are all
    // busy, requests per second cannot exceed cores / this, whichever process is the bottleneck.
    const machineMs = (run: Run) => round((run.machineCpu * 1000) / Math.max(1, run.total), 3);
    const coresBusy = (run: Run) => round(run.machineCpu / options.durationSec, 2);
    return {
      name: 'throughput',
      figures: [
        figure(
          'throughput_ratio',
          `Throughput gateway / direct (${options.connections} conns, 1 KiB tools/call)`,
          round(ratio, 3),
          '',
          '>=',
          0.4,
          `${direct.requestsPerSec.toLocaleString('en-US')} vs ${viaGateway.requestsPerSec.toLocaleString('en-US')} req/s, edge ${edgeCpuMsPerRequest} ms CPU/req${failed ? `, ${failed} failed` : ''}`,
        ),
        figure(
          'oauth_ratio',
          'Throughput with an OAuth JWT / with a key (same load, same run)',
          round(oauthRatio, 3),
          '',
          '>=',
          0.9,
          `${viaOAuth.requestsPerSec.toLocaleString('en-US')} vs ${viaGateway.requestsPerSec.toLocaleString('en-US')} req/s${oauthFailed ? `, ${oauthFailed} failed` : ''}`,
        ),
        figure(
          'gateway_vs_bare_ratio',
          'HTTP path: gateway (every policy on) ÷ bare Node relay',
          versus(viaBare),
          '',
          '>=',
          0.5,
          `${viaGateway.requestsPerSec.toLocaleString('en-US')} vs ${viaBare.requestsPerSec.toLocaleString('en-US')} req/s`,
        ),
        info(
          'gateway_vs_nginx_ratio',
          'HTTP path: gateway ÷ nginx (1 worker, relaying only)',
          versus(viaNginx),
          '',
          viaNginx && nginx
            ? `${viaGateway.requestsPerSec.toLocaleString('en-US')} vs ${viaNginx.requestsPerSec.toLocaleString('en-US')} req/s; nginx ${nginx.version}: ${round(viaNginx.requestsPerSec / Math.max(1, direct.requestsPerSec), 3)} of direct, ${round((viaNginx.cpu.nginx * 1000) / Math.max(1, viaNginx.total), 3)} ms CPU/req`
            : 'nginx not installed (apt-get install nginx)',
        ),
        info(
          'bare_proxy_ratio',
          'Reference: bare Node proxy / direct (http + undici, no gateway work)',
          round(bareRatio, 3),
          '',
          `${viaBare.requestsPerSec.toLocaleString('en-US')} req/s, ${bareCpuMsPerRequest} ms CPU/req`,
        ),
        info(
          'machine_cpu_ms_per_request',
          'Machine CPU per request, gateway run (every process; direct run)',
          machineMs(viaGateway),
          'ms',
          `direct ${machineMs(direct)} ms, bare proxy ${machineMs(viaBare)} ms${viaNginx ? `, nginx ${machineMs(viaNginx)} ms` : ''}; cores busy ${coresBusy(viaGateway)} of ${cpus().length} (direct ${coresBusy(direct)})`,
        ),
      ],
      details: {
        connections: options.connections,
        durationSec: options.durationSec,
        direct,
        gateway: viaGateway,
        bareProxy: viaBare,
        nginx: viaNginx ?? null,
        oauth: viaOAuth,
        edgeCpuMsPerRequest,
        bareCpuMsPerRequest,
      },
    };
  } finally {
    inspector?.close();
    await gateway.stop();
    await nginx?.stop();
    await bare.stop();
    await issuer.stop();
    await backend.stop();
  }
}

function cannon(
  url: string,
  headers: Record<string, string>,
  connections: number,
  durationSec: number,
): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: 'POST',
    headers: { ...MCP_HEADERS, ...headers },
    // `[<id>]` becomes a unique id per request; the body stays ~1 KiB.
    body: toolsCallBody('[<id>]'),
    idReplacement: true,
    connections,
    pipelining: 1,
    duration: durationSec,
    timeout: 10,
  });
}

function snapshot(pids: Record<string, number[]>): Record<string, number> {
  const usage = process.cpuUsage();
  return {
    ...Object.fromEntries(Object.entries(pids).map(([name, ids]) => [name, cpuSecondsOf(ids)])),
    'load generator': (usage.user + usage.system) / 1e6,
  };
}
